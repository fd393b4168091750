"""The run directory (DESIGN §4): naming, atomic writes, meta.json, the event log, listing runs.

``runs/<UTC stamp>-<preset>-<short id>/`` holds ``config.toml``, ``meta.json``, ``events.jsonl``,
``checkpoints/``, ``samples/``, ``stdout.log`` and ``stderr.log``. The worker is the only writer
of meta.json and events.jsonl; viewers only read.

Liveness: a run whose meta.json says "running" (or "stalled": its worker lives, its training
loop has not moved for ``train.stall_after`` seconds) is shown as "crashed" when its process is gone.
The pid is checked with ``os.kill(pid, 0)``; on Linux ``/proc/<pid>/stat`` also gives the
process state (a zombie is dead) and its start time, recorded in meta.json as ``pid_start``, so
a pid reused by an unrelated process after a crash is not mistaken for the worker. A run started
on another host (a shared filesystem) cannot be checked by pid; there a heartbeat older than
``stale_after`` seconds means crashed.

No torch here: the console imports this to list and attach to runs.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from labconsole import eventlog
from labconsole import events as ev

STATUSES = ("running", "stalled", "completed", "stopped", "failed", "crashed")
LIVE = ("running", "stalled")  # a worker process that lives: stalled = its loop made no progress for a while
CONFIG = "config.toml"
META = "meta.json"
EVENTS = "events.jsonl"
SOCKET = "events.sock"
SWEEPS = "sweeps"  # <runs_dir>/sweeps/<sweep id>/: sweep manifests and reports, beside the runs (never a run)
STALE_AFTER = 60.0  # seconds without a heartbeat before a run on another host counts as crashed
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_TAIL_LIMIT = 8 << 20  # list_runs reads at most this much of an events file, from its end


# ---------------------------------------------------------------------------------------------
# Paths and atomic writes
# ---------------------------------------------------------------------------------------------


def new_run_id(preset: str, now: float | None = None) -> str:
    """``20240612T153012Z-hole-3fa2c1``: sortable by start time, readable, unique enough."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{stamp}-{preset}-{secrets.token_hex(3)}"


def create_run_dir(runs_dir: str | Path, preset: str, files: Mapping[str, str | bytes] = {}) -> Path:
    """Make a new run directory (and ``runs_dir`` if needed) and write ``files`` into it atomically.

    Call it only once the config is valid (``load_preset`` succeeded): a bad input must leave no
    run dir behind. If writing ``files`` fails the new directory is removed again.

    Args:
        runs_dir: where run dirs live, e.g. ``runs/``.
        preset: the preset name (letters, digits, '.', '_', '-').
        files: name -> content to write before returning, e.g. ``{"config.toml": text}``.
    Returns:
        the new directory.
    Raises:
        ValueError: a preset name that is not safe in a directory name.
    """
    if not _NAME_RE.fullmatch(preset):
        raise ValueError(f"preset name {preset!r}: expected letters, digits, '.', '_' or '-'")
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:  # a collision needs the same second and the same 24 random bits: retry
        path = runs_dir / new_run_id(preset)
        try:
            path.mkdir()
            break
        except FileExistsError:
            continue
    try:
        for name, content in files.items():
            write_atomic(path / name, content)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)  # best effort; the original error is what matters
        raise
    return path


def write_atomic(path: str | Path, data: str | bytes, *, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    Writes a temp file in the same directory, fsyncs it, ``os.replace``s it over ``path`` and
    fsyncs the directory (so the rename survives a power cut). A new file gets mode 0644; an
    existing one keeps its mode. On any error the temp file is removed.

    Raises:
        TypeError: ``data`` is neither str nor bytes.
        OSError: from the filesystem.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"write_atomic: expected str or bytes, got {type(data).__name__}")
    path = Path(path)
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def samples_path(run_dir: str | Path, step: int) -> Path:
    """``<run>/samples/step-0006400.npz``: one eval's images, labels, predictions, embedding."""
    return Path(run_dir) / "samples" / f"step-{step:07d}.npz"


# ---------------------------------------------------------------------------------------------
# meta.json
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """The contents of meta.json. Written only by the worker; readers tolerate missing keys."""

    run_id: str
    status: str = "running"  # running | stalled | completed | stopped | failed (crashed is inferred, see effective_status)
    preset: str = ""
    label: str = ""  # what varies in this run of the sweep, e.g. "dx=dy=0.5 seed=1"
    pid: int = 0  # the worker process
    pid_start: int | None = None  # its start time in clock ticks after boot (/proc, Linux): guards pid reuse
    host: str = ""  # socket.gethostname() of the worker: the pid means nothing on another host
    socket: str = ""  # absolute path of the live event socket ("" when none)
    versions: dict[str, str] = field(default_factory=dict)  # python and package versions
    started: float = 0.0  # unix seconds
    ended: float | None = None
    heartbeat: float = 0.0  # unix seconds of the worker's last sign of life
    step: int = 0  # the last step reported with a heartbeat
    segment: int = 0  # 0 for the first start, +1 per resume
    error: str = ""  # one line, when status is failed
    gpu: str = ""  # the worker's CUDA_VISIBLE_DEVICES: the GPU a batch gave it ("" = not set)

    @classmethod
    def for_this_process(cls, run_id: str, preset: str, label: str = "", *, socket_path: str = "",
                         segment: int = 0, step: int = 0) -> Meta:
        """A "running" Meta describing the calling process (the worker), started now."""
        now = time.time()
        pid = os.getpid()
        return cls(run_id=run_id, preset=preset, label=label, pid=pid, pid_start=process_start_time(pid),
                   host=socket.gethostname(), socket=socket_path, versions=collect_versions(),
                   started=now, heartbeat=now, step=step, segment=segment,
                   gpu=os.environ.get("CUDA_VISIBLE_DEVICES", ""))

    def on_this_host(self) -> bool:
        """Whether the worker's pid names a process of this host (on another one it means nothing)."""
        return self.pid > 0 and self.host == socket.gethostname()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Meta:
        """Raises ValueError for a non-object or a missing/ill-typed ``run_id`` / ``status``."""
        if not isinstance(data, Mapping):
            raise ValueError("meta.json: expected a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}  # newer writers may add keys
        for key in ("run_id", "status"):
            if not isinstance(known.get(key), str):
                raise ValueError(f"meta.json: {key}: expected a string, got {known.get(key)!r}")
        return cls(**known)


def write_meta(run_dir: str | Path, meta: Meta) -> None:
    """Atomically (re)write ``<run>/meta.json``."""
    write_atomic(Path(run_dir) / META, meta.to_json())


def read_meta(run_dir: str | Path) -> Meta:
    """Read ``<run>/meta.json``.

    Raises:
        FileNotFoundError: no meta.json (a run dir whose worker never started).
        ValueError: not JSON, or not a meta object.
    """
    text = (Path(run_dir) / META).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"meta.json: not JSON: {exc}") from None
    return Meta.from_dict(data)


def heartbeat(run_dir: str | Path, step: int) -> Meta:
    """Record that the worker is alive at ``step``; returns the new Meta.

    Costs a read and an fsynced atomic write: call it every few seconds, not every step
    (the worker also needs to call it during long evaluations).
    """
    meta = dataclasses.replace(read_meta(run_dir), heartbeat=time.time(), step=step)
    write_meta(run_dir, meta)
    return meta


def effective_status(meta: Meta, *, stale_after: float = STALE_AFTER, now: float | None = None) -> str:
    """The status to show: ``meta.status``, except "crashed" for a live one (running or stalled)
    whose worker is dead.

    Dead: on this host, the pid is gone, a zombie, or now belongs to a process with another
    start time; on another host (or with no pid recorded), the heartbeat is older than
    ``stale_after`` seconds. A live pid with an old heartbeat keeps its status (the pid is the
    stronger evidence). Whether a live worker's loop moves is the worker's own verdict: it writes
    "stalled" after ``train.stall_after`` seconds without progress, and "running" again after.
    """
    if meta.status not in LIVE:
        return meta.status
    if meta.on_this_host():
        return meta.status if pid_alive(meta.pid, meta.pid_start) else "crashed"
    now = time.time() if now is None else now
    return meta.status if now - meta.heartbeat <= stale_after else "crashed"


def pid_alive(pid: int, start: int | None = None) -> bool:
    """Whether ``pid`` is a live (non-zombie) process, and, if ``start`` is given, the same one."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return not Path("/proc/self/stat").exists()  # /proc exists but the pid vanished: dead
    state, started = stat
    if state in ("Z", "X"):
        return False
    return start is None or started == start


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks after boot (Linux ``/proc``); None where unavailable."""
    stat = _proc_stat(pid)
    return None if stat is None else stat[1]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, starttime) from ``/proc/<pid>/stat``; the command name may hold spaces and ')'."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()  # fields 3.. of proc(5)
    return fields[0].decode(), int(fields[19])  # field 3: state, field 22: starttime


def collect_versions() -> dict[str, str]:
    """Python and the installed versions of the packages a run depends on (without importing them)."""
    out = {"python": platform.python_version()}
    for name in ("labconsole", "torch", "numpy", "opencv-python-headless", "scikit-learn", "umap-learn",
                 "textual"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # optional here (e.g. textual on a headless box)
    return out


# ---------------------------------------------------------------------------------------------
# events.jsonl
# ---------------------------------------------------------------------------------------------


class EventLog:
    """Append-only writer of ``events.jsonl``: one line per event, flushed per line.

    A crash mid-write can leave a last line without its newline. Opening the log adds the missing
    newline, so the torn line stays one (skipped) line and the next event starts a fresh one.
    Flushing hands each line to the OS: it survives the worker being killed; ``fsync=True`` also
    makes it survive a power cut, at the cost of a disk sync per event.
    """

    def __init__(self, path: str | Path, *, fsync: bool = False):
        self.path = Path(path)
        self._fsync = fsync
        self._fh = open(self.path, "ab")
        if self._fh.tell() > 0 and not _ends_with_newline(self.path):
            self._fh.write(b"\n")
            self._fh.flush()

    @property
    def size(self) -> int:
        """Bytes in the file: always the end of a complete line."""
        return self._fh.tell()

    def append(self, event: ev.Event) -> str:
        """Write one event; returns its line (without the newline), e.g. to publish it."""
        line = ev.encode(event)
        self.append_line(line)
        return line

    def append_line(self, line: str) -> None:
        """Write one already-encoded line (without its newline).

        Raises:
            ValueError: the line holds a newline (it would become two events).
        """
        if "\n" in line:
            raise ValueError("an event line must not contain a newline")
        self._fh.write(line.encode("utf-8") + b"\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


# ---------------------------------------------------------------------------------------------
# Listing runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """One row of the run list. ``status`` is "unknown" (with ``error``) for an unreadable run dir."""

    id: str
    path: Path
    preset: str = ""
    label: str = ""
    status: str = "unknown"
    phase: str = ""  # of the latest eval event
    accuracy: float | None = None  # of the latest eval event
    step: int = 0  # the latest step known from meta.json or the events
    started: float | None = None
    ended: float | None = None
    error: str = ""


def live_here(runs_dir: str | Path) -> list[Meta]:
    """The meta.json of every run of ``runs_dir`` live on this host now (running or stalled, a
    worker still starting included: its meta.json says running with a fresh heartbeat); run dirs
    that cannot be read are passed over. What shares this box's cores and GPUs, whoever started it."""
    runs_dir, me, out = Path(runs_dir), socket.gethostname(), []
    if not runs_dir.is_dir():
        return out
    for path in runs_dir.iterdir():
        if not path.is_dir() or path.name.startswith(".") or path.name == SWEEPS:
            continue
        try:
            meta = read_meta(path)
        except (OSError, ValueError, TypeError):
            continue
        if meta.host in ("", me) and effective_status(meta) in LIVE:
            out.append(meta)
    return out


def list_runs(runs_dir: str | Path, *, stale_after: float = STALE_AFTER) -> list[RunInfo]:
    """Every run dir under ``runs_dir``, oldest first. Never raises for a broken run dir: it is
    listed with status "unknown" and its error. A missing ``runs_dir`` gives an empty list.
    ``sweeps/`` (the sweep manifests, ``labconsole.sweep``) is not a run."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [_run_info(p, stale_after) for p in sorted(runs_dir.iterdir())
            if p.is_dir() and not p.name.startswith(".") and p.name != SWEEPS]


def _run_info(path: Path, stale_after: float) -> RunInfo:
    info: dict[str, Any] = {"id": path.name, "path": path, "preset": _preset_from_id(path.name)}
    try:
        meta = read_meta(path)
        info.update(preset=meta.preset or info["preset"], label=meta.label, step=meta.step,
                    status=effective_status(meta, stale_after=stale_after), started=meta.started,
                    ended=meta.ended)
    except FileNotFoundError:
        info["error"] = "no meta.json"
    except (OSError, ValueError, TypeError) as exc:
        info["error"] = " ".join(str(exc).split())
    try:
        last_eval, last_step = _latest_eval(path / EVENTS)
    except FileNotFoundError:
        last_eval, last_step = None, 0
    except OSError as exc:
        info["error"] = info.get("error") or f"events.jsonl: {exc}"
        last_eval, last_step = None, 0
    if last_eval is not None:
        info.update(phase=last_eval.phase, accuracy=last_eval.accuracy)
    info["step"] = max(info.get("step", 0), last_step)
    return RunInfo(**info)


def _preset_from_id(run_id: str) -> str:
    parts = run_id.split("-")
    return "-".join(parts[1:-1]) if len(parts) >= 3 else ""


def _latest_eval(path: Path) -> tuple[ev.Eval | None, int]:
    """The last Eval event and the last step mentioned, reading the file backwards."""
    last_step = None
    for event in eventlog.reverse_events(path, _TAIL_LIMIT):
        if last_step is None and hasattr(event, "step"):
            last_step = event.step
        if isinstance(event, ev.Eval):
            return event, last_step or 0
    return None, last_step or 0
