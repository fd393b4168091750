"""Headless runs: ``labconsole --batch PRESET`` and ``labconsole --batch --resume RUNDIR``.

Starts the preset's runs as workers (at most ``jobs`` at a time), follows their events files,
shows progress (a live table on a terminal, plain lines otherwise), and ends with a summary per
run and the best seed of each setting (paper App. A.6). Exit codes: 0 all completed, 1 a run
failed or crashed, 2 bad input, 130 interrupted (the runs were stopped with a checkpoint).
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
from labconsole.presets import Preset, PresetError, RunSpec, load_preset
from labconsole.rundir import EVENTS, effective_status, read_meta

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
POLL_SECONDS = 0.5


def make_console(out: TextIO) -> Console:
    """A rich console on ``out``; when that is not a terminal (a log file, a pipe, CI), a wide one,
    so that tables stay readable instead of wrapping at 80 columns."""
    console = Console(file=out, log_path=False)  # log lines show the time, not our source line
    return console if console.is_terminal else Console(file=out, width=160, log_path=False)


class BadInput(ValueError):
    """A batch request that cannot start; its text is the one line the CLI prints."""


# --------------------------------------------------------------------------- following a run


class EventTail:
    """New complete events of an ``events.jsonl`` since the last poll (a torn last line waits)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = path, 0, b""

    def poll(self) -> list[ev.Event]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        *lines, self.partial = (self.partial + chunk).split(b"\n")
        out = []
        for line in lines:
            try:
                out.append(ev.decode(line))
            except ValueError:
                continue  # a line torn by a crash: skipped, as every reader does
        return out


@dataclass
class RunState:
    """What the batch display and summary know of one run, folded from its events."""

    label: str
    setting: str
    run_dir: Path | None = None
    proc: subprocess.Popen | None = None
    tail: EventTail | None = None
    status: str = "queued"
    step: int = 0
    steps: int = 0
    loss: float | None = None
    last: ev.Eval | None = None
    baseline_r2: float | None = None
    phase_c_step: int | None = None
    error: str = ""
    started: float = 0.0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    def fold(self, event: ev.Event) -> str | None:
        """Update from one event; returns a plain progress line worth printing, if any."""
        if isinstance(event, ev.RunStarted):
            self.status, self.step = "running", event.start_step
            return f"started on {event.device}, {event.n_params:,} parameters, from step {event.start_step}"
        if isinstance(event, ev.Train):
            self.step, self.loss = event.step, event.loss
        elif isinstance(event, ev.Eval):
            self.step, self.last = event.step, event
            if self.baseline_r2 is None:
                self.baseline_r2 = event.r2_mean
            if event.phase == "C" and self.phase_c_step is None:
                self.phase_c_step = event.step
            return (f"step {event.step}: accuracy {event.accuracy:.2f} (ceiling {event.ceiling:.2f}), "
                    f"R² {event.r2_mean:.2f}, phase {event.phase_reason} [{event.eval_seconds:.1f} s eval]")
        elif isinstance(event, ev.Log) and event.level != "info":
            return f"{event.level}: {event.message}"
        elif isinstance(event, ev.RunFinished):
            self.status, self.step, self.error = event.status, event.step, event.error
            return f"{event.status} at step {event.step}" + (f": {event.error}" if event.error else "")
        return None


# --------------------------------------------------------------------------- the batch


class Batch:
    """Runs a list of RunStates through workers, ``jobs`` at a time."""

    def __init__(self, preset_name: str, runs: list[RunState], runs_dir: Path, jobs: int, out: TextIO):
        self.preset_name, self.runs, self.runs_dir, self.jobs = preset_name, runs, runs_dir, jobs
        self.console = make_console(out)
        self.plain = not self.console.is_terminal
        self.interrupted = False
        self.specs: dict[int, RunSpec] = {}

    def launch(self, state: RunState, start: Callable[[], tuple[Path, subprocess.Popen]]) -> None:
        state.run_dir, state.proc = start()
        state.tail = state.tail or EventTail(state.run_dir / EVENTS)  # a resumed run keeps its offset
        state.status, state.started = "starting", time.time()
        self._say(state, f"run dir {state.run_dir}")

    def run(self, starters: list[Callable[[], tuple[Path, subprocess.Popen]]]) -> int:
        queue = list(zip(self.runs, starters))
        # Ctrl-C, or SIGTERM from a job scheduler at its time limit: stop the runs with a checkpoint.
        previous = {sig: signal.signal(sig, self._on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with Live(self._table(), console=self.console, refresh_per_second=2, transient=False) if not self.plain else _Null() as live:
                while queue or self._active():
                    while queue and len(self._active()) < self.jobs and not self.interrupted:
                        self.launch(*queue.pop(0))
                    if self.interrupted:
                        queue.clear()
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

    def _active(self) -> list[RunState]:
        return [r for r in self.runs if r.proc is not None and r.status in ("starting", "running")]

    def _on_interrupt(self, *_: object) -> None:
        # Ctrl-C: stop launching and ask every worker to stop with a checkpoint; the loop then
        # waits for them, so nothing is lost (a second Ctrl-C is the same request again).
        self.interrupted = True
        for state in self._active():
            state.proc.send_signal(signal.SIGTERM)

    def _poll(self) -> None:
        for state in self.runs:
            if state.proc is None or state.status not in ("starting", "running"):
                continue
            for event in state.tail.poll():
                line = state.fold(event)
                if line:
                    self._say(state, line)
            state.seconds = time.time() - state.started
            if state.proc.poll() is not None and state.status in ("starting", "running"):
                for event in state.tail.poll():
                    state.fold(event)
                if state.status in ("starting", "running"):  # exited without a run_finished event
                    state.status = effective_status(read_meta(state.run_dir))
                    state.status = "crashed" if state.status == "running" else state.status
                    state.error = state.error or f"worker exited with code {state.proc.returncode}; see stderr.log"
                    self._say(state, f"{state.status}: {state.error}")

    def _say(self, state: RunState, line: str) -> None:
        name = state.label or self.preset_name
        if self.plain:
            self.console.print(f"[{name}] {line}", markup=False, highlight=False, soft_wrap=True)
        else:
            self.console.log(f"[bold]{name}[/] {line}", highlight=False)

    def _table(self) -> Table:
        table = Table(title=f"labconsole --batch {self.preset_name}", expand=False)
        for col in ("run", "status", "step", "loss", "accuracy", "R²", "phase"):
            table.add_column(col)
        for r in self.runs:
            e = r.last
            table.add_row(
                r.label or self.preset_name, r.status, f"{r.step}/{r.steps}",
                f"{r.loss:.4f}" if r.loss is not None else "",
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


def summary_table(runs: list[RunState]) -> Table:
    """Per run: status, final accuracy (and ceiling), acc_x, acc_y, R² (and step-0 baseline),
    phase, the first step in phase C."""
    table = Table(title="summary")
    for col in ("run", "status", "step", "accuracy", "acc_x", "acc_y", "R² (step 0)", "phase", "C at", "run dir"):
        table.add_column(col)
    for r in runs:
        e = r.last
        table.add_row(
            r.label or "-", r.status, str(r.step),
            f"{e.accuracy:.2f} / {e.ceiling:.2f}" if e else "", f"{e.accuracy_x:.2f}" if e else "",
            f"{e.accuracy_y:.2f}" if e else "",
            f"{e.r2_mean:.2f} ({r.baseline_r2:.2f})" if e and r.baseline_r2 is not None else "",
            e.phase if e else "", str(r.phase_c_step) if r.phase_c_step is not None else "-",
            r.run_dir.name if r.run_dir else "",
        )
    return table


def best_seeds(runs: list[RunState]) -> list[str]:
    """For settings run with several seeds: the seed with the best final accuracy (paper App. A.6)."""
    by_setting: dict[str, list[RunState]] = {}
    for r in runs:
        by_setting.setdefault(r.setting, []).append(r)
    lines = []
    for setting, group in by_setting.items():
        scored = [r for r in group if r.last is not None]
        if len(group) > 1 and scored:
            best = max(scored, key=lambda r: r.last.accuracy)
            lines.append(f"best seed of {setting or 'the preset'}: {best.label} "
                         f"(accuracy {best.last.accuracy:.2f}, R² {best.last.r2_mean:.2f})")
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
    specs = [_share_cores(spec, jobs) for spec in preset.runs]
    states = [RunState(label=s.label, setting=s.setting, steps=s.config.train.steps) for s in specs]
    starters = [_starter(spec, preset.name, runs_dir) for spec in specs]
    return Batch(preset.name, states, runs_dir, jobs, out).run(starters)


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


def _starter(spec: RunSpec, preset_name: str, runs_dir: Path):
    def start() -> tuple[Path, subprocess.Popen]:
        run_dir = runner.create_run(spec, preset_name, runs_dir)
        return run_dir, runner.spawn(run_dir)

    return start


def resume_run(run_dir: Path, out: TextIO = sys.stdout) -> int:
    """``labconsole --batch --resume RUNDIR``: continue from the latest checkpoint, new segment."""
    try:
        meta = read_meta(run_dir)
        from labconsole.presets import load_config

        cfg = load_config(run_dir / "config.toml")
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(f"--resume {run_dir}: not a readable run directory ({exc})") from None
    status = effective_status(meta)
    if status == "running":
        raise BadInput(f"--resume {run_dir}: the run is still running (pid {meta.pid})")
    if status == "completed":
        raise BadInput(f"--resume {run_dir}: the run already completed")
    state = RunState(label=meta.label, setting=meta.label, steps=cfg.train.steps, tail=EventTail(run_dir / EVENTS))
    # Events of earlier segments are folded first (the summary covers the whole run); the tail
    # keeps its offset, so the new segment's events are shown once.
    for event in state.tail.poll():
        state.fold(event)

    def start() -> tuple[Path, subprocess.Popen]:
        return run_dir, runner.resume(run_dir)

    return Batch(meta.preset, [state], run_dir.parent, 1, out).run([start])


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


__all__ = ["BadInput", "PresetError", "resume_run", "run_preset", "EXIT_BAD_INPUT"]
