"""Fixtures shared by the tests that start real worker processes."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from labconsole.rundir import pid_alive, read_meta

# Under pytest-xdist (pyproject's addopts) the suite runs in two processes that share the cores.
# Torch's default is a thread per core in each of them and in every worker they start, and
# oversubscribed torch threads wait on each other at every op (docs/benchmarks.md: a w16 step
# 10-40x slower): one thread each. Set before any test imports torch; a user's own setting wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def runs_dir(tmp_path: Path):
    """A fresh runs directory; any worker still alive under it when the test ends is killed, so a
    failing test never leaves a trainer running behind it."""
    yield tmp_path
    for meta_file in tmp_path.rglob("meta.json"):
        try:
            meta = read_meta(meta_file.parent)
        except (OSError, ValueError):
            continue
        if meta.pid > 0 and pid_alive(meta.pid, meta.pid_start):
            try:  # a local worker leads its own session / process group ...
                os.killpg(meta.pid, signal.SIGKILL)
            except (PermissionError, ProcessLookupError):  # ... an attached one (SLURM, Ray) does not
                os.kill(meta.pid, signal.SIGKILL)


@pytest.fixture
def one_thread():
    """Torch on one thread for the test; the next test gets back what it had. (torch imported
    here, not at the top: tests of the torch-free layers share this conftest.)"""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
