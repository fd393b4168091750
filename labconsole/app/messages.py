"""Messages the console's workers post up to the app: small dataclasses, nothing else.

Messages about the attached run carry a ``generation``: attaching to another run bumps it, and
the app drops whatever a previous follower still had in flight.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual.message import Message

from labconsole.app.samples import Samples
from labconsole.events import Event


@dataclass
class RunEvent(Message):
    """One event of the attached run (replayed from events.jsonl, then live)."""

    generation: int
    event: Event


@dataclass
class TrainEvent(RunEvent):
    """A ``Train`` event: the high-rate kind. A newer one waiting in the queue replaces an older
    one, so a burst (a replay, or a fast GPU) costs one update, not hundreds."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainEvent) and message.generation == self.generation


@dataclass
class StreamEnded(Message):
    """The follower stopped: the run is no longer live. ``status`` is the run dir's verdict
    (e.g. ``crashed`` when the worker died without a ``RunFinished``)."""

    generation: int
    status: str
    events: int  # how many events the stream yielded, from the run's first


@dataclass
class StderrTail(Message):
    """The last lines of the attached run's stderr.log, when they changed."""

    generation: int
    lines: tuple[str, ...]


@dataclass
class SamplesLoaded(Message):
    generation: int
    samples: Samples


@dataclass
class PresetsListed(Message):
    presets: list[Any]  # labconsole.presets.Preset, broken ones with .error set


@dataclass
class RunsListed(Message):
    runs: list[Any]  # labconsole.rundir.RunInfo, newest first


@dataclass
class RunLaunched(Message):
    """``runner.start`` returned: the app attaches to the new run."""

    run_dirs: list[Path]


@dataclass
class ProblemReported(Message):
    """Something went wrong off the UI thread; the app shows ``text`` and stays up."""

    text: str
