"""The trainer subprocess: ``python -m labconsole.worker RUN_DIR [--resume]`` (DESIGN §3).

Trains and evaluates the run whose ``config.toml`` is in RUN_DIR, writes the run directory
(events.jsonl, samples, checkpoints, meta.json with a heartbeat) and serves the same event
lines live on the run's Unix socket. SIGTERM / SIGINT stop it gracefully: it finishes the
step, writes a checkpoint and ends with status "stopped". Exit 0 when completed or stopped,
1 when the run failed.

Stalls: the loop marks progress after every training step and every sampler step of an eval;
the heartbeat thread, which lives on when the loop hangs, marks the run "stalled" (meta.json, an
``Activity`` event, a warning) after ``train.stall_after`` seconds without a mark, and "running"
again once the loop moves. ``LABCONSOLE_TEST_HOLD`` is a test hook, never configuration: while
the file it names exists, the loop waits after its step as a hung one would (tests/test_stall.py).
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
from labconsole.cores import SHARE_ENV, CoreShare
from labconsole import events as ev
from labconsole.config import RunConfig
from labconsole.evaluate import Evaluator
from labconsole.runconfig import config_to_dict, load_config
from labconsole.rundir import CONFIG, EVENTS, Meta, heartbeat, read_meta, write_meta
from labconsole.samples import write_samples
from labconsole.stream import EventServer
from model.checkpoint import checkpoint_step, latest_checkpoint
from model.device import pick_device, place
from model.train import CheckpointSaved, NonFiniteLoss, TrainProgress, train
from model.unet import UNet, count_parameters

HEARTBEAT_SECONDS = 5.0
HOLD_ENV = "LABCONSOLE_TEST_HOLD"  # a test hook (module docstring), never configuration


class Progress:
    """The loop's last progress mark and what it is doing. Written by the loop, read by the
    heartbeat thread: single attribute writes, atomic under the GIL, so no lock."""

    def __init__(self, what: str = "starting"):
        self.what = what
        self.last = time.monotonic()

    def mark(self) -> None:
        """The loop moved (a training step, a sampler step, a checkpoint)."""
        self.last = time.monotonic()

    def idle(self) -> float:
        """Seconds since the last mark."""
        return time.monotonic() - self.last


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
        self.meta_lock = threading.Lock()  # meta.json writes; the heartbeat thread emits under it too
        self.server: EventServer | None = None
        self.cores: CoreShare | None = None  # this run's share of the box's cores, when it shares them
        self.progress = Progress()
        self.stalled = False  # the heartbeat thread's verdict, as last written to meta.json
        self._stall_mark = 0.0  # the progress mark the current stall began after
        self.last_emit = time.monotonic()
        hold = os.environ.get(HOLD_ENV)
        self.hold = Path(hold) if hold else None

    # -- plumbing ------------------------------------------------------------------------------

    def emit(self, cls: type[ev.Event], **fields) -> None:
        self.publish(cls(**fields, segment=self.segment))

    def publish(self, event: ev.Event) -> None:
        self.last_emit = time.monotonic()
        self.server.emit(event)

    def _beat(self) -> None:
        """The heartbeat thread: meta.json's heartbeat every HEARTBEAT_SECONDS, and the stall
        watch often enough to notice a stall within a quarter of train.stall_after."""
        limit = self.cfg.train.stall_after
        next_beat = time.monotonic() + HEARTBEAT_SECONDS
        while not self.done.wait(min(HEARTBEAT_SECONDS, limit / 4)):
            with self.meta_lock:
                if self.done.is_set():  # the segment ended: its final meta.json is being written
                    return
                self._watch(limit)
                if time.monotonic() >= next_beat:
                    heartbeat(self.run_dir, self.step)
                    next_beat = time.monotonic() + HEARTBEAT_SECONDS

    def _watch(self, limit: float) -> None:
        """Stalled when the loop has not moved for ``limit`` s, running again when it moves; while it
        moves in silence (a long eval), one Activity per ``limit`` s keeps the events from going quiet."""
        idle = self.progress.idle()
        if idle > limit and not self.stalled:
            self._stall_mark = self.progress.last
            self._set_stalled(True, f"no progress for {idle:.0f} s at step {self.step} ({self.progress.what})")
        elif idle <= limit and self.stalled:
            gap = self.progress.last - self._stall_mark
            self._set_stalled(False, f"progress again at step {self.step} ({self.progress.what}) after {gap:.0f} s")
        elif not self.stalled and time.monotonic() - self.last_emit >= limit:
            self.emit(ev.Activity, step=self.step, what=self.progress.what, idle_s=round(idle, 1))

    def _set_stalled(self, stalled: bool, message: str) -> None:
        """meta.json first, then the events: a viewer that sees the event reads the same status."""
        self.stalled = stalled
        meta = read_meta(self.run_dir)
        write_meta(self.run_dir, dataclasses.replace(meta, status="stalled" if stalled else "running",
                                                     heartbeat=time.time(), step=self.step))
        self.emit(ev.Activity, step=self.step, what=self.progress.what, stalled=stalled,
                  idle_s=round(self.progress.idle(), 1))
        self.emit(ev.Log, level="warning" if stalled else "info", message=message)

    def _finish_meta(self, status: str, error: str = "") -> None:
        with self.meta_lock:
            meta = read_meta(self.run_dir)
            write_meta(self.run_dir, dataclasses.replace(
                meta, status=status, error=error, ended=time.time(), step=self.step, socket=""))

    # -- hooks given to train() ------------------------------------------------------------------

    def should_stop(self) -> bool:
        """train()'s poll after every step: the loop's progress mark, and whether to stop."""
        if self.hold is not None:
            while self.hold.exists() and not self.stop.is_set():  # the test hook (module docstring)
                self.stop.wait(0.05)
        self.progress.mark()
        if self.cores is not None:
            moved = self.cores.update()  # here, in the training thread: OpenMP's count is per thread
            if moved:
                self.emit(ev.Log, level="info", message=moved)
        return self.stop.is_set()

    def on_event(self, progress: TrainProgress | CheckpointSaved) -> None:
        """train()'s typed progress -> the run's events (the one place they are converted)."""
        self.progress.mark()
        self.step = progress.step
        if isinstance(progress, TrainProgress):
            self.emit(ev.Train, **dataclasses.asdict(progress))
        else:
            self.emit(ev.Checkpoint, step=progress.step, path=str(progress.path.relative_to(self.run_dir)))

    def evaluate(self, step: int, model: UNet) -> None:
        """Evaluate, write the samples file, then announce it (Eval, and PhaseChange on a change)."""
        self.step = step
        self._doing("evaluating")
        result = self.evaluator(step, model)  # marks progress at every sampler step
        path = write_samples(self.run_dir, step, result.samples)
        self.publish(result.to_event(str(path.relative_to(self.run_dir)), self.segment))
        if self.phase and result.phase != self.phase:
            self.emit(ev.PhaseChange, step=step, old=self.phase, new=result.phase, reason=result.phase_reason)
        self.phase = result.phase
        self._doing("training")

    def _doing(self, what: str) -> None:
        """The loop starts ``what``: a progress mark and its Activity event. Never "stalled": the loop
        that emits it has just moved (meta.json follows within a heartbeat tick, when the heartbeat
        thread sees the mark and writes "running" with its "progress again" line)."""
        self.progress.what = what
        self.progress.mark()
        self.emit(ev.Activity, step=self.step, what=what, stalled=False)

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
        placed = place(self._share_cores(cfg.train))  # first, before any torch op: it sizes torch's thread pool
        with torch.device("meta"):
            n_params = count_parameters(UNet(cfg.model))
        self.emit(ev.RunStarted, run_id=meta.run_id, preset=meta.preset, config=config_to_dict(cfg),
                  device=placed.describe(), n_params=n_params, start_step=start_step, pid=os.getpid())
        if self.resume_from is None and self.segment > 0:
            self.emit(ev.Log, level="warning", message="no checkpoint to resume from: starting again at step 0")
        self.evaluator = Evaluator(cfg, placed.device, on_progress=self.progress.mark)
        for note in self.evaluator.notes:  # e.g. a grid with fewer centres than eval labels
            self.emit(ev.Log, level="warning", message=note)
        self.progress.what = "training"  # from here on train() runs: its own setup, steps, evals
        self.progress.mark()
        result = train(
            cfg, checkpoint_dir=self.run_dir / "checkpoints", on_event=self.on_event,
            should_stop=self.should_stop, evaluate=self.evaluate, resume_from=self.resume_from,
            resolved_config=config_to_dict(cfg),
        )
        self.step = result.step
        return result.status

    def _share_cores(self, train_cfg):
        """``train_cfg`` with this run's share of the cores as its threads, when it shares them: a
        worker detached on this box (``SHARE_ENV``) on the CPU whose config leaves threads to it
        (``labconsole.cores``). The run's config.toml keeps 0: the share moves as runs come and go."""
        if train_cfg.threads > 0 or not os.environ.get(SHARE_ENV) or pick_device(train_cfg.device).type != "cpu":
            return train_cfg
        self.cores = CoreShare(self.run_dir.parent, torch.get_num_threads(), torch.set_num_threads)
        return dataclasses.replace(train_cfg, threads=self.cores.threads)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print("usage: python -m labconsole.worker RUN_DIR [--resume]", file=sys.stderr)
        return 2
    return Worker(Path(argv[0]), resume="--resume" in argv[1:]).run()


if __name__ == "__main__":
    sys.exit(main())
