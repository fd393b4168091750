"""Headless runs: ``labconsole --batch PRESET`` and ``labconsole --batch --resume RUNDIR|SWEEP``.

Records the preset's runs as a sweep (``labconsole.sweep``: a manifest beside the runs), starts
them as workers (at most ``jobs`` at a time), follows their events files, shows progress (a live
table on a terminal, plain lines otherwise), and ends with a summary per run, the best seed and
the aggregate of each setting (paper App. A.6), and the sweep's report (``labconsole.report``:
CSVs in ``<sweep dir>/report``). An interrupted sweep gets its report too, from what its runs
have, naming the unfinished ones; ``--resume SWEEP`` skips its completed runs, resumes the
stopped or crashed (or failed) ones from their checkpoints and starts those never started.
Exit codes: 0 all completed, 1 a run failed or crashed, 2 bad input, 130 interrupted (the runs
were stopped with a checkpoint).

A run's state is the ``RunView`` that ``labconsole.runview`` folds from its events, as in the
console; the batch adds only its process bookkeeping (``RunEntry``).
"""
from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from labconsole import cost
from labconsole import runner
from labconsole import sweep as sweeps
from labconsole.aggregate import Member, aggregate, best_seed, describe
from labconsole.eventlog import EventTail
from labconsole.executors import Executor, Launch
from labconsole.executors.local import LocalExecutor
from labconsole.gpus import GpuError, GpuSlots, slots_for
from labconsole.presets import Preset, PresetError, RunSpec, load_preset
from labconsole.rundir import EVENTS, LIVE, effective_status, read_meta
from labconsole.runentry import RunEntry, progress_line
from labconsole.runview import apply, with_status

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.5
EXIT_GRACE_S = 10.0  # how long the end of a batch waits for its workers to exit
STOP_RESEND_S = 45.0  # after a stop request, asked again this often while runs stay live

Starter = Callable[[str | None], Launch]  # (its GPU or None) -> the worker to launch (its run dir made)


def make_console(out: TextIO) -> Console:
    """A rich console on ``out``; when that is not a terminal (a log file, a pipe, CI), a wide one,
    so that tables stay readable instead of wrapping at 80 columns."""
    console = Console(file=out, log_path=False)  # log lines show the time, not our source line
    return console if console.is_terminal else Console(file=out, width=160, log_path=False)


class BadInput(ValueError):
    """A batch request that cannot start; its text is the one line the CLI prints."""


# --------------------------------------------------------------------------- the batch


class Batch:
    """Runs its entries through workers, ``jobs`` at a time; ``run`` returns the exit code.

    An entry without a starter is already done (a completed run of a resumed sweep): it is in
    the summary, not in the queue. With a ``sweep``, the end writes the sweep's report. The
    workers are launched by ``executor`` (default: local subprocesses); one that crashed (killed,
    its node lost) is resumed from its checkpoint up to ``retries`` times (default: the executor's).
    """

    def __init__(self, preset_name: str, runs: list[tuple[RunEntry, Starter | None]], jobs: int, out: TextIO,
                 sweep: sweeps.Sweep | None = None, gpus: GpuSlots | None = None, *,
                 executor: Executor | None = None, retries: int | None = None, figures: bool = True):
        self.preset_name, self.sweep, self.gpus = preset_name, sweep, gpus
        self.figures = figures  # the sweep report's figures (False: --no-figures, CSVs only)
        self.executor = executor or LocalExecutor()
        self.retries = self.executor.retries if retries is None else retries
        # with GPUs: K runs on each; a scheduler (SLURM, Ray) queues every run itself: one launch of all
        self.jobs = math.inf if self.executor.queues else gpus.capacity if gpus is not None else jobs
        self.runs = [entry for entry, _ in runs]
        self._queue = [(entry, start) for entry, start in runs if start is not None]
        self.console = make_console(out)
        self.plain = not self.console.is_terminal
        self.interrupted = False
        self._stops = [0, 0]  # stop requests received (signals), sent to the workers (by the loop)
        self._stop_sent_at = 0.0  # monotonic time of the last stops sent

    def run(self) -> int:
        """Launch, follow and summarise every run; returns the exit code (see the module docstring)."""
        # Ctrl-C, or SIGTERM from a job scheduler at its time limit: stop the runs with a checkpoint.
        previous = {sig: signal.signal(sig, self._on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with Live(self._table(), console=self.console, refresh_per_second=2, transient=False) if not self.plain else _Null() as live:
                while self._queue or self._active():
                    self._launch_next()
                    if self.interrupted:
                        self._queue.clear()
                        self._send_stops()
                    self._poll()
                    if live is not None:
                        live.update(self._table())
                    time.sleep(POLL_SECONDS)
                self._poll()
                self._await_exits()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.executor.close()
        self._summarise()
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if all(r.status == "completed" for r in self.runs) else EXIT_FAILED

    def _await_exits(self) -> None:
        """Give the workers of ended runs up to ``EXIT_GRACE_S`` to exit: a run's last event comes
        before its process ends (the interpreter's teardown), and a batch that returns should leave
        none of its workers behind."""
        deadline = time.monotonic() + EXIT_GRACE_S
        while any(r.handle is not None and r.handle.poll() is None for r in self.runs):
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)

    def _summarise(self) -> None:
        """The per-run table, best seeds, per-setting aggregates and (for a sweep) its report."""
        self.console.print(summary_table(self.runs))
        lines = best_seeds(self.runs) + (setting_lines(self.runs, self.sweep) if len(self.runs) > 1 else [])
        for line in lines:
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        if self.sweep is not None:
            for line in sweep_report(self.sweep, self.interrupted, self.figures):
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _launch_next(self) -> None:
        """Launch queued runs while there is room, in one call to the executor (SLURM: one array)."""
        batch: list[tuple[RunEntry, Launch]] = []
        while self._queue and len(self._active()) + len(batch) < self.jobs and not self.interrupted:
            entry, start = self._queue.pop(0)
            entry.gpu = self.gpus.take() if self.gpus is not None else None
            batch.append((entry, start(entry.gpu)))
        if not batch:
            return
        for (entry, launch), handle in zip(batch, self.executor.launch([launch for _, launch in batch])):
            entry.launch(launch.run_dir, handle)
            where = f" on GPU {entry.gpu}" if entry.gpu is not None else f" ({handle.where})" if self.executor.queues else ""
            self._say(entry, f"run dir {entry.run_dir}{where}")

    def _active(self) -> list[RunEntry]:
        return [r for r in self.runs if r.active]

    def _on_interrupt(self, *_: object) -> None:
        # Ctrl-C: stop launching and ask every worker to stop with a checkpoint; the loop then
        # waits for them, so nothing is lost (a second Ctrl-C is the same request again). Only
        # flags here: the loop sends the stops within POLL_SECONDS. An executor's stop may call
        # into Ray (ray.wait, ray.cancel) or submitit, and a signal handler that re-enters Ray while
        # the loop is inside a Ray call can lose the cancel (seen on a loaded box: a batch that
        # never ended after Ctrl-C).
        self.interrupted = True
        self._stops[0] += 1

    def _send_stops(self) -> None:
        """Every live worker asked to stop, once for each stop request not yet sent, and again
        every STOP_RESEND_S while runs stay live (a lost request is repeated; Ray's repeat forces)."""
        resend = self._stops[1] and time.monotonic() - self._stop_sent_at > STOP_RESEND_S
        if self._stops[1] < self._stops[0] or resend:
            active = self._active()
            if not self._stops[1]:
                self.console.print(f"interrupted: {len(active)} run(s) asked to checkpoint and stop "
                                   f"(Ctrl-C again repeats it)", markup=False, highlight=False, soft_wrap=True)
            self._stops[1] = max(self._stops[0], self._stops[1] + 1)
            self._stop_sent_at = time.monotonic()
            for entry in active:
                entry.handle.stop()

    def _poll(self) -> None:
        for entry in self._active():
            for line in entry.poll():
                self._say(entry, line)
            if not entry.active and entry.gpu is not None:  # over: its GPU slot is free for the next
                self.gpus.give(entry.gpu)
                entry.gpu = None
            if entry.status == "crashed" and entry.retried < self.retries and not self.interrupted:
                entry.retried += 1  # killed, or its node lost: the next segment from its checkpoint
                self._say(entry, f"retry {entry.retried} of {self.retries}: resuming from its latest checkpoint")
                self._queue.insert(0, (entry, _resumer(entry.run_dir)))

    def _say(self, entry: RunEntry, line: str) -> None:
        name = entry.label or self.preset_name
        if self.plain:
            self.console.print(f"[{name}] {line}", markup=False, highlight=False, soft_wrap=True)
        else:
            self.console.log(f"[bold]{name}[/] {line}", highlight=False)

    def _table(self) -> Table:
        table = Table(title=f"labconsole --batch {self.preset_name}", expand=False)
        for col in ("run", "status", "step", "loss", "accuracy", "R²", "phase"):
            table.add_column(col)
        for r in self.runs:
            v, e = r.view, r.view.latest
            table.add_row(
                r.label or self.preset_name, r.status, f"{v.step}/{v.total_steps or r.steps}",
                f"{v.loss:.4f}" if v.loss is not None else "",
                f"{e.accuracy:.2f} / {e.ceiling:.2f}" if e else "", f"{e.r2_mean:.2f}" if e else "",
                e.phase if e else "",
            )
        return table


class _Null:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# --------------------------------------------------------------------------- summary


def summary_table(runs: list[RunEntry]) -> Table:
    """Per run: status, final accuracy (and ceiling), acc_x, acc_y, R² (and step-0 baseline),
    the failure modes of the last eval (% of ID samples with no / one / several bumps), phase,
    the first step in phase C."""
    table = Table(title="summary")
    for col in ("run", "status", "step", "accuracy", "acc_x", "acc_y", "R² (step 0)", "none/one/several %",
                "phase", "C at", "run dir"):
        table.add_column(col)
    for r in runs:
        v, e = r.view, r.view.latest
        c_at = v.first_step("C")
        table.add_row(
            r.label or "-", r.status, str(v.step),
            f"{e.accuracy:.2f} / {e.ceiling:.2f}" if e else "", f"{e.accuracy_x:.2f}" if e else "",
            f"{e.accuracy_y:.2f}" if e else "",
            f"{e.r2_mean:.2f} ({v.baseline_r2:.2f})" if e else "",
            "/".join(f"{100 * f:.0f}" for f in (e.blobs_0, e.blobs_1, e.blobs_many)) if e else "",
            e.phase if e else "", str(c_at) if c_at is not None else "-",
            r.run_dir.name if r.run_dir else "",
        )
    return table


def _member(r: RunEntry) -> Member:
    return Member(r.setting, r.seed, r.run_dir.name if r.run_dir else "", r.view if r.run_dir else None, r.label)


def best_seeds(runs: list[RunEntry]) -> list[str]:
    """For settings run with several seeds: the seed with the best final accuracy (paper App. A.6)."""
    by_setting: dict[str, list[RunEntry]] = {}
    for r in runs:
        by_setting.setdefault(r.setting, []).append(r)
    lines = []
    for setting, group in by_setting.items():
        best = best_seed([_member(r) for r in group]) if len(group) > 1 else None
        if best is not None:
            lines.append(f"best seed of {setting or 'the preset'}: {best.label} "
                         f"(accuracy {best.accuracy:.2f}, R² {best.r2_mean:.2f})")
    return lines


def setting_lines(runs: list[RunEntry], sweep: sweeps.Sweep | None) -> list[str]:
    """Per setting over its seeds: steps to phase C (censored runs counted) and terminal accuracy."""
    grid = sweep.manifest.grid if sweep is not None else tuple(
        sweeps.Setting(s, {}) for s in dict.fromkeys(r.setting for r in runs))
    return ["per setting: " + describe(agg) for agg in aggregate(grid, [_member(r) for r in runs])]


def sweep_report(sweep: sweeps.Sweep, interrupted: bool, figures: bool = True) -> list[str]:
    """Write the sweep's report (``labconsole.report``) from its run dirs, with its figures unless
    ``figures`` is False; the lines saying where."""
    from labconsole import report  # only at the end of a batch

    tail = [f"resume the sweep with: labconsole --batch --resume {sweep.dir}"] if interrupted else []
    try:
        data = report.collect([sweep.dir])
    except report.ReportError as exc:
        return [f"no report: {exc}"] + tail
    files, notes = report.write_report(data, figures=figures)
    lines = [f"report: {files[0].parent} ({', '.join(p.name for p in files)})"]
    return lines + [f"  note: {n}" for n in notes] + tail


# --------------------------------------------------------------------------- entry points


def run_preset(path: str, overrides: list[str], runs_dir: Path, jobs: int, dry_run: bool, out: TextIO = sys.stdout,
               *, gpus: str | None = None, runs_per_gpu: int = 1, executor: Executor | None = None,
               retries: int | None = None, measure_cost: bool = True, figures: bool = True) -> int:
    """``labconsole --batch PRESET``. Raises BadInput (or PresetError) before anything is created.
    ``measure_cost`` False (``--no-cost``): no probe of what the runs cost here (a dry run in a
    second; a paper preset starts at once).

    ``gpus`` is ``--gpus`` (None: every visible GPU, if any); with GPUs, ``runs_per_gpu`` runs
    train on each at once and ``jobs`` is not used. ``executor`` and ``retries`` as ``Batch``;
    GPUs and jobs are the local executor's (a scheduler places remote runs). ``figures`` False
    (``--no-figures``): the sweep's report at the end without figures."""
    if jobs < 1:
        raise BadInput(f"--jobs: expected a positive integer, got {jobs}")
    preset = load_preset(path, overrides)
    remote = _remote(executor)
    slots = None if remote else gpu_slots(gpus, runs_per_gpu, {r.config.train.device for r in preset.runs})
    if preset.kind == "overlap":
        from labconsole.overlap import overlap_table  # no training: App. A.5

        make_console(out).print(overlap_table(preset.overlap, preset.title))
        return EXIT_OK
    if preset.kind == "percolation":
        from labconsole.percolation import print_table  # no training: the follow-up's Figs. 6c, 14b

        try:
            print_table(preset, make_console(out), overrides)
        except ValueError as exc:  # too dense a lattice for its bumps: one line, exit 2
            raise BadInput(f"{path}: {exc}") from None
        return EXIT_OK
    if dry_run:
        probes = cost.say_cost(preset, out) if measure_cost else None
        make_console(out).print(dry_run_table(preset, probes))
        return EXIT_OK
    if preset.mini and measure_cost:  # a paper preset: its cost here, said before it is paid (training starts after)
        cost.say_cost(preset, out)
    return preset_batch(preset, runs_dir, jobs, out, overrides, slots, executor=executor, retries=retries,
                        figures=figures).run()


def gpu_slots(gpus: str | None, runs_per_gpu: int, devices: set[str]) -> GpuSlots | None:
    """``gpus.slots_for`` with its problems as BadInput (one line, exit 2)."""
    try:
        return slots_for(gpus, runs_per_gpu, devices)
    except GpuError as exc:
        raise BadInput(str(exc)) from None


def preset_batch(preset: Preset, runs_dir: Path, jobs: int, out: TextIO, overrides: list[str] = (),
                 gpus: GpuSlots | None = None, **how) -> Batch:
    """The batch of a (training) preset's runs, recorded as a new sweep under ``runs_dir``
    (made now, before any run); each run gets a new run dir when it starts."""
    sweep = sweeps.create(preset, list(overrides), runs_dir)
    # Each local worker takes its share of the cores itself, recounted as runs come and go
    # (labconsole.cores): nothing to decide here.
    runs = [(_entry(spec), _starter(spec, sweep, i)) for i, spec in enumerate(preset.runs)]
    return Batch(preset.name, runs, jobs, out, sweep, gpus, **how)


def _remote(executor: Executor | None) -> bool:
    """Whether a scheduler places the runs (SLURM, Ray): then no GPU slots and no core share here."""
    return executor is not None and executor.queues


def _entry(spec: RunSpec) -> RunEntry:
    return RunEntry(label=spec.label, setting=spec.setting, steps=spec.config.train.steps, seed=spec.config.train.seed)


def _starter(spec: RunSpec, sweep: sweeps.Sweep, index: int) -> Starter:
    def start(gpu: str | None) -> Launch:
        run_dir = runner.create_run(spec, sweep.manifest.preset, sweep.runs_dir)
        sweep.record(index, run_dir)  # before the worker starts: the manifest never misses a run dir
        return Launch(run_dir, resume=False, gpu=gpu)

    return start


def resume_run(path: Path, out: TextIO = sys.stdout, jobs: int = 1, *, gpus: str | None = None,
               runs_per_gpu: int = 1, executor: Executor | None = None, retries: int | None = None,
               figures: bool = True) -> int:
    """``labconsole --batch --resume RUNDIR|SWEEP``: a run continues from its latest checkpoint
    (a new segment); a sweep as ``resume_sweep`` says. GPUs, executor and figures as ``run_preset``."""
    if jobs < 1:
        raise BadInput(f"--jobs: expected a positive integer, got {jobs}")
    remote = _remote(executor)
    slots = None if remote else gpu_slots(gpus, runs_per_gpu, set())
    how = dict(executor=executor, retries=retries, figures=figures)
    if sweeps.is_sweep(path):
        return resume_sweep(path, jobs, out, slots, **how).run()
    return resume_batch(path, out, slots, **how).run()


def resume_sweep(path: Path, jobs: int, out: TextIO = sys.stdout, gpus: GpuSlots | None = None, **how) -> Batch:
    """The batch that finishes a sweep: completed runs are skipped (but summarised), stopped,
    crashed or failed ones resume from their checkpoints, never-started ones start.

    Raises:
        BadInput: an unreadable sweep, a live run, nothing left to do, or a never-started run
            that its preset file no longer builds.
    """
    try:
        sweep = sweeps.load(path)
        views = sweeps.read_views(sweep)
        actions = sweeps.plan_resume(sweep, views)
    except sweeps.SweepError as exc:
        raise BadInput(f"--resume {exc}") from None
    m = sweep.manifest
    runs = []
    for i, (run, view, action) in enumerate(zip(m.runs, views, actions)):
        if action == "start":
            spec = _rebuild(sweep, run)
            runs.append((_entry(spec), _starter(spec, sweep, i)))
            continue
        entry = RunEntry(label=run.label, setting=run.setting, seed=run.seed)
        run_dir = sweep.run_path(i)
        entry.run_dir, entry.tail = run_dir, EventTail(run_dir / EVENTS)
        _fold_history(entry)
        if action == "skip":
            entry.view = with_status(entry.view, view.status)
        runs.append((entry, _resumer(run_dir) if action == "resume" else None))
    return Batch(m.preset, runs, jobs, out, sweep, gpus, **how)


def _rebuild(sweep: sweeps.Sweep, run: sweeps.PlannedRun) -> RunSpec:
    """The spec of a never-started run: its preset file with the sweep's and the run's overrides."""
    m = sweep.manifest
    try:
        specs = load_preset(m.preset_path, m.planned_overrides(run)).runs
    except PresetError as exc:
        raise BadInput(f"--resume {sweep.dir}: cannot rebuild run '{run.label}' from its preset: {exc}") from None
    if len(specs) != 1:
        raise BadInput(f"--resume {sweep.dir}: {m.preset_path} changed since the sweep was made "
                       f"(run '{run.label}' now gives {len(specs)} runs)")
    return dataclasses.replace(specs[0], label=run.label, setting=run.setting)


def _fold_history(entry: RunEntry) -> None:
    """Fold the events of earlier segments, unprinted (the summary covers the whole run); the
    tail keeps its offset, so a new segment's events are shown once."""
    for event in entry.tail.poll():
        entry.view = apply(entry.view, event)


def _resumer(run_dir: Path) -> Starter:
    def start(gpu: str | None) -> Launch:
        return Launch(run_dir, resume=True, gpu=gpu)

    return start


def resume_batch(run_dir: Path, out: TextIO = sys.stdout, gpus: GpuSlots | None = None, **how) -> Batch:
    """The batch that resumes ``run_dir``; its entry already holds the view of the earlier segments.

    Raises:
        BadInput: not a readable run directory, still running, or already completed.
    """
    try:
        meta = read_meta(run_dir)
        from labconsole.runconfig import load_config

        cfg = load_config(run_dir / "config.toml")
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(f"--resume {run_dir}: neither a sweep nor a readable run directory ({exc})") from None
    status = effective_status(meta)
    if status in LIVE:
        raise BadInput(f"--resume {run_dir}: the run is still {status} (pid {meta.pid})")
    if status == "completed":
        raise BadInput(f"--resume {run_dir}: the run already completed")
    entry = RunEntry(label=meta.label, setting=meta.label, steps=cfg.train.steps, seed=cfg.train.seed,
                     tail=EventTail(run_dir / EVENTS))
    _fold_history(entry)
    return Batch(meta.preset, [(entry, _resumer(run_dir))], 1, out, gpus=gpus, **how)


def dry_run_table(preset: Preset, probes: dict[tuple, cost.Probe] | None = None) -> Table:
    """What ``--batch`` would run, one row per run, without creating anything; with ``probes``, each
    run's estimated cost on this machine."""
    table = Table(title=f"{preset.name}: {len(preset.runs)} run(s) — dry run, nothing started")
    for col in ("#", "run", "size", "steps", "batch", "data", "dx", "dy", "sigma", "holes", "prediction", "eval",
                "est. here"):
        table.add_column(col)
    for i, s in enumerate(preset.runs, 1):
        c = s.config
        probe = (probes or {}).get(cost.probe_key(c))
        table.add_row(
            str(i), s.label or "-", c.model.size, str(c.train.steps), str(c.train.batch_size), data_text(c.data),
            f"{c.data.dx:g}", f"{c.data.dy:g}", f"{c.data.sigma:g}", str(len(c.data.holes)),
            c.diffusion.prediction, f"every {c.train.eval_every}, {c.eval.n_samples} {c.eval.sampler}",
            cost.human(cost.estimate(c, probe).total_s) if probe else "?",
        )
    return table


def data_text(d) -> str:
    """A data config's kind and what departs from the paper's canvas: e.g. ``bump``, ``sos canvas 44
    torus keep 0.5`` (issue 16)."""
    parts = [d.kind] + ([f"canvas {d.canvas}"] if d.canvas and d.canvas != d.size else [])
    return " ".join(parts + (["torus"] if d.periodic else []) + ([f"keep {d.keep:g}"] if d.keep < 1 else []))


__all__ = ["BadInput", "Batch", "PresetError", "RunEntry", "EXIT_BAD_INPUT", "preset_batch", "progress_line",
           "resume_batch", "resume_run", "resume_sweep", "run_preset", "setting_lines", "sweep_report"]
