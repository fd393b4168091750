"""Shared builders for the console tests: synthetic runs written from the event dataclasses.

Imported by the other ``test_app_*`` modules; its own tests check the builders' output reads back.
"""
from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Callable

import numpy as np

from labconsole.events import (
    Checkpoint,
    Eval,
    Event,
    Log,
    PhaseChange,
    RunFinished,
    RunStarted,
    Train,
    encode,
)
from labconsole.eventlog import read_events
from labconsole.samples import Samples, write_samples as write_samples_file

SIDE = 32


def bump_image(x: float, y: float, sigma: float = 1.5) -> np.ndarray:
    """A dark bump on white in [-1, 1] (1 = white), centred at canvas (x, y) (DESIGN §5)."""
    j, i = np.meshgrid(np.arange(SIDE) + 0.5, np.arange(SIDE) + 0.5)
    intensity = 1 - np.exp(-((j - x) ** 2 + (i - y) ** 2) / (2 * sigma**2))
    return (intensity * 2 - 1).astype(np.float32)


def write_samples(run_dir: Path, step: int, n: int = 12, seed: int = 0) -> str:
    """Write ``samples/step-XXXXXXX.npz`` as an eval would; returns the path relative to run_dir."""
    rng = np.random.default_rng(seed + step)
    labels = rng.uniform(3, 29, size=(n, 2)).astype(np.float32)
    pred = (labels + rng.normal(0, 0.5, size=(n, 2))).astype(np.float32)
    images = np.stack([bump_image(x, y) for x, y in labels])
    embedding = np.column_stack([labels[:, 0], labels[:, 1], rng.normal(size=n)]).astype(np.float32)
    samples = Samples(images, labels, pred, np.ones(n, dtype=int), embedding, np.zeros(n, dtype=bool), step)
    return str(write_samples_file(run_dir, step, samples).relative_to(run_dir))


def make_eval(step: int, accuracy: float, phase: str, r2: float = 0.85, samples_path: str = "") -> Eval:
    return Eval(
        step=step, accuracy=accuracy, accuracy_x=min(1.0, accuracy + 0.1), accuracy_y=min(1.0, accuracy + 0.05),
        ceiling=0.9, ceiling_x=0.95, ceiling_y=0.95, r2_x=r2, r2_y=r2 - 0.05, r2_mean=r2 - 0.025,
        r2_pca_mean=r2 - 0.1, r2_shuffled=0.01, blobs_0=0.0, blobs_1=0.9, blobs_many=0.1,
        phase=phase, phase_reason=f"{phase}: 90% single bumps, accuracy {accuracy:.2f}",
        eval_seconds=1.0, n_samples=12, sampler="ddim-25", samples_path=samples_path,
    )


def story(run_dir: Path | None = None, run_id: str = "run", evals: int = 5, finished: str | None = "completed",
          train_per_eval: int = 20) -> list[Event]:
    """A run going A -> B -> C: RunStarted, Train bursts, Evals (with samples when run_dir is
    given), the two phase changes, a checkpoint, a warning, and optionally RunFinished."""
    steps_per_eval = 100
    out: list[Event] = [RunStarted(run_id=run_id, preset="quick", config={"train": {"steps": steps_per_eval * (evals - 1)}},
                                   device="cpu", n_params=1234, pid=0)]
    phase = "A"
    for k in range(evals):
        step = k * steps_per_eval
        if k:
            out += [Train(step=step - steps_per_eval + j * steps_per_eval // train_per_eval + 1, loss=1.0 / (step + j + 1),
                          lr=3e-4, images_per_s=500.0) for j in range(train_per_eval)]
        new = "A" if k < 2 else ("B" if k < evals - 1 else "C")
        rel = write_samples(run_dir, step) if run_dir is not None else ""
        out.append(make_eval(step, accuracy=k / evals, phase=new, r2=0.5 + 0.1 * k, samples_path=rel))
        if new != phase:
            out.append(PhaseChange(step=step, old=phase, new=new, reason=f"{new}: because"))
            phase = new
    out.append(Checkpoint(step=(evals - 1) * steps_per_eval, path="checkpoints/latest"))
    out.append(Log(level="warning", message="umap: n_neighbors larger than the data"))
    if finished:
        out.append(RunFinished(status=finished, step=(evals - 1) * steps_per_eval))
    return out


def write_run(runs_dir: Path, run_id: str = "20240101T000000Z-quick-abc123", *, evals: int = 5,
              status: str = "completed", stderr: str = "") -> Path:
    """A finished run dir as the worker leaves it: meta.json, events.jsonl, samples, stderr.log."""
    from labconsole.rundir import Meta, write_meta

    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    events = story(run_dir, run_id, evals, finished=status)
    (run_dir / "events.jsonl").write_text("".join(encode(e) + "\n" for e in events))
    (run_dir / "stderr.log").write_text(stderr)
    now = time.time()
    write_meta(run_dir, Meta(run_id=run_id, status=status, preset="quick", started=now - 300, ended=now,
                             heartbeat=now, step=(evals - 1) * 100))
    return run_dir


async def wait_for(pilot, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until ``predicate()`` holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        await pilot.pause(0.05)


def screen_text(app) -> str:
    """The plain text on the app's screen now, as a user would read it (what export_screenshot
    renders, without the SVG)."""
    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


def test_story_reads_back(tmp_path):
    run_dir = write_run(tmp_path)
    events = read_events(run_dir / "events.jsonl")
    kinds = {type(e).__name__ for e in events}
    assert {"RunStarted", "Train", "Eval", "PhaseChange", "Checkpoint", "Log", "RunFinished"} <= kinds
    evals = [e for e in events if isinstance(e, Eval)]
    assert all((run_dir / e.samples_path).exists() for e in evals)
    img = bump_image(10.5, 20.5)
    assert img[20, 10] == img.min() and img.max() > 0.99  # dark centre at (row y, col x)
