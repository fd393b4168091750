"""The console's only door to the rest of labconsole: presets, run dirs, the runner, the stream.

No Textual. Every call here may block (file or socket I/O, a subprocess spawn), so the app makes
them from thread workers only. Presets, the runner and the stream are imported on first use, which
keeps the console's start-up light; none of them may import torch or umap (the app process never
does: tests/test_app_imports.py).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from labconsole.eventlog import read_events
from labconsole.events import Event
from labconsole.runview import RunView, replay

if TYPE_CHECKING:  # annotations only: presets and rundir are imported on first use, below
    from labconsole.presets import Preset, RunSpec
    from labconsole.rundir import RunInfo

STDERR_TAIL_BYTES = 8192  # enough for the last ~30 lines of a traceback


class Backend:
    """Presets, runs and the runner, as the console uses them. Tests may substitute a fake."""

    def list_presets(self, presets_dir: Path) -> list[Preset]:
        """Every preset of ``presets_dir``; one that does not load comes with its ``error`` set."""
        from labconsole.presets import list_presets

        return list(list_presets(presets_dir))

    def load_preset(self, path: Path, overrides: Sequence[str] = ()) -> Preset:
        """Raises ``labconsole.presets.PresetError`` (a ValueError) with a one-line message."""
        from labconsole.presets import load_preset

        return load_preset(path, overrides)

    def start(self, spec: RunSpec, preset_name: str, runs_dir: Path) -> Path:
        """Start one run of a preset in a worker process; returns its new run dir."""
        from labconsole import runner

        return runner.start(spec, preset_name, runs_dir)

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

    def run_view(self, run_dir: Path) -> RunView:
        """The run's events.jsonl folded into a view, once (an empty view when there is none yet)."""
        events_file = Path(run_dir) / "events.jsonl"
        return replay(read_events(events_file)) if events_file.exists() else RunView()


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
