"""The live event socket: catch-up + live with no gap or duplicate, slow clients dropped, crashes."""
from __future__ import annotations

import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import sys
import threading
import time
from pathlib import Path

import pytest

from labconsole import eventlog
from labconsole import events as ev
from labconsole.rundir import EventLog, Meta, read_meta, write_meta, effective_status
from labconsole.stream import EventServer, follow, socket_path_for

ROOT = Path(__file__).resolve().parent.parent


def train(step: int) -> ev.Train:
    return ev.Train(step=step, loss=0.25, lr=3e-4, images_per_s=1234.5)


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def watchdog():
    """A stop event set after 30 s: a follow() that would hang makes the test fail instead."""
    stop = threading.Event()
    timer = threading.Timer(30, stop.set)
    timer.start()
    yield stop
    timer.cancel()


class Follower(threading.Thread):
    """follow() in a thread, as the console runs it; records the steps it receives."""

    def __init__(self, run_dir: Path, start_after: threading.Event | None = None):
        super().__init__(daemon=True)
        self.run_dir, self.start_after = run_dir, start_after
        self.steps: list[int] = []
        self.stop = threading.Event()
        self.watchdog = threading.Timer(30, self.stop.set)  # never hang a test run

    def run(self):
        if self.start_after is not None:
            self.start_after.wait()
        self.watchdog.start()
        for event in follow(self.run_dir, self.stop):
            self.steps.append(event.step)
        self.watchdog.cancel()


def test_clients_joining_during_publishing_get_every_event_once_in_order(tmp_path):
    server = EventServer(tmp_path)
    joins = [threading.Event() for _ in range(4)]
    followers = [Follower(tmp_path)] + [Follower(tmp_path, j) for j in joins]
    for f in followers:
        f.start()
    wait_for(lambda: server.n_clients == 1)  # the first one is attached before anything is published
    step = 0
    # Publish without pausing; every 500 events release one more follower, and keep publishing
    # until all of them have connected, so each joins while events are being published.
    while step < 3000 or server.n_clients < len(followers):
        server.emit(train(step))
        step += 1
        if step % 500 == 0 and step // 500 <= len(joins):
            joins[step // 500 - 1].set()
    server.close()
    for f in followers:
        f.join(timeout=20)
        assert not f.is_alive()
    assert server.n_clients == len(followers) and server.n_dropped == 0
    for f in followers:
        assert f.steps == list(range(step))
    assert [e.step for e in eventlog.read_events(tmp_path / "events.jsonl")] == list(range(step))
    assert not (tmp_path / "events.sock").exists()


def test_a_client_that_never_reads_is_dropped_and_never_blocks_publish(tmp_path):
    n = 60_000
    server = EventServer(tmp_path)
    reader = Follower(tmp_path)
    reader.start()
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.connect(str(server.socket_path))
    wait_for(lambda: server.n_clients == 2)
    for i in range(n):
        server.emit(train(i))
    stuck.settimeout(10)
    received = 0
    while chunk := stuck.recv(1 << 16):  # what the kernel buffered for it, then EOF: dropped
        received += len(chunk)
    stuck.close()
    assert 0 < received < (tmp_path / "events.jsonl").stat().st_size
    assert server.n_dropped >= 1  # the reader thread may be dropped too if starved of the GIL
    server.close()
    reader.join(timeout=20)
    assert reader.steps == list(range(n))  # it still gets everything, once, in order


def test_a_dropped_follower_reconnects_and_resumes_without_duplicates(tmp_path, watchdog):
    server = EventServer(tmp_path, max_client_bytes=16 << 10)
    server.emit(train(0))
    stream = follow(tmp_path, watchdog)
    assert next(stream).step == 0  # connected and caught up; now stop reading for a while
    for i in range(1, 20_000):  # far beyond the kernel's socket buffer plus 16 KiB
        server.emit(train(i))
    assert server.n_dropped == 1
    steps = [e.step for _, e in zip(range(1, 20_000), stream)]  # EOF, reconnect, skip what it has
    assert steps == list(range(1, 20_000)) and server.n_clients == 2
    server.emit(train(20_000))
    assert next(stream, None).step == 20_000  # live again
    server.close()
    assert list(stream) == []


def test_follow_replays_the_file_when_the_run_is_not_live(tmp_path):
    with EventLog(tmp_path / "events.jsonl") as log:
        for i in range(5):
            log.append(train(i))
    with open(tmp_path / "events.jsonl", "ab") as fh:
        fh.write(b'{"v":1,"type":"train","st')  # torn by a crash
    assert [e.step for e in follow(tmp_path)] == list(range(5))  # no socket at all
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "events.sock"))  # bound, never listening: a dead worker's socket file
    stale.close()
    assert [e.step for e in follow(tmp_path)] == list(range(5))  # connection refused
    assert list(follow(tmp_path / "nothing-here")) == []


def test_follow_stops_when_asked(tmp_path):
    with EventServer(tmp_path) as server:
        server.emit(train(0))
        stop = threading.Event()
        got = []
        for event in follow(tmp_path, stop, poll=0.05):
            got.append(event.step)
            stop.set()  # e.g. the user detached; the run goes on
        assert got == [0]


WORKER = """
import sys, time
from labconsole import events as ev
from labconsole.rundir import Meta, write_meta
from labconsole.stream import EventServer
run_dir = sys.argv[1]
server = EventServer(run_dir)
write_meta(run_dir, Meta.for_this_process("r", "quick", socket_path=str(server.socket_path)))
for step in range(10**9):
    server.emit(ev.Train(step=step, loss=0.1, lr=1e-3, images_per_s=1.0))
    time.sleep(0.001)
"""


def test_a_follower_survives_its_worker_being_killed_and_the_run_resumes(tmp_path, watchdog):
    child = subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)], cwd=ROOT)
    try:
        wait_for(lambda: (tmp_path / "meta.json").exists())
        follower = Follower(tmp_path)
        follower.start()
        wait_for(lambda: len(follower.steps) >= 200)
        child.send_signal(signal.SIGKILL)
        child.wait()
        follower.join(timeout=20)
        assert not follower.is_alive()  # EOF, reconnect refused, the file read to its end
    finally:
        child.kill()
        child.wait()
    on_disk = [e.step for e in eventlog.read_events(tmp_path / "events.jsonl")]
    assert follower.steps == on_disk == list(range(len(on_disk)))
    assert (tmp_path / "events.sock").is_socket()  # left behind by the killed worker
    assert effective_status(read_meta(tmp_path)) == "crashed"
    with EventServer(tmp_path) as server:  # a resumed worker replaces the stale socket
        server.emit(train(len(on_disk)))
        stream = follow(tmp_path, watchdog)
        assert [e.step for _, e in zip(range(len(on_disk) + 1), stream)] == list(range(len(on_disk) + 1))


def test_socket_is_private_and_a_second_server_is_refused(tmp_path):
    with EventServer(tmp_path) as server:
        assert server.socket_path == tmp_path / "events.sock"
        assert stat.S_IMODE(server.socket_path.stat().st_mode) == 0o600
        with pytest.raises(OSError, match="another process is serving"):
            EventServer(tmp_path)
        with pytest.raises(ValueError, match="newline"):
            server.publish('{"a":1}\n{"b":2}')
    assert not server.socket_path.exists()
    with pytest.raises(RuntimeError, match="after close"):
        server.publish(ev.encode(train(1)))


def test_a_run_dir_too_long_for_af_unix_gets_a_socket_in_the_runtime_dir(tmp_path, monkeypatch, watchdog):
    runtime = Path(tempfile.mkdtemp(prefix="rt-"))  # short: the fallback path must fit too
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    run_dir = tmp_path / ("x" * 60) / ("y" * 60)
    run_dir.mkdir(parents=True)
    assert len(str(run_dir / "events.sock")) > 107
    try:
        with EventServer(run_dir) as server:
            path = server.socket_path
            assert path == socket_path_for(run_dir) and path.parent == runtime / "labconsole"
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700 and len(str(path)) <= 107
            write_meta(run_dir, Meta.for_this_process("r", "p", socket_path=str(path)))
            server.emit(train(7))
            stream = follow(run_dir, watchdog)  # finds the socket through meta.json
            assert next(stream, None).step == 7
            server.emit(train(8))
            assert next(stream, None).step == 8
        assert list(stream) == [] and not path.exists()
    finally:
        shutil.rmtree(runtime)
