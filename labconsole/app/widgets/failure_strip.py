"""The failure-mode strip: per eval, the shares of in-distribution samples with no bump, one bump,
several bumps (paper Sec. 3: failure modes (i) and (iii), and the single bump the phase rule counts);
for stripes read per axis (``Eval.reader`` "axes"), marks: "no mark / one / several".

Three rows, one per mode, one column per eval in step order, the latest at the right (older evals
drop off the left when the strip is narrower than the run has evals); each cell a block whose
height is the share, in eighths. The latest eval's percentages end the rows. The shares are the
Eval events' ``blobs_0`` / ``blobs_1`` / ``blobs_many``; nothing here computes a metric.
"""
from __future__ import annotations

import math
from typing import Sequence

from rich.text import Text
from textual.app import RenderResult
from textual.widget import Widget

from labconsole.events import Eval, mark_noun

# (row label, Eval field, colour from the 256-colour cube, so it reads the same over SSH); the first
# label names what the failure modes count (events.mark_noun): "no mark" for stripes read per axis
MODES = (("no bump", "blobs_0", "#5f87ff"), ("one", "blobs_1", "#5fd75f"), ("several", "blobs_many", "#ff5f5f"))
BLOCKS = " ▁▂▃▄▅▆▇█"  # BLOCKS[k]: a share of about k / 8
ZERO = "·"  # an eval with none of this mode: a dot, so the column still shows
LABEL_WIDTH = 8  # "several" and a space
FIGURE_WIDTH = 5  # " 100%"


def cell(share: float) -> str:
    """A share in [0, 1] as one character: ZERO for 0, else the block of the nearest eighth (at
    least the lowest, so 1 sample in 500 still shows); "?" for an undefined share (NaN)."""
    if math.isnan(share):
        return "?"
    if share <= 0:
        return ZERO
    return BLOCKS[min(8, max(1, round(share * 8)))]


def strip_lines(evals: Sequence[Eval], width: int) -> list[Text]:
    """The strip's three rows for ``evals`` (oldest first) in ``width`` columns: label, one cell per
    eval (as many of the latest as fit), the latest share in percent."""
    columns = max(0, width - LABEL_WIDTH - FIGURE_WIDTH)
    shown = list(evals)[-columns:] if columns else []
    mark = mark_noun(evals[-1].reader if evals else "")  # one run: one reader
    lines = []
    for label, name, colour in MODES:
        label = f"no {mark}" if name == "blobs_0" else label
        cells = "".join(cell(getattr(e, name)) for e in shown)
        last = getattr(evals[-1], name) if evals else math.nan
        figure = "" if math.isnan(last) else f"{last:.0%}"
        lines.append(Text.assemble(
            (f"{label:<{LABEL_WIDTH}}", "bold"), (cells.ljust(columns), colour), (f"{figure:>{FIGURE_WIDTH}}", colour),
            no_wrap=True, overflow="crop",
        ))
    return lines


class FailureStrip(Widget):
    """Draws the failure modes of ``evals`` (the attached run's, set by the run monitor)."""

    DEFAULT_CSS = """
    FailureStrip { height: 3; padding: 0 1; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.evals: tuple[Eval, ...] = ()

    def set_evals(self, evals: Sequence[Eval]) -> None:
        """Show these evals (oldest first); redraws only when given another sequence (a view's
        evals tuple is replaced, never changed, when an eval arrives)."""
        if evals is not self.evals:
            self.evals = tuple(evals)
            self.refresh()

    def render(self) -> RenderResult:
        return Text("\n").join(strip_lines(self.evals, self.content_size.width))
