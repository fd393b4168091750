"""The cores shared among every live run of a runs directory (``labconsole.cores``): counted from
the run dirs, whoever started the runs, and counted again while a run trains — a run that started
alone gives up cores when a second arrives and takes them back when it is alone again."""
from __future__ import annotations

import os
import socket
import time

import pytest

from labconsole import cores, runner
from labconsole import events as ev
from labconsole.app.backend import Backend
from labconsole.presets import load_preset
from labconsole.rundir import Meta, live_here, read_meta, write_meta
from labconsole.worker import Worker
from runs_helpers import PRESETS, first, tiny, wait_for


def fake_run(runs_dir, name: str, **meta) -> None:
    (runs_dir / name).mkdir(parents=True, exist_ok=True)
    write_meta(runs_dir / name, Meta(run_id=name, **meta))


def live(runs_dir, name: str) -> None:
    fake_run(runs_dir, name, status="running", pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())


def test_live_runs_here_are_counted_and_the_others_are_not(tmp_path):
    now, me = time.time(), socket.gethostname()
    live(tmp_path, "a-live")
    fake_run(tmp_path, "b-stalled", status="stalled", pid=os.getpid(), host=me, heartbeat=now)
    fake_run(tmp_path, "c-starting", status="running", heartbeat=now)  # made, its worker not up yet
    fake_run(tmp_path, "d-done", status="completed", host=me)
    fake_run(tmp_path, "e-dead", status="running", pid=2 ** 22 + 11, host=me, heartbeat=now)  # crashed
    fake_run(tmp_path, "f-elsewhere", status="running", pid=1, host="gpu-node-7", heartbeat=now)
    fake_run(tmp_path / "sweeps", "g-manifest", status="running", heartbeat=now)
    (tmp_path / "h-broken").mkdir()
    assert sorted(m.run_id for m in live_here(tmp_path)) == ["a-live", "b-stalled", "c-starting"]
    assert live_here(tmp_path / "missing") == []
    assert cores.share_of(4, cores=8) == 2
    assert cores.share_of(6, cores=4) == 1  # never below one
    assert cores.share_of(1, cores=8) == 0  # alone: torch's default


def test_a_share_follows_the_live_runs_both_ways(tmp_path):
    live(tmp_path, "me")
    calls = []
    share = cores.CoreShare(tmp_path, alone=8, set_threads=calls.append, cores=8, every=0)
    assert share.threads == 8 and share.update() == "" and calls == []
    live(tmp_path, "other-1")
    live(tmp_path, "other-2")
    line = share.update()
    assert line.startswith("CPU threads 8 -> 2: 3 live run(s)") and calls == [2]
    assert share.update() == ""  # no change, no call
    fake_run(tmp_path, "other-1", status="completed")
    fake_run(tmp_path, "other-2", status="stopped")
    assert share.update().startswith("CPU threads 2 -> 8: 1 live run(s)") and calls == [2, 8]
    # An OMP_NUM_THREADS the user set (alone = 1) stays a ceiling; a recount waits for its time.
    capped = cores.CoreShare(tmp_path, alone=1, set_threads=calls.append, cores=8, every=3600)
    live(tmp_path, "other-1")
    assert capped.threads == 1 and capped.update() == "" and calls == [2, 8]


def test_the_worker_shares_only_what_its_config_leaves_to_it(tmp_path, monkeypatch):
    # tmp_path, not the runs_dir fixture: its clean-up kills every live pid it finds, and the fake
    # live run here is this test process
    runs_dir = tmp_path
    spec = load_preset(PRESETS / "quick.toml", [o for o in tiny() if o != "train.threads=1"]).runs[0]
    run_dir = runner.create_run(spec, "quick", runs_dir)  # its meta says starting: one live run
    live(runs_dir, "other")
    monkeypatch.setenv(cores.SHARE_ENV, "1")
    worker = Worker(run_dir, resume=False)
    shared = worker._share_cores(spec.config.train)
    assert worker.cores is not None and shared.threads == worker.cores.threads >= 1
    pinned = load_preset(PRESETS / "quick.toml", ["train.threads=3"]).runs[0].config.train
    assert Worker(run_dir, resume=False)._share_cores(pinned).threads == 3
    monkeypatch.delenv(cores.SHARE_ENV)  # a SLURM job's or Ray task's worker: its scheduler's cores
    alone = Worker(run_dir, resume=False)
    assert alone._share_cores(spec.config.train).threads == 0 and alone.cores is None


@pytest.mark.skipif(cores.box_cores() < 2, reason="one core: nothing to share")
def test_a_live_run_gives_up_cores_to_a_second_and_takes_them_back(runs_dir, monkeypatch):
    # The first run starts alone on every core (OMP_NUM_THREADS = the box's cores: the test
    # process's own OMP_NUM_THREADS=1 under xdist would leave nothing to give up); the second, started
    # beside it, takes its share, and the first recounts within cores.RECOUNT_S and moves down; once
    # the second stops, it moves back up. config.toml keeps 0 throughout: the share is the box's.
    n = cores.box_cores()
    monkeypatch.setenv("OMP_NUM_THREADS", str(n))
    overrides = [o for o in tiny(steps=20000, eval_every=20000, checkpoint_every=20000) if o != "train.threads=1"]
    spec = load_preset(PRESETS / "quick.toml", overrides).runs[0]
    backend = Backend()
    first_dir = backend.start(spec, "quick", runs_dir)
    try:
        begun = wait_for(lambda: first(first_dir, ev.RunStarted), timeout=120, what="the first run's start")
        assert begun.device.startswith(f"cpu ({n} threads") and begun.config["train"]["threads"] == 0
        second_dir = backend.start(spec, "quick", runs_dir)
        started = wait_for(lambda: first(second_dir, ev.RunStarted), timeout=120, what="the second run's start")
        assert started.device.startswith(f"cpu ({n // 2} threads") and started.config["train"]["threads"] == 0
        down = f"CPU threads {n} -> {n // 2}: 2 live run(s)"
        wait_for(lambda: first(first_dir, ev.Log, lambda e: e.message.startswith(down)), timeout=90, what=down)
        runner.stop(second_dir)
        wait_for(lambda: read_meta(second_dir).status == "stopped", timeout=60, what="the second run's stop")
        up = f"CPU threads {n // 2} -> {n}: 1 live run(s)"
        wait_for(lambda: first(first_dir, ev.Log, lambda e: e.message.startswith(up)), timeout=90, what=up)
    finally:
        for run_dir in (first_dir, locals().get("second_dir")):
            if run_dir is not None:
                runner.stop(run_dir)
