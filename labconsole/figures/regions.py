"""A run's held-out samples by region (issue 16), into ``<report>/runs/<run id>/regions.*``: one row
per held-out region (a hole; a cross's two arms and their intersection; an edge or interior
square), up to ``COLUMNS`` of its samples at the run's last eval in reading order, the target marked
+ and the read position x (an axis read absent — a stripe not drawn — leaves no x). The row label
gives the region's accuracy against its ceiling, so what the numbers say can be seen.

Reads ``Samples.region`` (written since the per-region figure landed; older runs get none) and the
eval's ``regions`` (names in the same order). A painter like ``figures.run``'s.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from labconsole.figures.base import TWO_COLUMNS, Mosaic
from labconsole.samples import Samples

COLUMNS = 8  # samples a region
MARGINS = (1.3, 0.04, 0.12, 0.2)  # inches: row labels (a region's name and numbers), -, -, title
MIN_HEIGHT = 1.2  # inches: one region's row still reads


def region_rows(s: Samples, names: list[str]) -> list[tuple[str, np.ndarray]]:
    """(name, sample indices) of every region with samples, in the eval's order; indices in reading
    order (by y, then x), at most ``COLUMNS`` spread over the region."""
    rows = []
    for i, name in enumerate(names):
        idx = np.flatnonzero(s.region == i)
        if not len(idx):
            continue
        idx = idx[np.lexsort((s.labels[idx, 0], s.labels[idx, 1]))]
        rows.append((name, idx[np.linspace(0, len(idx) - 1, min(COLUMNS, len(idx))).round().astype(int)]))
    return rows


def has_regions(s: Samples | str | None, regions: dict | None) -> bool:
    """Whether the eval's samples carry their regions and the eval names any."""
    return isinstance(s, Samples) and s.region is not None and bool(regions) and bool((s.region >= 0).any())


class RunRegions(Mosaic):
    """The held-out samples of one eval, a row per region (``figures.base.Mosaic``); the read
    positions marked x beside the targets' +."""

    def __init__(self) -> None:
        super().__init__(TWO_COLUMNS, MARGINS, MIN_HEIGHT)
        self.reads = self.ax.scatter([], [], marker="x", s=6, color="tab:blue", lw=0.5)
        self.ax.set_xticks([])

    def draw(self, s: Samples, regions: dict, title: str) -> Figure:
        """The figure for eval samples ``s`` and its event's ``regions`` (``has_regions``)."""
        rows = region_rows(s, list(regions))
        h, w = s.images.shape[1:]
        pitch = h + max(1, h // 16)
        image = np.full((len(rows) * pitch - pitch + h, COLUMNS * pitch - pitch + w), np.nan, dtype=np.float32)
        targets, reads = [], []
        for r, (_, idx) in enumerate(rows):
            for c, i in enumerate(idx):
                image[r * pitch:r * pitch + h, c * pitch:c * pitch + w] = s.images[i]
                origin = np.array([c * pitch, r * pitch]) - s.offset  # canvas (x, y) -> this tile
                targets.append(origin + s.labels[i])
                if np.isfinite(s.pred[i]).all():
                    reads.append(origin + s.pred[i])
        self.show(image, np.array(targets))
        self.reads.set_offsets(np.array(reads).reshape(-1, 2))
        self.ax.set_yticks([r * pitch + h / 2 for r in range(len(rows))],
                           [_row_label(name, regions[name]) for name, _ in rows], fontsize=5)
        self.title.set_text(f"{title}: held out at step {s.step:,} (+ target, x read)")
        return self.fig


def _row_label(name: str, numbers: dict) -> str:
    acc, ceiling, n = numbers.get("accuracy"), numbers.get("ceiling"), numbers.get("n", 0)
    read = "n/a" if acc is None else f"{acc:.2f}"
    return f"{name}\n{read}" + (f" of {ceiling:.2f}" if ceiling is not None else "") + f", n {n}"
