"""Which eval's samples the run monitor shows: the latest one (following the run), or one the user
stepped back to. Pure, no Textual.

The choice is one value, ``pinned``: None while following, else the step of the eval the user
chose. A move that lands on the latest eval clears it again, so ``]`` up to the newest eval, like
``}``, resumes following; a pinned step that a resume dropped from the view falls back to the
nearest older eval.
"""
from __future__ import annotations

import bisect
from typing import Sequence

from labconsole.events import Eval

MOVES = ("first", "previous", "next", "latest")


def sample_steps(evals: Sequence[Eval]) -> tuple[int, ...]:
    """The steps of the evals that wrote a samples file, in step order."""
    return tuple(e.step for e in evals if e.samples_path)


def selected_index(steps: Sequence[int], pinned: int | None) -> int | None:
    """Index in ``steps`` of the eval shown: the latest when following (``pinned`` None), else the
    newest at or before ``pinned`` (the first if none is). None when there are no steps."""
    if not steps:
        return None
    if pinned is None:
        return len(steps) - 1
    return max(0, bisect.bisect_right(steps, pinned) - 1)


def move(steps: Sequence[int], pinned: int | None, where: str) -> int | None:
    """The new ``pinned`` after moving ``where`` (one of MOVES) from the eval shown now.

    Raises:
        ValueError: ``where`` is not one of MOVES.
    """
    if where not in MOVES:
        raise ValueError(f"unknown move {where!r}; expected one of: {', '.join(MOVES)}")
    index = selected_index(steps, pinned)
    if index is None or where == "latest":
        return None
    last = len(steps) - 1
    target = {"first": 0, "previous": max(0, index - 1), "next": min(last, index + 1)}[where]
    return None if target == last else steps[target]


def samples_title(steps: Sequence[int], pinned: int | None) -> str:
    """The bumps panel's title: the step shown, its place among the evals, and the keys, e.g.
    ``samples @ step 300 · 4/7 · [ ] step · } live`` (stepped back) or ``... · live · [ back``."""
    index = selected_index(steps, pinned)
    if index is None:
        return "samples"
    where = f"samples @ step {steps[index]:,} · {index + 1}/{len(steps)}"
    if pinned is None:
        return where + (" · live · [ back" if len(steps) > 1 else " · live")
    return where + " · [ ] step · } live"
