"""The real console in a real terminal: scripts/tmux_console.sh starts it in tmux and reads the screen."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from test_app_helpers import write_run

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "tmux_console.sh"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
@pytest.mark.parametrize("size", ["160x48", "80x24"])
def test_the_console_draws_in_tmux(tmp_path, size):
    runs = tmp_path / "runs"
    write_run(runs, evals=4, stderr="UserWarning: n_neighbors is larger than the dataset size\n")
    proc = subprocess.run(
        [str(SCRIPT), "--runs", str(runs), "--presets", str(REPO / "presets"), "--size", size,
         "--keys", "a", "--wait", "ceiling 0.90", "--wait", "quick  CPU demo", "--timeout", "60"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    screen = proc.stdout.splitlines()
    cols, rows = map(int, size.split("x"))
    assert len(screen) == rows and max(len(line) for line in screen) <= cols
    text = proc.stdout
    for expected in ("Presets", "Runs", "completed", "accuracy · ceiling 0.90", "q Quit", "quick  CPU demo"):
        assert expected in text, expected
    if cols >= 120:  # everything at once: the phase history and the samples too
        for expected in ("A -> B at step 200; B -> C at step 300", "+ target x predicted", "n_neighbors"):
            assert expected in text, expected
