"""The trainer subprocess: ``python -m labconsole.worker RUN_DIR [--resume]`` (DESIGN §3).

Trains and evaluates the run whose ``config.toml`` is in RUN_DIR, writes the run directory
(events.jsonl, samples, checkpoints, meta.json with a heartbeat) and serves the same event
lines live on the run's Unix socket. SIGTERM / SIGINT stop it gracefully: it finishes the
step, writes a checkpoint and ends with status "stopped". Exit 0 when completed or stopped,
1 when the run failed.
"""
from __future__ import annotations

import dataclasses
import io
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from labconsole import events as ev
from labconsole.config import RunConfig
from labconsole.evaluate import Evaluator
from labconsole.presets import config_to_dict, load_config
from labconsole.rundir import (
    CONFIG, EVENTS, Meta, heartbeat, read_meta, samples_path, write_atomic, write_meta,
)
from labconsole.stream import EventServer
from model.checkpoint import checkpoint_step, latest_checkpoint
from model.train import NonFiniteLoss, pick_device, precision_label, train
from model.unet import UNet, count_parameters

HEARTBEAT_SECONDS = 5.0


class Worker:
    """One segment of a run: from a fresh start or a resume to completed / stopped / failed."""

    def __init__(self, run_dir: Path, resume: bool):
        self.run_dir = run_dir.absolute()
        self.cfg: RunConfig = load_config(self.run_dir / CONFIG)
        prior = ev.read_events(self.run_dir / EVENTS) if (self.run_dir / EVENTS).exists() else []
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

    def on_event(self, kind: str, fields: dict) -> None:
        self.step = fields.get("step", self.step)
        if kind == "train":
            self.emit(ev.Train, **fields)
        elif kind == "checkpoint":
            self.emit(ev.Checkpoint, step=fields["step"], path=f"checkpoints/{fields['path']}")

    def evaluate(self, step: int, model: UNet) -> None:
        self.step = step
        result = self.evaluator(step, model)
        path = samples_path(self.run_dir, step)
        path.parent.mkdir(exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, **result.arrays)
        write_atomic(path, buf.getvalue())
        self.emit(ev.Eval, **result.fields, samples_path=str(path.relative_to(self.run_dir)))
        new = result.fields["phase"]
        if self.phase and new != self.phase:
            self.emit(ev.PhaseChange, step=step, old=self.phase, new=new, reason=result.fields["phase_reason"])
        self.phase = new

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
        device = pick_device(cfg.train.device)
        if cfg.train.threads > 0:
            # Before any torch op: a thread pool started larger keeps its extra OpenMP threads
            # spinning on barriers, stealing a core (measured: 108 -> 9 images/s at 1 thread).
            torch.set_num_threads(cfg.train.threads)
        with torch.device("meta"):
            n_params = count_parameters(UNet(cfg.model))
        threads = (cfg.train.threads or torch.get_num_threads()) if device.type == "cpu" else 0
        how = [f"{threads} threads"] if threads else []
        how.append(precision_label(cfg.train.precision, device))
        self.emit(ev.RunStarted, run_id=meta.run_id, preset=meta.preset, config=config_to_dict(cfg),
                  device=f"{device.type} ({', '.join(how)})", n_params=n_params,
                  start_step=start_step, pid=os.getpid())
        if self.resume_from is None and self.segment > 0:
            self.emit(ev.Log, level="warning", message="no checkpoint to resume from: starting again at step 0")
        self.evaluator = Evaluator(cfg, device)
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
