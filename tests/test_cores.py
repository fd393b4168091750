"""The cores shared among every live run of a runs directory (``labconsole.cores``): counted from
the run dirs, whoever started the runs; a console run started beside a live one gets its share."""
from __future__ import annotations

import os
import socket
import time

from labconsole import cores, runner
from labconsole import events as ev
from labconsole.app.backend import Backend
from labconsole.presets import load_preset
from labconsole.rundir import Meta, live_here, write_meta
from runs_helpers import PRESETS, first, tiny, wait_for


def fake_run(runs_dir, name: str, **meta) -> None:
    (runs_dir / name).mkdir(parents=True)
    write_meta(runs_dir / name, Meta(run_id=name, **meta))


def test_live_runs_here_are_counted_and_the_others_are_not(tmp_path):
    now, me = time.time(), socket.gethostname()
    fake_run(tmp_path, "a-live", status="running", pid=os.getpid(), host=me, heartbeat=now)
    fake_run(tmp_path, "b-stalled", status="stalled", pid=os.getpid(), host=me, heartbeat=now)
    fake_run(tmp_path, "c-starting", status="running", heartbeat=now)  # made, its worker not up yet
    fake_run(tmp_path, "d-done", status="completed", host=me)
    fake_run(tmp_path, "e-dead", status="running", pid=2 ** 22 + 11, host=me, heartbeat=now)  # crashed
    fake_run(tmp_path, "f-elsewhere", status="running", pid=1, host="gpu-node-7", heartbeat=now)
    fake_run(tmp_path / "sweeps", "g-manifest", status="running", heartbeat=now)
    (tmp_path / "h-broken").mkdir()
    assert sorted(m.run_id for m in live_here(tmp_path)) == ["a-live", "b-stalled", "c-starting"]
    assert live_here(tmp_path / "missing") == []
    assert cores.threads_for(tmp_path, 1, cores=8) == 2  # 8 cores over 3 live + 1 new
    assert cores.threads_for(tmp_path, 5, cores=4) == 1  # never below one
    assert cores.threads_for(tmp_path / "missing", 1, cores=8) == 0  # alone: torch's default


def test_share_keeps_a_preset_that_sets_its_threads(tmp_path):
    fake_run(tmp_path, "a-live", status="running", pid=os.getpid(), host=socket.gethostname(), heartbeat=time.time())
    spec = load_preset(PRESETS / "quick.toml").runs[0]
    assert cores.share(spec, tmp_path, cores=4).config.train.threads == 2
    pinned = load_preset(PRESETS / "quick.toml", ["train.threads=3"]).runs[0]
    assert cores.share(pinned, tmp_path, cores=4).config.train.threads == 3
    assert cores.share(spec, tmp_path / "missing", cores=4).config.train.threads == 0


def test_a_console_run_started_beside_a_live_run_takes_its_share(runs_dir):
    # The first run alone keeps torch's default; the second, started while the first lives, gets
    # cores // 2 threads (its start line says so).
    overrides = [o for o in tiny(steps=2000, eval_every=1000, checkpoint_every=1000) if o != "train.threads=1"]
    spec = load_preset(PRESETS / "quick.toml", overrides).runs[0]
    assert spec.config.train.threads == 0
    backend = Backend()
    first_dir = backend.start(spec, "quick", runs_dir)
    try:
        second_dir = backend.start(spec, "quick", runs_dir)
        started = wait_for(lambda: first(second_dir, ev.RunStarted), timeout=120, what="the second run's start")
        share = max(1, (os.cpu_count() or 1) // 2)
        assert started.device.startswith(f"cpu ({share} threads")
        assert started.config["train"]["threads"] == share
    finally:
        for run_dir in (first_dir, locals().get("second_dir")):
            if run_dir is not None:
                runner.stop(run_dir)
