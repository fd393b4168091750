"""The training loss of a run as the console plots it: every Train event's (step, loss), and its
smoothing. Pure, no Textual.

``LossCurve`` is folded from the run's events by ``fold`` (the resume rule of ``labconsole.runview``
applies: a resumed segment replaces the points its predecessor logged after ``start_step``). It is
immutable and cheap to extend — points sit in fixed-size chunks, so adding one copies at most one
chunk — because the follower thread folds it and hands a snapshot to the UI thread with each Train
message: when queued Train messages coalesce, the newest still carries every point.

``ema`` is TensorBoard's scalar smoothing: an exponential moving average debiased like Adam's first
moment, so the first smoothed value is the first raw value rather than a fraction of it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from labconsole.events import Event, RunStarted, Train

CHUNK = 256  # points per chunk: adding a point copies at most this many
EMA_WEIGHT = 0.6  # TensorBoard's default smoothing weight

Point = tuple[int, float]  # (step, loss)


@dataclass(frozen=True)
class LossCurve:
    """Every (step, loss) a run logged, in arrival order; ``add`` returns a new curve."""

    chunks: tuple[tuple[Point, ...], ...] = ()  # full chunks of CHUNK points
    tail: tuple[Point, ...] = ()  # the last, partial chunk

    def __len__(self) -> int:
        return len(self.chunks) * CHUNK + len(self.tail)

    def add(self, step: int, loss: float) -> LossCurve:
        """The curve with one more point."""
        tail = self.tail + ((step, loss),)
        if len(tail) == CHUNK:
            return LossCurve(self.chunks + (tail,), ())
        return LossCurve(self.chunks, tail)

    def points(self) -> list[Point]:
        """All points, oldest first."""
        return [p for chunk in self.chunks for p in chunk] + list(self.tail)

    def until(self, step: int) -> LossCurve:
        """The curve without the points logged after ``step``."""
        return from_points(p for p in self.points() if p[0] <= step)


def from_points(points) -> LossCurve:
    """A curve of ``points`` ((step, loss) pairs, oldest first)."""
    points = tuple(points)
    cut = len(points) - len(points) % CHUNK
    chunks = tuple(points[i:i + CHUNK] for i in range(0, cut, CHUNK))
    return LossCurve(chunks, points[cut:])


def fold(curve: LossCurve, event: Event) -> LossCurve:
    """The curve after ``event``: a Train event adds its point; a resumed segment's RunStarted
    drops the points after its start step (they belong to the abandoned timeline); other events
    leave it as it is."""
    if isinstance(event, Train):
        return curve.add(event.step, event.loss)
    if isinstance(event, RunStarted) and event.segment:
        return curve.until(event.start_step)
    return curve


def ema(values: Sequence[float], weight: float = EMA_WEIGHT) -> list[float]:
    """TensorBoard-style debiased exponential moving average.

    ``m_k = weight * m_(k-1) + (1 - weight) * v_k`` from ``m_0 = 0``, reported as
    ``m_k / (1 - weight ** k)`` (k counts the finite values so far). A non-finite value is passed
    through unsmoothed and leaves the average untouched, as TensorBoard does.

    Args:
        values: the raw series, in step order.
        weight: in [0, 1); 0 returns the values, larger is smoother.
    Returns:
        The smoothed series, as long as ``values``.
    Raises:
        ValueError: ``weight`` outside [0, 1).
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"EMA weight must be in [0, 1), got {weight}")
    out, last, k = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        k += 1
        last = weight * last + (1.0 - weight) * v
        out.append(last / (1.0 - weight**k))
    return out
