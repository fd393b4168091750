"""Headless runs: ``labconsole --batch PRESET`` and ``labconsole --batch --resume RUNDIR``.

Starts the preset's runs as workers (at most ``jobs`` at a time), follows their events files,
shows progress (a live table on a terminal, plain lines otherwise), and ends with a summary per
run and the best seed of each setting (paper App. A.6). Exit codes: 0 all completed, 1 a run
failed or crashed, 2 bad input, 130 interrupted (the runs were stopped with a checkpoint).

A run's state is the ``RunView`` that ``labconsole.runview`` folds from its events, as in the
console; the batch adds only its process bookkeeping (``RunEntry``).
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from labconsole import events as ev
from labconsole import runner
from labconsole.eventlog import EventTail
from labconsole.presets import Preset, PresetError, RunSpec, load_preset
from labconsole.rundir import EVENTS, effective_status, read_meta
from labconsole.runview import RunView, apply, with_status

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.5

Starter = Callable[[], tuple[Path, subprocess.Popen]]  # creates (or reuses) a run dir, spawns its worker


def make_console(out: TextIO) -> Console:
    """A rich console on ``out``; when that is not a terminal (a log file, a pipe, CI), a wide one,
    so that tables stay readable instead of wrapping at 80 columns."""
    console = Console(file=out, log_path=False)  # log lines show the time, not our source line
    return console if console.is_terminal else Console(file=out, width=160, log_path=False)


class BadInput(ValueError):
    """A batch request that cannot start; its text is the one line the CLI prints."""


# --------------------------------------------------------------------------- following a run


def progress_line(event: ev.Event) -> str | None:
    """The plain progress line an event is worth in the batch output, if any."""
    if isinstance(event, ev.RunStarted):
        return f"started on {event.device}, {event.n_params:,} parameters, from step {event.start_step}"
    if isinstance(event, ev.Eval):
        return (f"step {event.step}: accuracy {event.accuracy:.2f} (ceiling {event.ceiling:.2f}), "
                f"R² {event.r2_mean:.2f}, phase {event.phase_reason} [{event.eval_seconds:.1f} s eval]")
    if isinstance(event, ev.Log) and event.level != "info":
        return f"{event.level}: {event.message}"
    if isinstance(event, ev.RunFinished):
        return f"{event.status} at step {event.step}" + (f": {event.error}" if event.error else "")
    return None


@dataclass
class RunEntry:
    """One run of a batch: its process bookkeeping and its ``RunView``.

    The view's status is the batch's too: ``queued`` until launched, ``starting`` until the
    worker's ``RunStarted``, then what the events (or, for a dead worker, the run dir) say.
    """

    label: str
    setting: str
    steps: int = 0  # the planned train.steps, shown until the worker reports its config
    run_dir: Path | None = None
    proc: subprocess.Popen | None = None
    tail: EventTail | None = None
    view: RunView = field(default_factory=lambda: RunView(status="queued"))
    started: float = 0.0  # unix time of the launch

    @property
    def status(self) -> str:
        return self.view.status

    @property
    def active(self) -> bool:
        """Launched and not over: a worker the batch still waits for."""
        return self.proc is not None and self.status in ("starting", "running")

    def launch(self, run_dir: Path, proc: subprocess.Popen) -> None:
        """Record a started worker. A resumed run keeps its tail, and so its offset: the events of
        its earlier segments are not shown twice."""
        self.run_dir, self.proc, self.started = run_dir, proc, time.time()
        self.tail = self.tail or EventTail(run_dir / EVENTS)
        self.view = with_status(self.view, "starting")

    def poll(self) -> list[str]:
        """Fold the run's new events into its view; returns the progress lines worth printing.

        Once the worker has exited without a ``run_finished`` event, its run dir decides the
        status: ``crashed``, unless the worker recorded another in meta.json.
        """
        lines = self._fold()
        if self.active and self.proc.poll() is not None:
            lines += self._fold()  # what it wrote between the read above and its exit
            if self.active:
                status = effective_status(read_meta(self.run_dir))
                self.view = with_status(self.view, "crashed" if status == "running" else status)
                lines.append(f"{self.status}: worker exited with code {self.proc.returncode}; see stderr.log")
        return lines

    def _fold(self) -> list[str]:
        lines = []
        for event in self.tail.poll():
            self.view = apply(self.view, event)
            line = progress_line(event)
            if line:
                lines.append(line)
        return lines


# --------------------------------------------------------------------------- the batch


class Batch:
    """Runs its entries through workers, ``jobs`` at a time; ``run`` returns the exit code."""

    def __init__(self, preset_name: str, runs: list[tuple[RunEntry, Starter]], jobs: int, out: TextIO):
        self.preset_name, self.jobs = preset_name, jobs
        self.runs = [entry for entry, _ in runs]
        self._queue = list(runs)
        self.console = make_console(out)
        self.plain = not self.console.is_terminal
        self.interrupted = False

    def run(self) -> int:
        """Launch, follow and summarise every run; returns the exit code (see the module docstring)."""
        # Ctrl-C, or SIGTERM from a job scheduler at its time limit: stop the runs with a checkpoint.
        previous = {sig: signal.signal(sig, self._on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with Live(self._table(), console=self.console, refresh_per_second=2, transient=False) if not self.plain else _Null() as live:
                while self._queue or self._active():
                    while self._queue and len(self._active()) < self.jobs and not self.interrupted:
                        self._launch(*self._queue.pop(0))
                    if self.interrupted:
                        self._queue.clear()
                    self._poll()
                    if live is not None:
                        live.update(self._table())
                    time.sleep(POLL_SECONDS)
                self._poll()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.console.print(summary_table(self.runs))
        for line in best_seeds(self.runs):
            self.console.print(line)
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if all(r.status == "completed" for r in self.runs) else EXIT_FAILED

    def _launch(self, entry: RunEntry, start: Starter) -> None:
        entry.launch(*start())
        self._say(entry, f"run dir {entry.run_dir}")

    def _active(self) -> list[RunEntry]:
        return [r for r in self.runs if r.active]

    def _on_interrupt(self, *_: object) -> None:
        # Ctrl-C: stop launching and ask every worker to stop with a checkpoint; the loop then
        # waits for them, so nothing is lost (a second Ctrl-C is the same request again).
        self.interrupted = True
        for entry in self._active():
            entry.proc.send_signal(signal.SIGTERM)

    def _poll(self) -> None:
        for entry in self._active():
            for line in entry.poll():
                self._say(entry, line)

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
    phase, the first step in phase C."""
    table = Table(title="summary")
    for col in ("run", "status", "step", "accuracy", "acc_x", "acc_y", "R² (step 0)", "phase", "C at", "run dir"):
        table.add_column(col)
    for r in runs:
        v, e = r.view, r.view.latest
        c_at = v.first_step("C")
        table.add_row(
            r.label or "-", r.status, str(v.step),
            f"{e.accuracy:.2f} / {e.ceiling:.2f}" if e else "", f"{e.accuracy_x:.2f}" if e else "",
            f"{e.accuracy_y:.2f}" if e else "",
            f"{e.r2_mean:.2f} ({v.baseline_r2:.2f})" if e else "",
            e.phase if e else "", str(c_at) if c_at is not None else "-",
            r.run_dir.name if r.run_dir else "",
        )
    return table


def best_seeds(runs: list[RunEntry]) -> list[str]:
    """For settings run with several seeds: the seed with the best final accuracy (paper App. A.6)."""
    by_setting: dict[str, list[RunEntry]] = {}
    for r in runs:
        by_setting.setdefault(r.setting, []).append(r)
    lines = []
    for setting, group in by_setting.items():
        scored = [r for r in group if r.view.latest is not None]
        if len(group) > 1 and scored:
            best = max(scored, key=lambda r: r.view.latest.accuracy)
            lines.append(f"best seed of {setting or 'the preset'}: {best.label} "
                         f"(accuracy {best.view.latest.accuracy:.2f}, R² {best.view.latest.r2_mean:.2f})")
    return lines


# --------------------------------------------------------------------------- entry points


def run_preset(path: str, overrides: list[str], runs_dir: Path, jobs: int, dry_run: bool, out: TextIO = sys.stdout) -> int:
    """``labconsole --batch PRESET``. Raises BadInput (or PresetError) before anything is created."""
    if jobs < 1:
        raise BadInput(f"--jobs: expected a positive integer, got {jobs}")
    preset = load_preset(path, overrides)
    if preset.kind == "overlap":
        from labconsole.overlap import overlap_table  # no training: App. A.5

        make_console(out).print(overlap_table(preset.overlap, preset.title))
        return EXIT_OK
    if dry_run:
        make_console(out).print(dry_run_table(preset))
        return EXIT_OK
    return preset_batch(preset, runs_dir, jobs, out).run()


def preset_batch(preset: Preset, runs_dir: Path, jobs: int, out: TextIO) -> Batch:
    """The batch of a (training) preset's runs, each to get a new run dir under ``runs_dir``."""
    specs = [_share_cores(spec, jobs) for spec in preset.runs]
    runs = [(RunEntry(label=s.label, setting=s.setting, steps=s.config.train.steps), _starter(s, preset.name, runs_dir))
            for s in specs]
    return Batch(preset.name, runs, jobs, out)


def _share_cores(spec: RunSpec, jobs: int) -> RunSpec:
    """With several runs at once, give each its share of the cores (unless the preset sets
    train.threads): oversubscribed torch threads wait on each other at every op; on the 2-core
    dev box a 2-thread worker sharing the cores with another busy 2-thread process trained
    10-25x slower than alone (measured: 186 -> 7-10 images/s)."""
    if jobs <= 1 or spec.config.train.threads > 0:
        return spec
    threads = max(1, (os.cpu_count() or 1) // jobs)
    cfg = dataclasses.replace(spec.config, train=dataclasses.replace(spec.config.train, threads=threads))
    return dataclasses.replace(spec, config=cfg)


def _starter(spec: RunSpec, preset_name: str, runs_dir: Path) -> Starter:
    def start() -> tuple[Path, subprocess.Popen]:
        run_dir = runner.create_run(spec, preset_name, runs_dir)
        return run_dir, runner.spawn(run_dir)

    return start


def resume_run(run_dir: Path, out: TextIO = sys.stdout) -> int:
    """``labconsole --batch --resume RUNDIR``: continue from the latest checkpoint, new segment."""
    return resume_batch(run_dir, out).run()


def resume_batch(run_dir: Path, out: TextIO = sys.stdout) -> Batch:
    """The batch that resumes ``run_dir``; its entry already holds the view of the earlier segments.

    Raises:
        BadInput: not a readable run directory, still running, or already completed.
    """
    try:
        meta = read_meta(run_dir)
        from labconsole.runconfig import load_config

        cfg = load_config(run_dir / "config.toml")
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(f"--resume {run_dir}: not a readable run directory ({exc})") from None
    status = effective_status(meta)
    if status == "running":
        raise BadInput(f"--resume {run_dir}: the run is still running (pid {meta.pid})")
    if status == "completed":
        raise BadInput(f"--resume {run_dir}: the run already completed")
    entry = RunEntry(label=meta.label, setting=meta.label, steps=cfg.train.steps, tail=EventTail(run_dir / EVENTS))
    # Events of earlier segments are folded first, unprinted (the summary covers the whole run);
    # the tail keeps its offset, so the new segment's events are shown once.
    for event in entry.tail.poll():
        entry.view = apply(entry.view, event)

    def start() -> tuple[Path, subprocess.Popen]:
        return run_dir, runner.resume(run_dir)

    return Batch(meta.preset, [(entry, start)], 1, out)


def dry_run_table(preset: Preset) -> Table:
    """What ``--batch`` would run, one row per run, without creating anything."""
    table = Table(title=f"{preset.name}: {len(preset.runs)} run(s) — dry run, nothing started")
    for col in ("#", "run", "size", "steps", "batch", "dx", "dy", "sigma", "holes", "prediction", "eval"):
        table.add_column(col)
    for i, s in enumerate(preset.runs, 1):
        c = s.config
        table.add_row(
            str(i), s.label or "-", c.model.size, str(c.train.steps), str(c.train.batch_size),
            f"{c.data.dx:g}", f"{c.data.dy:g}", f"{c.data.sigma:g}", str(len(c.data.holes)),
            c.diffusion.prediction, f"every {c.train.eval_every}, {c.eval.n_samples} {c.eval.sampler}",
        )
    return table


__all__ = ["BadInput", "Batch", "PresetError", "RunEntry", "EXIT_BAD_INPUT", "preset_batch", "progress_line",
           "resume_batch", "resume_run", "run_preset"]
