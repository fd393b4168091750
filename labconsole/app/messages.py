"""Messages the console's workers post: small dataclasses, nothing else.

Messages about the attached run go to the run monitor and stop there (``bubble=False``); they carry
a ``generation``: attaching to another run bumps it, and the monitor drops whatever a previous
follower still had in flight. The rest go up to the app.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import Worker

from labconsole.app.loss import LossCurve
from labconsole.app.samples import Samples
from labconsole.events import Event

if TYPE_CHECKING:  # annotations only: presets and run dirs are reached through the backend
    from labconsole.app.backend import SweepInfo, SweepSnapshot
    from labconsole.presets import Preset
    from labconsole.rundir import RunInfo


@dataclass
class RunEvent(Message, bubble=False):
    """One event of the attached run (replayed from events.jsonl, then live)."""

    generation: int
    event: Event


@dataclass
class TrainEvent(RunEvent, bubble=False):
    """A ``Train`` event: the high-rate kind. A newer one waiting in the queue replaces an older
    one, so a burst (a replay, or a fast GPU) costs one update, not hundreds. ``loss`` is the
    follower's loss curve up to this event, so no point is lost when older ones are replaced
    (None: leave the curve as it is)."""

    loss: LossCurve | None = None

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainEvent) and message.generation == self.generation


@dataclass
class StreamEnded(Message, bubble=False):
    """The follower stopped: the run is no longer live. ``status`` is the run dir's verdict
    (e.g. ``crashed`` when the worker died without a ``RunFinished``)."""

    generation: int
    status: str
    events: int  # how many events the stream yielded, from the run's first
    host: str = ""  # the worker's host when it is not this one (a SLURM or Ray node): no live socket here


@dataclass
class StderrTail(Message, bubble=False):
    """The last lines of the attached run's stderr.log, when they changed."""

    generation: int
    lines: tuple[str, ...]


@dataclass
class SamplesLoaded(Message, bubble=False):
    """One eval's samples file, read (``samples``) or not (``error``: one line saying why)."""

    generation: int
    path: Path  # the file asked for: an answer to an older request is dropped
    step: int
    samples: Samples | None
    error: str = ""


@dataclass
class PresetsListed(Message):
    presets: list[Preset]  # broken ones with .error set


@dataclass
class RunsListed(Message):
    runs: list[RunInfo]  # newest first


@dataclass
class SweepsListed(Message):
    sweeps: list[SweepInfo]  # newest first; broken manifests with .error set


@dataclass
class SweepUpdated(Message, bubble=False):
    """The followed sweep changed (``SweepFollower.poll``). A newer snapshot waiting in the queue
    replaces an older one: the screen draws only the latest."""

    snapshot: SweepSnapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SweepUpdated)


@dataclass
class RunLaunched(Message):
    """``runner.start`` returned: the app attaches to the new run."""

    run_dirs: list[Path]


@dataclass
class ProblemReported(Message):
    """Something went wrong off the UI thread; the app shows ``text`` and stays up."""

    text: str

    @classmethod
    def from_worker(cls, worker: Worker) -> ProblemReported:
        """The problem of a thread worker that raised: its group, the exception's type and text."""
        return cls(f"{worker.group}: {type(worker.error).__name__}: {worker.error}")
