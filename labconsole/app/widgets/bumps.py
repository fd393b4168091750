"""The latest generated bumps, drawn with half-block cells in true grayscale.

Each terminal cell shows two pixels stacked: ``▀`` with the foreground set to the upper pixel and
the background to the lower one. A 32x32 image becomes 32 columns x 16 rows, or, when space is
short, is averaged 2x2 first and becomes 16 x 8. The target centre is marked ``+`` and the
predicted centre ``x`` (``*`` where they share a cell); each bump is captioned with both. Captions
are in canvas coordinates; on a frame of a larger canvas (``Samples.offset``) the marks are placed
in the frame (one off the frame marks its edge), and a prediction with an axis read absent (NaN:
stripes) is not marked.
Colours are plain RGB: Rich maps them to the nearest of the 256-colour palette's 24 greys when the
terminal has no true colour.
"""
from __future__ import annotations

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from labconsole.app.samples import Samples
from labconsole.app.widgets.samples_panel import SamplesPanel

UPPER_HALF = "▀"
TARGET_STYLE = Style(color="#00d700", bold=True)  # green: legible on black and on white
PRED_STYLE = Style(color="#ff0000", bold=True)
BOTH_STYLE = Style(color="#ffaf00", bold=True)
GAP = 1  # blank columns between bumps


def to_gray(image: np.ndarray) -> np.ndarray:
    """Map an image in [-1, 1] (1 = white) to 0..255 grey levels (uint8)."""
    return np.clip(np.rint((np.asarray(image, dtype=np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def halve(image: np.ndarray) -> np.ndarray:
    """Average 2x2 blocks: (H, W) -> (H/2, W/2). H and W must be even."""
    h, w = image.shape
    return image.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def _grey(level: int) -> Color:
    return Color.from_rgb(level, level, level)


def _cell_of(point, scale: int, rows: int, cols: int) -> tuple[int, int]:
    """The (cell row, cell col) holding canvas point (x, y) at ``scale`` pixels per column."""
    x, y = float(point[0]), float(point[1])
    col = min(max(int(np.floor(x / scale)), 0), cols - 1)
    row = min(max(int(np.floor(y / (2 * scale))), 0), rows - 1)
    return row, col


def bump_lines(image: np.ndarray, target=None, pred=None, scale: int = 1) -> list[list[Segment]]:
    """One bump as lines of half-block segments.

    Args:
        image: (H, W) in [-1, 1], H and W divisible by 2 * scale.
        target, pred: image (x, y) of the requested and the predicted centre, or None; one with a
            NaN coordinate (an axis read absent) is not marked, one off the image marks its edge.
        scale: 1 (full size: W columns, H/2 rows) or 2 (2x2-averaged: W/2 columns, H/4 rows).

    Returns:
        H / (2 * scale) lines of W / scale single-cell segments.
    """
    if scale not in (1, 2):
        raise ValueError(f"scale must be 1 or 2, got {scale}")
    pixels = np.asarray(image, dtype=np.float32)
    if scale == 2:
        pixels = halve(pixels)
    grey = to_gray(pixels)
    rows, cols = grey.shape[0] // 2, grey.shape[1]
    marks: dict[tuple[int, int], tuple[str, Style]] = {}
    target, pred = (None if p is None or not np.isfinite(p).all() else p for p in (target, pred))
    if target is not None:
        marks[_cell_of(target, scale, rows, cols)] = ("+", TARGET_STYLE)
    if pred is not None:
        cell = _cell_of(pred, scale, rows, cols)
        marks[cell] = ("*", BOTH_STYLE) if cell in marks else ("x", PRED_STYLE)
    lines = []
    for r in range(rows):
        upper, lower = grey[2 * r], grey[2 * r + 1]
        line = []
        for c in range(cols):
            bg = _grey(int(lower[c]))
            if (r, c) in marks:
                char, style = marks[(r, c)]
                # The mark replaces both pixels: paint it on their mean grey.
                mean = (int(upper[c]) + int(lower[c])) // 2
                line.append(Segment(char, style + Style(bgcolor=_grey(mean))))
            else:
                line.append(Segment(UPPER_HALF, Style(color=_grey(int(upper[c])), bgcolor=bg)))
        lines.append(line)
    return lines


def _coord(value: float) -> str:
    return f"{value:.1f}" if np.isfinite(value) else "-"  # "-": the axis read absent


def caption(target, pred, blobs: int, width: int) -> list[str]:
    """The text under a bump: target and predicted centre ("-" for an axis read absent), and the
    blob count when it is not 1."""
    t = f"+{target[0]:.1f},{target[1]:.1f}"
    p = f"x{_coord(pred[0])},{_coord(pred[1])}"
    b = "" if blobs == 1 else f" b{blobs}"
    one = f"{t} {p}{b}"
    if len(one) <= width:
        return [one]
    return [t[:width], (p + b)[:width]]


def choose_scale(n: int, width: int, height: int, full: int = 32) -> int:
    """1 (full size) when at least two bumps (or all, if fewer) fit; 2 (downsampled) otherwise."""
    across = (width + GAP) // (full + GAP)
    down = height // (full // 2 + 1)
    return 1 if across * down >= min(2, max(n, 1)) else 2


def grid_lines(samples: Samples, width: int, height: int) -> tuple[list[list[Segment]], int, int]:
    """Lay out as many bumps as fit in ``width`` x ``height`` cells.

    Returns:
        (lines, number of bumps shown, scale).
    """
    n = len(samples)
    if n == 0 or width <= 0 or height <= 0:
        return [], 0, 1
    side = samples.images.shape[-1]
    scale = choose_scale(n, width, height, side)
    cell_w = side // scale
    cell_h = side // (2 * scale)
    cap_h = 1 if scale == 1 else 2
    across = max(1, (width + GAP) // (cell_w + GAP))
    down = max(0, height // (cell_h + cap_h))
    shown = min(n, across * down)
    lines: list[list[Segment]] = []
    for row_start in range(0, shown, across):
        idx = range(row_start, min(row_start + across, shown))
        shift = getattr(samples, "offset", 0.0)  # canvas -> image coordinates
        blocks = [bump_lines(samples.images[i], samples.labels[i] - shift, samples.pred[i] - shift, scale)
                  for i in idx]
        caps = [caption(samples.labels[i], samples.pred[i], int(samples.blobs[i]), cell_w) for i in idx]
        for r in range(cell_h):
            lines.append(_join([b[r] for b in blocks], cell_w))
        for r in range(cap_h):
            texts = [c[r] if r < len(c) else "" for c in caps]
            lines.append(_join([[Segment(t.ljust(cell_w))] for t in texts], cell_w))
    return lines, shown, scale


def _join(blocks: list[list[Segment]], cell_w: int) -> list[Segment]:
    out: list[Segment] = []
    for k, block in enumerate(blocks):
        if k:
            out.append(Segment(" " * GAP))
        out.extend(block)
    return out


class BumpGrid(SamplesPanel):
    """Renders ``samples`` (set by the run monitor) as a grid of half-block bumps, as many as fit;
    without samples, the one line ``note`` (e.g. why a file could not be read)."""

    DEFAULT_CSS = """
    BumpGrid { height: 1fr; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._lines: list[Strip] = []
        self._laid_out_for: tuple | None = None
        self.shown = 0  # bumps on screen after the last layout (read by tests and the title)

    def on_resize(self) -> None:
        self._layout()

    def _layout(self) -> None:
        key = (id(self._samples), self.size.width, self.size.height)
        if key == self._laid_out_for:
            return
        self._laid_out_for = key
        if self._samples is None:
            self._lines, self.shown = [], 0
            self.border_subtitle = ""
            return
        lines, self.shown, scale = grid_lines(self._samples, self.size.width, self.size.height)
        self._lines = [Strip(line) for line in lines]
        kind = "full size" if scale == 1 else "2x downsampled"
        self.border_subtitle = f"{self.shown} of {len(self._samples)} · {kind} · + target x predicted"

    def render_line(self, y: int) -> Strip:
        if y < len(self._lines):
            return self._lines[y]
        if y == 0 and self._samples is None:
            return Strip([Segment(self._note or "no samples yet", Style(dim=True))])
        return Strip.blank(self.size.width)
