"""The console's only door to the rest of labconsole: presets, run dirs, sweeps, the runner, the stream.

No Textual. Every call here may block (file or socket I/O, a subprocess spawn), so the app makes
them from thread workers only. Presets, sweeps, the runner and the stream are imported on first
use, which keeps the console's start-up light; none of them may import torch or umap (the app
process never does: tests/test_app_imports.py).

A sweep is followed by ``SweepFollower``: one ``EventTail`` per run reads only the bytes its
events file gained since the last poll, ``runview.apply`` folds them, and each poll returns an
immutable ``SweepSnapshot`` (re-aggregated only when an eval or a status changed).
"""
from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from labconsole.eventlog import EventTail, read_events
from labconsole.events import Event
from labconsole.runview import FINAL, RunView, liveness, replay

if TYPE_CHECKING:  # annotations only: presets, rundir, sweeps are imported on first use, below
    from labconsole.aggregate import SettingAggregate
    from labconsole.presets import Preset, RunSpec
    from labconsole.rundir import RunInfo
    from labconsole.sweep import Manifest

STDERR_TAIL_BYTES = 8192  # enough for the last ~30 lines of a traceback


class Backend:
    """Presets, runs and the runner, as the console uses them. Tests may substitute a fake."""

    _gpus: list[str] | None = None  # visible_gpus(), once asked

    def list_presets(self, presets_dir: Path) -> list[Preset]:
        """Every preset of ``presets_dir``; one that does not load comes with its ``error`` set."""
        from labconsole.presets import list_presets

        return list(list_presets(presets_dir))

    def load_preset(self, path: Path, overrides: Sequence[str] = ()) -> Preset:
        """Raises ``labconsole.presets.PresetError`` (a ValueError) with a one-line message."""
        from labconsole.presets import load_preset

        return load_preset(path, overrides)

    def cost_lines(self, preset: Preset) -> list[str]:
        """What the preset's runs would cost on this machine (a probe subprocess: seconds) and its
        CPU miniature; a probe that fails gives one line saying so."""
        from labconsole.cost import preset_cost

        return preset_cost(preset)[0]

    def gpus(self) -> list[str]:
        """The GPUs a run may be given (``gpus.visible_gpus``: nvidia-smi once, then cached)."""
        if self._gpus is None:
            from labconsole.gpus import visible_gpus

            self._gpus = visible_gpus()
        return self._gpus

    def start(self, spec: RunSpec, preset_name: str, runs_dir: Path, gpu: str | None = None) -> Path:
        """Start one run of a preset in a worker process, on its share of the cores beside the
        live runs of ``runs_dir`` (a batch's, other console runs); returns its new run dir.
        ``gpu``: the GPU its worker sees as cuda:0; "auto": the visible one with the fewest live
        runs of ``runs_dir`` (none on a box without GPUs)."""
        from labconsole import runner
        from labconsole.gpus import least_loaded

        if gpu == "auto":
            gpu = least_loaded(self.gpus(), runs_dir) if self.gpus() else None
        return runner.start(spec, preset_name, runs_dir, gpu)

    def stop(self, run_dir: Path) -> bool:
        """SIGTERM the run's worker; False when it was not running."""
        from labconsole import runner

        return runner.stop(run_dir)

    def resume(self, run_dir: Path) -> None:
        """Continue a stopped / failed / crashed run from its latest checkpoint (a new segment), and
        return once its worker is live: until then meta.json still describes the dead segment, and
        a viewer attaching now would read it as over.

        Raises:
            ValueError: the run is still running, or the directory is not a run.
            RuntimeError: the new worker exited at start or did not come up.
        """
        from labconsole import runner

        runner.wait_live(run_dir, runner.resume(run_dir))

    def list_runs(self, runs_dir: Path) -> list[RunInfo]:
        """Every run under ``runs_dir``, newest first (run ids start with their UTC start stamp)."""
        from labconsole.rundir import list_runs

        return list(reversed(list_runs(runs_dir)))

    def follow(self, run_dir: Path, stop: threading.Event) -> Iterator[Event]:
        """The run's events from the first: replayed, then live while it is served (until ``stop``)."""
        from labconsole.stream import follow

        return follow(run_dir, stop)

    def status(self, run_dir: Path) -> str:
        """The run dir's verdict: running / completed / stopped / failed / crashed, or
        ``starting`` while its worker has not written meta.json yet."""
        from labconsole.rundir import effective_status, read_meta

        try:
            return effective_status(read_meta(run_dir))
        except FileNotFoundError:
            return "starting"

    def worker_host(self, run_dir: Path) -> str:
        """The host of the run's worker when it is another one (a cluster node), else "": its live
        socket is local to its node, so a console here follows its events file."""
        import socket

        from labconsole.rundir import read_meta

        try:
            host = read_meta(run_dir).host
        except (FileNotFoundError, ValueError):
            return ""
        return host if host and host != socket.gethostname() else ""

    def run_view(self, run_dir: Path) -> RunView:
        """The run's events.jsonl folded into a view, once (an empty view when there is none yet)."""
        events_file = Path(run_dir) / "events.jsonl"
        return replay(read_events(events_file)) if events_file.exists() else RunView()

    def list_sweeps(self, runs_dir: Path, runs: Sequence[RunInfo]) -> list[SweepInfo]:
        """Every sweep under ``runs_dir/sweeps``, newest first, its runs' statuses taken from
        ``runs`` (a ``list_runs`` listing of the same dir: no run dir is read twice)."""
        from labconsole.sweep import list_sweeps

        status = {r.id: r.status for r in runs}
        out = []
        for listing in reversed(list_sweeps(runs_dir)):
            m = listing.sweep.manifest if listing.sweep is not None else None
            if m is None:
                out.append(SweepInfo(listing.id, listing.path, error=listing.error))
                continue
            counts = Counter(status.get(r.run_dir, "unknown") if r.run_dir else "planned" for r in m.runs)
            out.append(SweepInfo(m.id, listing.path, m.preset, m.title, len(m.runs), m.created,
                                 tuple(sorted(counts.items()))))
        return out

    def follow_sweep(self, sweep_dir: Path) -> SweepFollower:
        """A follower of the sweep's runs; ``poll`` it (from a thread worker) for snapshots.

        Raises:
            labconsole.sweep.SweepError: (a ValueError) no such sweep, or an unreadable manifest.
        """
        return SweepFollower(sweep_dir)


@dataclass(frozen=True)
class SweepInfo:
    """One row of the sidebar's sweep list; ``error`` set (and the rest empty) for a broken manifest."""

    id: str
    path: Path
    preset: str = ""
    title: str = ""
    n_runs: int = 0
    created: float = 0.0
    counts: tuple[tuple[str, int], ...] = ()  # (status, runs) pairs; "planned": no run dir yet
    error: str = ""

    def count(self, *statuses: str) -> int:
        """How many of its runs have one of ``statuses``."""
        return sum(n for s, n in self.counts if s in statuses)


@dataclass(frozen=True)
class SweepSnapshot:
    """A sweep as one poll saw it. Never changed after it is made: workers post it to the UI."""

    dir: Path
    manifest: Manifest
    paths: tuple[Path | None, ...]  # per planned run: its run dir, None until created
    views: tuple[RunView | None, ...]  # per planned run, folded from its events
    statuses: tuple[str, ...]  # per planned run: its liveness, "planned" until created
    aggregates: tuple[SettingAggregate, ...]  # per setting of the grid, in its order
    version: int  # bumped by the follower whenever anything here changed

    def runs_of(self, setting: str) -> list[int]:
        """The indices of the planned runs of ``setting`` (a grid label)."""
        return [i for i, r in enumerate(self.manifest.runs) if r.setting == setting]


class SweepFollower:
    """Follows every run of a sweep incrementally; ``poll`` returns the latest ``SweepSnapshot``.

    Each poll reads what each events file gained (``EventTail``), folds it (``runview.apply``),
    re-reads meta.json only for runs not yet over, and re-aggregates only when an eval or a
    status changed: following 30 runs costs a few small reads a second, never a whole file.
    """

    def __init__(self, sweep_dir: Path) -> None:
        from labconsole.sweep import load

        self.sweep = load(sweep_dir)
        n = len(self.sweep.manifest.runs)
        self._tails: list[EventTail | None] = [None] * n
        self._views: list[RunView | None] = [None] * n
        self._statuses = ["planned"] * n
        self._snapshot: SweepSnapshot | None = None

    def poll(self, now: float | None = None) -> SweepSnapshot:
        """Read what is new in every run and return the sweep as it is now (the same object as
        the last poll's when nothing changed)."""
        now = time.time() if now is None else now
        self._reload_manifest()
        changed = evals_changed = False  # anything shown / anything aggregated
        for i in range(len(self._views)):
            old, old_status = self._views[i], self._statuses[i]
            self._read_run(i, now)
            new = self._views[i]
            changed |= new is not old or self._statuses[i] != old_status
            evals_changed |= new is not old and (old is None or new.evals is not old.evals)
        last = self._snapshot
        if last is None or changed:
            aggregates = self._aggregate() if last is None or evals_changed else last.aggregates
            self._snapshot = SweepSnapshot(self.sweep.dir, self.sweep.manifest, self._paths(), tuple(self._views),
                                           tuple(self._statuses), aggregates, (last.version + 1) if last else 0)
        return self._snapshot

    def _paths(self) -> tuple[Path | None, ...]:
        return tuple(self.sweep.run_path(i) for i in range(len(self._views)))

    def _reload_manifest(self) -> None:
        """Pick up run dirs the batch created since (it rewrites sweep.json as it creates each)."""
        from labconsole.sweep import SweepError, load

        if all(r.run_dir for r in self.sweep.manifest.runs):
            return
        try:
            self.sweep = load(self.sweep.dir)
        except SweepError:
            pass  # written atomically, so only a deleted sweep dir gets here: keep what we know

    def _read_run(self, i: int, now: float) -> None:
        from labconsole.rundir import EVENTS, read_meta

        path = self.sweep.run_path(i)
        if path is None:
            return
        if self._tails[i] is None or self._tails[i].path.parent != path:  # new, or restarted elsewhere
            self._tails[i] = EventTail(path / EVENTS)
            self._views[i] = RunView(run_id=path.name)
        events = self._tails[i].poll()
        if events:
            self._views[i] = replay(events, self._views[i])
        view = self._views[i]
        if view.status in FINAL:
            self._statuses[i] = view.status
            return
        try:
            meta = read_meta(path)
        except (FileNotFoundError, ValueError):
            meta = None  # its worker has not written meta.json yet; liveness judges from the events
        self._statuses[i] = liveness(view, meta, now)

    def _aggregate(self) -> tuple[SettingAggregate, ...]:
        from labconsole.aggregate import Member, aggregate

        m = self.sweep.manifest
        members = [Member(r.setting, r.seed, r.run_dir, v, r.label) for r, v in zip(m.runs, self._views)]
        return tuple(aggregate(m.grid, members))


def stderr_tail(run_dir: Path, n_lines: int = 30) -> tuple[str, ...]:
    """The last ``n_lines`` non-empty lines of ``run_dir/stderr.log`` (empty if it does not exist)."""
    path = Path(run_dir) / "stderr.log"
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - STDERR_TAIL_BYTES))
            data = fh.read()
    except FileNotFoundError:
        return ()
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > STDERR_TAIL_BYTES:
        lines = lines[1:]  # the first line is probably cut
    return tuple(line for line in lines if line.strip())[-n_lines:]
