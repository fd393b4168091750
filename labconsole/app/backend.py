"""The console's only door to the rest of labconsole: presets, run dirs, the runner, the stream.

No Textual. Every call here may block (file or socket I/O, a subprocess spawn), so the app makes
them from thread workers only. The modules behind it are imported on first use, which keeps the
console's start-up to Textual alone; none of them may import torch or umap (the app process
never does: tests/test_app_imports.py).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

from labconsole.events import Event

STDERR_TAIL_BYTES = 8192  # enough for the last ~30 lines of a traceback


class Backend:
    """Presets, runs and the runner, as the console uses them. Tests may substitute a fake."""

    def list_presets(self, presets_dir: Path) -> list[Any]:
        from labconsole.presets import list_presets

        return list(list_presets(presets_dir))

    def load_preset(self, path: Path, overrides: Sequence[str] = ()) -> Any:
        """Raises ``labconsole.presets.PresetError`` (a ValueError) with a one-line message."""
        from labconsole.presets import load_preset

        return load_preset(path, overrides)

    def start(self, spec: Any, preset_name: str, runs_dir: Path) -> Path:
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

    def list_runs(self, runs_dir: Path) -> list[Any]:
        """Every run under ``runs_dir``, newest first (run ids start with their UTC start stamp)."""
        from labconsole.rundir import list_runs

        return list(reversed(list_runs(runs_dir)))

    def follow(self, run_dir: Path, stop: threading.Event) -> Iterator[Event]:
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
