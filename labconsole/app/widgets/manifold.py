"""The layer-4 UMAP embedding as a scatter, each point coloured by its label's x (or y).

Drawn with the same half-block trick as the bumps: a W x H widget is a W x 2H pixel canvas; a
cell shows its upper pixel as the ``▀`` foreground and its lower one as the background. The colour
map is a five-stop viridis, which stays ordered when a 256-colour terminal rounds it.
An ordered 2-D sheet (phase C) shows up as a smooth colour gradient in both toggles.
"""
from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from labconsole.app.widgets.samples_panel import SamplesPanel

VIRIDIS = np.array(
    [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=np.float32
)


def colormap(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """(N,) values -> (N, 3) uint8 viridis colours, ``lo`` dark purple, ``hi`` yellow."""
    span = hi - lo if hi > lo else 1.0
    t = np.clip((np.asarray(values, dtype=np.float32) - lo) / span, 0.0, 1.0) * (len(VIRIDIS) - 1)
    k = np.minimum(t.astype(int), len(VIRIDIS) - 2)
    frac = (t - k)[:, None]
    return np.rint(VIRIDIS[k] * (1 - frac) + VIRIDIS[k + 1] * frac).astype(np.uint8)


def scatter_canvas(points: np.ndarray, colours: np.ndarray, width: int, height: int) -> np.ndarray:
    """Paint points into a (2 * height, width, 3) int canvas; -1 marks an empty pixel.

    Points are scaled to fill the canvas (the embedding's units mean nothing); where several fall
    on one pixel, the last one drawn wins.
    """
    canvas = np.full((2 * height, width, 3), -1, dtype=np.int16)
    if len(points) == 0 or width <= 0 or height <= 0:
        return canvas
    pts = np.asarray(points, dtype=np.float64)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    cols = np.rint((pts[:, 0] - lo[0]) / span[0] * (width - 1)).astype(int)
    rows = np.rint((1.0 - (pts[:, 1] - lo[1]) / span[1]) * (2 * height - 1)).astype(int)
    canvas[rows, cols] = colours
    return canvas


def canvas_lines(canvas: np.ndarray) -> list[list[Segment]]:
    """Half-block lines of a (2H, W, 3) canvas; empty pixels keep the terminal's background."""
    lines = []
    for r in range(0, canvas.shape[0] - 1, 2):
        line = []
        for upper, lower in zip(canvas[r], canvas[r + 1]):
            up = None if upper[0] < 0 else Color.from_rgb(*map(int, upper))
            low = None if lower[0] < 0 else Color.from_rgb(*map(int, lower))
            if up is None and low is None:
                line.append(Segment(" "))
            elif up is None:
                line.append(Segment("▄", Style(color=low)))
            else:
                line.append(Segment("▀", Style(color=up, bgcolor=low)))
        lines.append(line)
    return lines


def legend(axis: str, width: int, lo: float = 0.0, hi: float = 32.0) -> list[Segment]:
    """``x 0 ▇▇▇▇ 32``: the colour ramp with its end values."""
    left, right = f"{axis} {lo:g} ", f" {hi:g}"
    n = max(1, min(20, width - len(left) - len(right)))
    colours = colormap(np.linspace(lo, hi, n), lo, hi)
    ramp = [Segment("█", Style(color=Color.from_rgb(*map(int, c)))) for c in colours]
    return [Segment(left)] + ramp + [Segment(right)]


class ManifoldView(SamplesPanel):
    """Scatter of ``samples.embedding`` (dims 1-2) coloured by ``colour_by`` ("x" or "y");
    without samples, the one line ``note`` (e.g. why a file could not be read)."""

    DEFAULT_CSS = """
    ManifoldView { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._colour_by = "x"
        self._lines: list[Strip] = []
        self.points = 0  # points drawn after the last layout (read by tests)

    @property
    def colour_by(self) -> str:
        return self._colour_by

    @colour_by.setter
    def colour_by(self, axis: str) -> None:
        if axis not in ("x", "y"):
            raise ValueError(f"colour_by must be 'x' or 'y', got {axis!r}")
        if axis != self._colour_by:
            self._colour_by = axis
            self._layout()

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        s, width, height = self._samples, self.size.width, self.size.height
        self.border_subtitle = f"coloured by {self._colour_by} · m: toggle"
        if s is None or s.embedding is None or height < 2:
            self._lines, self.points = [], 0
            self.refresh()
            return
        axis = 0 if self._colour_by == "x" else 1
        side = float(s.images.shape[-1]) + 2 * getattr(s, "offset", 0.0)  # the labels' canvas (issue 16)
        colours = colormap(s.labels[:, axis], 0.0, side)
        canvas = scatter_canvas(s.embedding[:, :2], colours, width, height - 1)
        self._lines = [Strip(line) for line in canvas_lines(canvas)]
        self._lines.append(Strip(legend(self._colour_by, width, 0.0, side)))
        self.points = len(s.embedding)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        if y < len(self._lines):
            return self._lines[y]
        if y == 0:
            if self._samples is None:
                return Strip([Segment(self._note or "no embedding yet", Style(dim=True))])
            if self._samples.embedding is None:
                return Strip([Segment("this eval has no embedding", Style(dim=True))])
        return Strip.blank(self.size.width)
