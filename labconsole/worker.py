"""The trainer subprocess: ``python -m labconsole.worker RUN_DIR [--resume]`` (DESIGN §3).

Trains and evaluates the run whose ``config.toml`` is in RUN_DIR, writes the run directory
(events.jsonl, samples, checkpoints, meta.json with a heartbeat) and serves the same event
lines live on the run's Unix socket. SIGTERM / SIGINT stop it gracefully: it finishes the
step, writes a checkpoint and ends with status "stopped". Exit 0 when completed or stopped,
1 when the run failed.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import torch

from labconsole import eventlog
from labconsole import events as ev
from labconsole.config import RunConfig
from labconsole.evaluate import Evaluator
from labconsole.runconfig import config_to_dict, load_config
from labconsole.rundir import CONFIG, EVENTS, Meta, heartbeat, read_meta, write_meta
from labconsole.samples import write_samples
from labconsole.stream import EventServer
from model.checkpoint import checkpoint_step, latest_checkpoint
from model.device import place
from model.train import CheckpointSaved, NonFiniteLoss, TrainProgress, train
from model.unet import UNet, count_parameters

HEARTBEAT_SECONDS = 5.0


class Worker:
    """One segment of a run: from a fresh start or a resume to completed / stopped / failed."""

    def __init__(self, run_dir: Path, resume: bool):
        self.run_dir = run_dir.absolute()
        self.cfg: RunConfig = load_config(self.run_dir / CONFIG)
        prior = eventlog.read_events(self.run_dir / EVENTS) if (self.run_dir / EVENTS).exists() else []
        self.segment = sum(isinstance(e, ev.RunStarted) for e in prior)
        self.phase = next((e.phase for e in reversed(prior) if isinstance(e, ev.Eval)), "")
        self.resume_from = latest_checkpoint(self.run_dir / "checkpoints") if resume else None
        self.step = 0
        self.stop = threading.Event()  # set by SIGTERM / SIGINT: finish the step, checkpoint, end
        self.done = threading.Event()  # set when the segment ends: the heartbeat thread exits
        self.meta_lock = threading.Lock()
        self.server: EventServer | None = None

    # -- plumbing ------------------------------------------------------------------------------

    def emit(self, cls: type[ev.Event], **fields) -> None:
        self.server.emit(cls(**fields, segment=self.segment))

    def _beat(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            with self.meta_lock:
                heartbeat(self.run_dir, self.step)

    def _finish_meta(self, status: str, error: str = "") -> None:
        with self.meta_lock:
            meta = read_meta(self.run_dir)
            write_meta(self.run_dir, dataclasses.replace(
                meta, status=status, error=error, ended=time.time(), step=self.step, socket=""))

    # -- hooks given to train() ------------------------------------------------------------------

    def on_event(self, progress: TrainProgress | CheckpointSaved) -> None:
        """train()'s typed progress -> the run's events (the one place they are converted)."""
        self.step = progress.step
        if isinstance(progress, TrainProgress):
            self.emit(ev.Train, **dataclasses.asdict(progress))
        else:
            self.emit(ev.Checkpoint, step=progress.step, path=str(progress.path.relative_to(self.run_dir)))

    def evaluate(self, step: int, model: UNet) -> None:
        """Evaluate, write the samples file, then announce it (Eval, and PhaseChange on a change)."""
        self.step = step
        result = self.evaluator(step, model)
        path = write_samples(self.run_dir, step, result.samples)
        self.server.emit(result.to_event(str(path.relative_to(self.run_dir)), self.segment))
        if self.phase and result.phase != self.phase:
            self.emit(ev.PhaseChange, step=step, old=self.phase, new=result.phase, reason=result.phase_reason)
        self.phase = result.phase

    # -- the segment ------------------------------------------------------------------------------

    def run(self) -> int:
        previous = read_meta(self.run_dir)
        self.server = EventServer(self.run_dir)
        start_step = checkpoint_step(self.resume_from) if self.resume_from else 0
        self.step = start_step
        meta = Meta.for_this_process(previous.run_id, previous.preset, previous.label,
                                     socket_path=str(self.server.socket_path), segment=self.segment, step=start_step)
        write_meta(self.run_dir, meta)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        status, error = "failed", ""
        try:
            status = self._train(previous, start_step)
        except NonFiniteLoss as exc:
            error, self.step = str(exc), exc.step
        except Exception as exc:  # any failure ends the run as "failed", with its cause on record
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        if error:
            self.emit(ev.Log, level="error", message=error)
        self.done.set()
        self._finish_meta(status, error)  # first, so a viewer that sees run_finished reads the same status
        self.emit(ev.RunFinished, status=status, step=self.step, error=error)
        self.server.close()
        return 0 if status in ("completed", "stopped") else 1

    def _train(self, meta: Meta, start_step: int) -> str:
        cfg = self.cfg
        placed = place(cfg.train)  # first, before any torch op: it sizes torch's thread pool
        with torch.device("meta"):
            n_params = count_parameters(UNet(cfg.model))
        self.emit(ev.RunStarted, run_id=meta.run_id, preset=meta.preset, config=config_to_dict(cfg),
                  device=placed.describe(), n_params=n_params, start_step=start_step, pid=os.getpid())
        if self.resume_from is None and self.segment > 0:
            self.emit(ev.Log, level="warning", message="no checkpoint to resume from: starting again at step 0")
        self.evaluator = Evaluator(cfg, placed.device)
        result = train(
            cfg, checkpoint_dir=self.run_dir / "checkpoints", on_event=self.on_event,
            should_stop=self.stop.is_set, evaluate=self.evaluate, resume_from=self.resume_from,
            resolved_config=config_to_dict(cfg),
        )
        self.step = result.step
        return result.status


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print("usage: python -m labconsole.worker RUN_DIR [--resume]", file=sys.stderr)
        return 2
    return Worker(Path(argv[0]), resume="--resume" in argv[1:]).run()


if __name__ == "__main__":
    sys.exit(main())
