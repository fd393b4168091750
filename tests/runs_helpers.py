"""Shared by the tests that start real workers: a tiny, fast configuration and polling helpers."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from labconsole import eventlog
from labconsole import events as ev

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ROOT / "presets"

# A tiny UNet, short evals (DDIM-3 of 8 labels), one seed: a run of a few seconds on 2 cores.
# 8 labels are below UMAP's 10 (metrics.MIN_SAMPLES): R² is NaN, and the worker never imports
# umap-learn (2.4 s of imports, then its fit) — a test that reads R² or phase C asks for UMAP_EVAL.
TINY = (
    "model.size=tiny", "diffusion.T=50", "train.batch_size=8", "train.log_every=1", "train.eval_at=[]",
    "eval.n_samples=8", "eval.n_ood=8", "eval.umap_neighbors=5", "eval.sampler=ddim", "eval.ddim_steps=3", "train.threads=1",
)


UMAP_EVAL = "eval.n_samples=16"  # enough labels for UMAP's R² (and so for phases B / C by R²)


def tiny(*extra: str, steps: int = 12, eval_every: int = 6, checkpoint_every: int = 6, seeds: bool = True) -> list[str]:
    """``--set`` overrides that shrink any preset to a run of a few seconds."""
    out = [*TINY, f"train.steps={steps}", f"train.eval_every={eval_every}", f"train.checkpoint_every={checkpoint_every}"]
    return out + (["sweep.seeds=[0]"] if seeds else []) + list(extra)


def set_args(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def labconsole(*args: str, cwd: Path, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (stdout is a pipe, so batch output is plain lines)."""
    return subprocess.run([sys.executable, "-m", "labconsole.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=_env(), **kw)


def popen_labconsole(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "labconsole.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def wait_for(predicate: Callable[[], object], timeout: float = 120, what: str = "condition") -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def events_of(run_dir: Path) -> list[ev.Event]:
    path = run_dir / "events.jsonl"
    return eventlog.read_events(path) if path.exists() else []


def first(run_dir: Path, kind: type[ev.Event], where: Callable[[ev.Event], bool] = lambda e: True):
    return next((e for e in events_of(run_dir) if isinstance(e, kind) and where(e)), None)
