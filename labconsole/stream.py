"""The live event socket of a run (DESIGN §3): the worker serves, any number of viewers follow.

Server (inside the worker)::

    server = EventServer(run_dir)                  # binds the socket, starts a thread
    write_meta(run_dir, Meta.for_this_process(..., socket_path=str(server.socket_path)))
    server.publish(events.encode(event))           # appends to events.jsonl and fans out
    server.close()                                 # removes the socket file

The server is the writer of ``events.jsonl`` while the run is live: ``publish`` appends the line
to the file and queues it for every client under one lock, and a new client is registered under
that lock together with a snapshot of the file's length. So a client receives exactly the file:
the catch-up (every line up to the snapshot, read from the file) and then the live lines (every
line after it), in order, with no gap and no duplicate; line *k* on the socket is line *k* of
the file. ``publish`` never waits for a client: each client has a bounded queue, and a client
whose queue exceeds ``max_client_bytes`` is dropped (it sees EOF).

Client: ``follow(run_dir)`` yields the run's events, from the first. It connects to the socket
named in meta.json (or ``events.sock``); when the run is not live (no socket, connection refused)
it replays ``events.jsonl`` and ends. If its connection drops while the run is live (it was too
slow), it reconnects and skips the lines it already has; when the server goes away it reads the
remaining lines from the file. The socket protocol is one-way: the server never reads.

The Textual app runs ``follow`` in a thread worker and posts each event as a message::

    @work(thread=True, exclusive=True)
    def attach(self, run_dir):
        for event in follow(run_dir, stop=self._detach):   # a threading.Event set on detach
            self.post_message(EventArrived(event))

No torch, no Textual here.
"""
from __future__ import annotations

import collections
import hashlib
import os
import selectors
import socket
import stat
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

from labconsole import eventlog
from labconsole import events as ev
from labconsole.rundir import EVENTS, SOCKET, EventLog, read_meta

MAX_CLIENT_BYTES = 1 << 20  # queued live bytes per client before it is dropped
_SUN_PATH_MAX = 107  # AF_UNIX sun_path holds 108 bytes on Linux, including the NUL
_CHUNK = 1 << 16  # bytes per send / catch-up read
_CLOSE_GRACE = 2.0  # seconds close() lets clients drain their queues


# ---------------------------------------------------------------------------------------------
# Where the socket lives
# ---------------------------------------------------------------------------------------------


def socket_path_for(run_dir: str | Path) -> Path:
    """``<run>/events.sock`` if that absolute path fits AF_UNIX, else a path in the user's runtime
    dir (``$XDG_RUNTIME_DIR/labconsole/``, or ``<tmp>/labconsole-<uid>/``, mode 0700) named after
    the run. The caller records the result in meta.json.

    Raises:
        OSError: no private runtime dir, or even that path is too long.
    """
    run_dir = Path(run_dir).absolute()
    path = run_dir / SOCKET
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(run_dir)).hexdigest()[:12]  # unique per run dir
    path = _runtime_dir() / f"{run_dir.name[:32]}-{digest}.sock"
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise OSError(f"no socket path short enough for AF_UNIX for {run_dir}; shorten TMPDIR")
    return path


def _runtime_dir() -> Path:
    """A directory only this user can enter, for sockets whose run dir path is too long."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")  # a system convention (systemd), not our configuration
    base = Path(xdg) / "labconsole" if xdg and Path(xdg).is_dir() else \
        Path(tempfile.gettempdir()) / f"labconsole-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{base} is not a private directory of this user (mode 0700); remove it")
    return base


def _bind(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600; a stale socket file is replaced."""
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(os.fspath(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # left by a worker that died: nobody listens
        else:
            raise OSError(f"{path}: another process is serving this run's events")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(os.fspath(path))
        os.chmod(path, 0o600)  # before listen(): until then every connect is refused anyway
        sock.listen(16)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


class _Client:
    """One connected viewer: what it still needs from the file, then from the live queue."""

    __slots__ = ("sock", "catchup_pos", "catchup_end", "queue", "queued", "out", "dropped", "closed", "mask")

    def __init__(self, sock: socket.socket, catchup_end: int):
        self.sock = sock
        self.catchup_pos, self.catchup_end = 0, catchup_end  # file bytes [0, end) to send first
        self.queue: collections.deque[bytes] = collections.deque()  # live lines after the snapshot
        self.queued = 0  # bytes in queue
        self.out = b""  # taken from the file or the queue, not yet accepted by the socket
        self.dropped = False  # set by publish when the queue overflows
        self.closed = False
        self.mask = selectors.EVENT_READ  # what the selector watches for


class EventServer:
    """Writes a run's events to ``events.jsonl`` and serves them live on a Unix socket.

    Args:
        run_dir: the run directory; the log is ``<run_dir>/events.jsonl``.
        log: an open EventLog to write through (default: one opened, and closed, by the server).
            While the server is open, write events only through ``publish``.
        socket_path: where to listen (default: ``socket_path_for(run_dir)``).
        max_client_bytes: a client with more queued live bytes than this is dropped.
    Raises:
        OSError: the socket cannot be created, or another live server owns it.
    """

    def __init__(self, run_dir: str | Path, *, log: EventLog | None = None, socket_path: str | Path | None = None,
                 max_client_bytes: int = MAX_CLIENT_BYTES):
        self.run_dir = Path(run_dir).absolute()
        self.socket_path = Path(socket_path) if socket_path else socket_path_for(self.run_dir)
        self.max_client_bytes = max_client_bytes
        self.n_clients = 0  # accepted so far
        self.n_dropped = 0  # dropped for falling behind
        self._lock = threading.Lock()  # guards the log writes, _clients and every client's queue
        self._clients: list[_Client] = []
        self._closing = False
        self._deadline = 0.0  # monotonic time by which close() stops waiting for clients
        self._listener = _bind(self.socket_path)  # first: a second server fails before touching the log
        self._socket_ino = self.socket_path.stat().st_ino
        self._own_log = log is None
        try:
            self.log = log if log is not None else EventLog(self.run_dir / EVENTS)
            self._read_fd = os.open(self.log.path, os.O_RDONLY)  # catch-up reads, by offset
        except BaseException:
            self._listener.close()
            self._unlink_socket()
            if self._own_log and hasattr(self, "log"):
                self.log.close()
            raise
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = threading.Thread(target=self._serve, name=f"events:{self.run_dir.name}", daemon=True)
        self._thread.start()

    # -- the publisher's side (the training thread) -----------------------------------------

    def publish(self, line: str) -> None:
        """Append one event line to events.jsonl and queue it for every client. Never waits for
        a client; a client whose queue overflows is dropped.

        Raises:
            ValueError: the line holds a newline.
            RuntimeError: the server is closed.
        """
        line = line[:-1] if line.endswith("\n") else line
        data = line.encode("utf-8") + b"\n"
        queued = False
        with self._lock:
            if self._closing:
                raise RuntimeError("EventServer.publish after close()")
            self.log.append_line(line)
            for client in self._clients:
                if client.dropped:
                    continue
                client.queue.append(data)
                client.queued += len(data)
                if client.queued > self.max_client_bytes:  # too slow: drop it, never slow training
                    client.dropped = True
                    client.queue.clear()
                    client.queued = 0
                    self.n_dropped += 1
                queued = True
        if queued:
            self._wake()  # after the enqueue: a wake-up byte can arrive early, never late

    def emit(self, event: ev.Event) -> None:
        """``publish(events.encode(event))``."""
        self.publish(ev.encode(event))

    def close(self, grace: float = _CLOSE_GRACE) -> None:
        """Stop accepting, remove the socket file, give clients up to ``grace`` seconds to receive
        what is queued for them, then disconnect them. Idempotent."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
            self._deadline = time.monotonic() + grace
        self._unlink_socket()  # new viewers now read the file instead
        self._wake()
        self._thread.join()
        for fd in (self._read_fd, self._wake_r, self._wake_w):
            os.close(fd)
        if self._own_log:
            self.log.close()

    def __enter__(self) -> EventServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the server thread has a wake-up waiting already

    def _unlink_socket(self) -> None:
        try:
            if self.socket_path.stat().st_ino == self._socket_ino:  # still ours, not a successor's
                self.socket_path.unlink()
        except FileNotFoundError:
            pass

    # -- the server thread ------------------------------------------------------------------

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        listening = True
        try:
            while True:
                timeout = 0.05 if self._closing else None
                for key, mask in sel.select(timeout):
                    if key.data == "listen":
                        self._accept(sel)
                    elif key.data == "wake":
                        self._drain_wake()
                    elif mask & selectors.EVENT_READ:
                        self._on_readable(key.data)
                if self._closing and listening:
                    sel.unregister(self._listener)
                    self._listener.close()
                    listening = False
                pending = self._pump(sel)
                if self._closing and (not pending or time.monotonic() > self._deadline):
                    break
        finally:
            with self._lock:
                clients, self._clients = self._clients, []
            for client in clients:
                client.sock.close()
            if listening:
                self._listener.close()
            sel.close()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            with self._lock:  # the snapshot and the registration are one step for publish
                client = _Client(conn, self.log.size)
                self._clients.append(client)
                self.n_clients += 1
            sel.register(conn, selectors.EVENT_READ, client)

    def _drain_wake(self) -> None:
        # Every byte drained here belongs to a publish that queued before writing it, so the
        # _pump that follows serves it; a byte written later stays in the pipe for the next select.
        try:
            while os.read(self._wake_r, 1 << 16):
                pass
        except BlockingIOError:
            pass

    def _on_readable(self, client: _Client) -> None:
        """Viewers send nothing; readable means they hung up (or sent junk, which is ignored)."""
        try:
            data = client.sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:  # ECONNRESET
            data = b""
        if not data:
            client.closed = True

    def _pump(self, sel: selectors.BaseSelector) -> bool:
        """Send what each client can take; close the gone and the dropped. True if any has more."""
        pending = False
        for client in list(self._clients):
            if not (client.closed or client.dropped):
                more = self._send(client)
                if more is not None:
                    pending = pending or more
                    mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if more else 0)
                    if mask != client.mask:  # wait for room in the socket only while data waits
                        sel.modify(client.sock, mask, client)
                        client.mask = mask
                    continue
            sel.unregister(client.sock)
            client.sock.close()
            with self._lock:
                self._clients.remove(client)
        return pending

    def _send(self, client: _Client) -> bool | None:
        """Send until the socket is full or nothing is left: True if more is waiting, False if
        drained, None if the client is gone."""
        while True:
            if not client.out:
                client.out = self._next_chunk(client)
                if not client.out:
                    return False
            try:
                sent = client.sock.send(client.out)
            except BlockingIOError:
                return True
            except OSError:  # EPIPE / ECONNRESET: the viewer went away
                return None
            client.out = client.out[sent:]

    def _next_chunk(self, client: _Client) -> bytes:
        if client.catchup_pos < client.catchup_end:
            size = min(_CHUNK, client.catchup_end - client.catchup_pos)
            data = os.pread(self._read_fd, size, client.catchup_pos)
            if not data:  # the file shrank under us (it never should): nothing more to catch up
                client.catchup_pos = client.catchup_end
            client.catchup_pos += len(data)
            return data
        with self._lock:
            parts, size = [], 0
            while client.queue and size < _CHUNK:
                data = client.queue.popleft()
                parts.append(data)
                size += len(data)
            client.queued -= size
        return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# Client
# ---------------------------------------------------------------------------------------------


def follow(run_dir: str | Path, stop: threading.Event | None = None, *, poll: float = 0.2) -> Iterator[ev.Event]:
    """Every event of a run, from the first: live while the run is served, then to the file's end.

    Connects to the socket named in meta.json (else ``<run>/events.sock``). Without a live server
    it replays ``events.jsonl`` and ends; with one, it ends when the server closes (after reading
    any lines the socket did not deliver from the file) or when ``stop`` is set (checked every
    ``poll`` seconds). Lines that do not decode (torn by a crash, or from a newer schema) are
    skipped. Blocking: run it in a thread (see the module docstring).
    """
    run_dir = Path(run_dir)
    seen = 0  # lines delivered so far: socket line k is file line k
    while not _stopped(stop):
        sock = _connect(run_dir)
        if sock is None:
            break
        with sock:
            received = 0
            for index, line in enumerate(_socket_lines(sock, stop, poll)):
                received += 1
                if index < seen:
                    continue  # a reconnect replays from the first line; we have these
                seen += 1
                event = _decode(line)
                if event is not None:
                    yield event
        if received == 0:
            break  # the server closed without sending anything: let the file finish the job
    if _stopped(stop):
        return
    path = run_dir / EVENTS
    if not path.exists():
        return
    for event in eventlog.iter_events(path, skip=seen):  # socket line k is file line k
        if _stopped(stop):
            return
        yield event


def _stopped(stop: threading.Event | None) -> bool:
    return stop is not None and stop.is_set()


def _decode(line: str | bytes) -> ev.Event | None:
    try:
        return ev.decode(line)
    except ValueError:
        return None  # a torn line after a crash, or an event type this version does not know


def _connect(run_dir: Path) -> socket.socket | None:
    """A connection to the run's live server, or None when it is not live."""
    path = run_dir / SOCKET
    try:
        named = read_meta(run_dir).socket
        path = Path(named) if named else path
    except (OSError, ValueError, TypeError):
        pass  # no or unreadable meta.json: try the default socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fspath(path))
    except OSError:  # missing, refused (a crashed worker's stale file), not ours: not live
        sock.close()
        return None
    return sock


def _socket_lines(sock: socket.socket, stop: threading.Event | None, poll: float) -> Iterator[bytes]:
    """Complete lines from the socket until EOF or ``stop``; a partial line at EOF is dropped."""
    sock.settimeout(poll)
    buf = b""
    while not _stopped(stop):
        try:
            data = sock.recv(_CHUNK)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return
        if not data:
            return
        *lines, buf = (buf + data).split(b"\n")
        yield from lines
