"""Run directories: naming, atomic writes, meta.json and liveness, the event log, listing runs."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labconsole import events as ev
from labconsole import rundir
from labconsole.eventlog import read_events
from labconsole.rundir import (EventLog, Meta, create_run_dir, effective_status, heartbeat,
                               list_runs, read_meta, samples_path, write_atomic, write_meta)

ROOT = Path(__file__).resolve().parent.parent


def eval_event(step: int, accuracy: float, phase: str) -> ev.Eval:
    return ev.Eval(step=step, accuracy=accuracy, accuracy_x=accuracy, accuracy_y=accuracy, ceiling=1.0,
                   ceiling_x=1.0, ceiling_y=1.0, r2_x=0.9, r2_y=0.9, r2_mean=0.9, r2_pca_mean=0.9,
                   r2_shuffled=0.0, blobs_0=0.0, blobs_1=1.0, blobs_many=0.0, phase=phase, phase_reason="",
                   eval_seconds=1.0, n_samples=500, sampler="ddpm-1000")


def train_event(step: int) -> ev.Train:
    return ev.Train(step=step, loss=0.5, lr=3e-4, images_per_s=100.0)


# -- paths and atomic writes ---------------------------------------------------------------------


def test_create_run_dir_names_and_writes_files(tmp_path):
    runs = tmp_path / "runs"  # created lazily
    a = create_run_dir(runs, "hole-big", {"config.toml": "x = 1\n", "b.bin": b"\x00\x01"})
    b = create_run_dir(runs, "hole-big")
    assert re.fullmatch(r"\d{8}T\d{6}Z-hole-big-[0-9a-f]{6}", a.name) and a != b and a.parent == runs
    assert (a / "config.toml").read_text() == "x = 1\n" and (a / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in a.iterdir()) == ["b.bin", "config.toml"]  # no temp files


def test_create_run_dir_leaves_nothing_behind_on_bad_input(tmp_path):
    with pytest.raises(ValueError, match="preset name"):
        create_run_dir(tmp_path / "runs", "../evil")
    assert not (tmp_path / "runs").exists()
    with pytest.raises(TypeError, match="expected str or bytes"):
        create_run_dir(tmp_path / "runs", "x", {"config.toml": "ok", "meta.json": {"not": "bytes"}})
    assert list((tmp_path / "runs").iterdir()) == []


def test_write_atomic_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "meta.json"
    write_atomic(target, "one")
    os.chmod(target, 0o640)
    write_atomic(target, b"two")
    assert target.read_text() == "two" and target.stat().st_mode & 0o777 == 0o640  # mode kept
    with pytest.raises(TypeError):
        write_atomic(target, 3)
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["meta.json"]


def test_write_atomic_cleans_up_when_the_write_fails(tmp_path, monkeypatch):
    def full_disk(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomic(tmp_path / "a", "data")
    assert list(tmp_path.iterdir()) == []


def test_samples_path(tmp_path):
    assert samples_path(tmp_path, 6400) == tmp_path / "samples" / "step-0006400.npz"


# -- the event log -------------------------------------------------------------------------------


def test_event_log_appends_after_a_torn_last_line(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.append(train_event(1))
    with open(path, "ab") as fh:
        fh.write(ev.encode(train_event(2)).encode()[:25])  # a crash mid-write
    assert [e.step for e in read_events(path)] == [1]
    with EventLog(path) as log:
        line = log.append(train_event(3))
        assert log.size == path.stat().st_size
    assert ev.decode(line) == read_events(path)[-1]
    assert [e.step for e in read_events(path)] == [1, 3]
    assert len(path.read_bytes().splitlines()) == 3  # the torn line stays one line of its own
    with EventLog(path) as log, pytest.raises(ValueError, match="newline"):
        log.append_line("{}\n{}")


# -- meta.json and liveness ----------------------------------------------------------------------


def test_meta_round_trip_and_heartbeat(tmp_path):
    meta = Meta.for_this_process("run-1", "hole", "seed=0", socket_path="/x.sock", segment=1)
    assert meta.pid == os.getpid() and meta.host and meta.versions["python"]
    assert "torch" in meta.versions and "labconsole" in meta.versions
    write_meta(tmp_path, meta)
    assert read_meta(tmp_path) == meta
    beat = heartbeat(tmp_path, 640)
    assert beat.step == 640 and beat.heartbeat >= meta.heartbeat and read_meta(tmp_path) == beat
    data = json.loads((tmp_path / "meta.json").read_text())
    assert {"status", "pid", "pid_start", "host", "socket", "versions", "started", "ended", "heartbeat",
            "preset", "label", "step", "segment", "error", "run_id"} <= set(data)
    data["future_key"] = 1  # a newer writer: still readable
    (tmp_path / "meta.json").write_text(json.dumps(data))
    assert read_meta(tmp_path) == beat


@pytest.mark.parametrize("text", ["{", "[]", '{"status": "running"}', '{"run_id": "x", "status": 3}'])
def test_read_meta_rejects_corrupt_files(tmp_path, text):
    (tmp_path / "meta.json").write_text(text)
    with pytest.raises(ValueError, match="meta.json"):
        read_meta(tmp_path)


def test_effective_status_for_this_host():
    me = Meta.for_this_process("r", "p")
    assert effective_status(me) == "running"
    assert effective_status(dataclasses.replace(me, heartbeat=0.0)) == "running"  # live pid wins
    assert effective_status(dataclasses.replace(me, status="completed", pid=0)) == "completed"
    if me.pid_start is not None:  # a pid reused by another process (Linux /proc)
        assert effective_status(dataclasses.replace(me, pid_start=me.pid_start + 1)) == "crashed"
    stalled = dataclasses.replace(me, status="stalled")  # the worker's verdict on its own loop
    assert effective_status(stalled) == "stalled"
    assert effective_status(dataclasses.replace(stalled, heartbeat=0.0)) == "stalled"
    assert effective_status(dataclasses.replace(stalled, pid=dead_pid())) == "crashed"  # not stalled: dead


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_effective_status_for_another_host_uses_the_heartbeat():
    other = dataclasses.replace(Meta.for_this_process("r", "p"), host="elsewhere", pid=1)
    now = time.time()
    assert effective_status(dataclasses.replace(other, heartbeat=now - 10), now=now) == "running"
    assert effective_status(dataclasses.replace(other, heartbeat=now - 61), now=now) == "crashed"
    assert effective_status(dataclasses.replace(other, heartbeat=now - 61), stale_after=120, now=now) == "running"
    stalled = dataclasses.replace(other, status="stalled")
    assert effective_status(dataclasses.replace(stalled, heartbeat=now - 10), now=now) == "stalled"
    assert effective_status(dataclasses.replace(stalled, heartbeat=now - 61), now=now) == "crashed"


CHILD = """
import sys, time
from labconsole.rundir import Meta, heartbeat, write_meta
run_dir = sys.argv[1]
write_meta(run_dir, Meta.for_this_process("child", "quick", "seed=0"))
for step in range(1, 10**6):
    heartbeat(run_dir, step)
    time.sleep(0.05)
"""


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize("reap", [True, False], ids=["reaped", "zombie"])
def test_a_sigkilled_worker_shows_as_crashed(tmp_path, reap):
    run = tmp_path / "runs" / "20240101T000000Z-quick-abcdef"
    run.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run)], cwd=ROOT)
    try:
        wait_for(lambda: (run / "meta.json").exists() and read_meta(run).step >= 2)
        meta = read_meta(run)
        assert meta.pid == child.pid and effective_status(meta) == "running"
        [info] = list_runs(tmp_path / "runs")
        assert info.status == "running" and info.preset == "quick" and info.label == "seed=0"
        child.send_signal(signal.SIGKILL)
        if reap:
            child.wait()
        else:  # not yet waited for: os.kill(pid, 0) still succeeds on the zombie
            wait_for(lambda: rundir._proc_stat(child.pid) is None or rundir._proc_stat(child.pid)[0] == "Z")
        meta = read_meta(run)
        assert meta.status == "running"  # what the dead worker left behind
        assert effective_status(meta) == "crashed"
        assert [i.status for i in list_runs(tmp_path / "runs")] == ["crashed"]
    finally:
        child.kill()
        child.wait()


# -- listing runs -------------------------------------------------------------------------------


def test_list_runs_survives_broken_run_dirs(tmp_path):
    runs = tmp_path / "runs"
    good = create_run_dir(runs, "hole")
    write_meta(good, dataclasses.replace(Meta.for_this_process(good.name, "hole", "seed=1"),
                                         status="completed", step=12800, ended=time.time()))
    with EventLog(good / "events.jsonl") as log:
        log.append(eval_event(6400, 0.5, "B"))
        for step in range(6401, 6401 + 2000):  # more than one read-back chunk after the eval
            log.append(train_event(step))
        log.append(eval_event(12800, 0.93, "C"))
        log.append(train_event(12850))
    with open(good / "events.jsonl", "ab") as fh:
        fh.write(b'{"v":1,"type":"eval","step":99999')  # torn last line
    corrupt = create_run_dir(runs, "sigma", {"meta.json": "{not json"})
    empty = create_run_dir(runs, "quick")  # the worker died before writing meta.json
    (runs / "notes.txt").write_text("not a run")
    infos = {i.path: i for i in list_runs(runs)}
    assert list(infos) == sorted(infos) and len(infos) == 3
    g = infos[good]
    assert (g.status, g.preset, g.label, g.phase, g.accuracy, g.step) == ("completed", "hole", "seed=1", "C", 0.93, 12850)
    assert g.error == "" and g.started and g.ended
    c = infos[corrupt]
    assert (c.status, c.preset) == ("unknown", "sigma") and "not JSON" in c.error and "\n" not in c.error
    e = infos[empty]
    assert (e.status, e.error, e.phase, e.accuracy) == ("unknown", "no meta.json", "", None)
    assert list_runs(tmp_path / "nowhere") == []


def test_latest_eval_reads_back_over_chunk_boundaries(tmp_path):
    path = tmp_path / "events.jsonl"
    with EventLog(path) as log:
        log.append(eval_event(0, 0.1, "A"))
        for step in range(1, 3000):
            log.append(train_event(step))
    last, step = rundir._latest_eval(path)
    assert (last.step, last.phase, step) == (0, "A", 2999)


def test_rundir_and_stream_do_not_import_torch():
    code = "import sys, labconsole.rundir, labconsole.stream; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
