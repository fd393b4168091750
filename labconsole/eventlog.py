"""The one reader of ``events.jsonl`` (DESIGN §3-4): whole file, tail from an offset, backwards.

The worker appends one event per line and flushes per line (``rundir.EventLog``); a crash can
leave a last line without its newline. Every reader here reads complete lines only: a torn last
line is not an event yet (the writer may still finish it) and a line that does not decode (torn
by a crash and closed by the next segment, or written by a newer schema) is skipped, never fatal.

- ``read_events`` / ``iter_events``: the whole file, or what follows its first ``skip`` lines
  (the file part of ``stream.follow``: socket line *k* is file line *k*).
- ``EventTail``: the new complete events since the last poll, by byte offset (the batch).
- ``reverse_events``: from the last line backwards, reading at most a budget of bytes (the runs
  list wants the latest eval of a file that may hold hundreds of megabytes).

No torch, no Textual.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from labconsole import events as ev

_CHUNK = 1 << 16  # bytes per backwards read


def decode_or_none(line: str | bytes) -> ev.Event | None:
    """The event on ``line``, or None when the line does not decode (torn, corrupt, newer schema)."""
    try:
        return ev.decode(line)
    except ValueError:
        return None


def iter_lines(path: str | Path) -> Iterator[str]:
    """Complete lines of a JSON-lines file; a last line without its newline is not yielded.

    Raises:
        FileNotFoundError: no such file.
    """
    with open(path, "rb") as fh:
        for raw in fh:
            if raw.endswith(b"\n"):
                yield raw.decode("utf-8", errors="replace")


def iter_events(path: str | Path, *, skip: int = 0) -> Iterator[ev.Event]:
    """The events of the complete lines after the first ``skip`` lines (counted decodable or not).

    Raises:
        FileNotFoundError: no such file.
    """
    for index, line in enumerate(iter_lines(path)):
        if index >= skip:
            event = decode_or_none(line)
            if event is not None:
                yield event


def read_events(path: str | Path) -> list[ev.Event]:
    """All events of an ``events.jsonl``; a truncated or corrupt line is skipped.

    Raises:
        FileNotFoundError: no such file.
    """
    return list(iter_events(path))


class EventTail:
    """New complete events of an ``events.jsonl`` at each ``poll``, from a byte offset.

    A last line without its newline waits for the next poll (the writer is mid-line). A file that
    does not exist yet gives no events (the worker has not started writing).
    """

    def __init__(self, path: str | Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset  # bytes consumed: always the end of a complete line
        self.lines = 0  # complete lines consumed, decodable or not

    def poll(self) -> list[ev.Event]:
        """The events of the complete lines written since the last poll, in file order."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return []
        end = chunk.rfind(b"\n") + 1  # 0 when not even one line is complete
        lines = chunk[:end].split(b"\n")[:-1]
        self.offset += end
        self.lines += len(lines)
        return [event for event in map(decode_or_none, lines) if event is not None]


def reverse_lines(path: str | Path, max_bytes: int) -> Iterator[bytes]:
    """Complete lines from the last to the first, reading at most about ``max_bytes`` from the end.

    A torn last line is skipped, and so is a line that the budget cuts: every line yielded is whole.

    Raises:
        FileNotFoundError: no such file.
    """
    with open(path, "rb") as fh:
        pos = fh.seek(0, os.SEEK_END)
        carry, in_tail, read = b"", True, 0  # in_tail: still after the file's last newline
        while pos > 0 and read < max_bytes:
            size = min(_CHUNK, pos)
            pos -= size
            fh.seek(pos)
            pieces = (fh.read(size) + carry).split(b"\n")
            read += size
            if in_tail:  # b"" after the final newline, or a torn last line: skip either
                if len(pieces) == 1:
                    carry = b""
                    continue
                pieces.pop()
                in_tail = False
            carry = pieces.pop(0)  # may continue in the previous chunk
            yield from (p for p in reversed(pieces) if p)
        if pos == 0 and carry:
            yield carry


def reverse_events(path: str | Path, max_bytes: int) -> Iterator[ev.Event]:
    """Events from the last complete line backwards (see ``reverse_lines``); bad lines skipped.

    Raises:
        FileNotFoundError: no such file.
    """
    for line in reverse_lines(path, max_bytes):
        event = decode_or_none(line)
        if event is not None:
            yield event
