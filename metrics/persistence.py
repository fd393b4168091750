"""Persistent homology of a representation: the follow-up's persistence diagrams (Figs. 2-3; issue 16).

The follow-up's captions say the H1 diagram of layer 4 in the periodic-boundary experiment "shows
two points, as for a torus": two loops that outlive every other (a torus has Betti number b1 = 2;
a circle 1; a square, a disc or a sphere 0). Here:

- the point cloud is layer 4's top PCs at one eval (``metrics.spectrum.pc_scores``, one point per
  distinct label: what the samples file keeps as ``pcs``), read in Euclidean distance;
- the filtration is Vietoris-Rips up to the cloud's diameter, so every H1 class dies (none is
  left infinite by a truncated filtration), computed by GUDHI over Z/2 (``gudhi``, the optional
  ``topology`` extra: a maintained C++ library, far faster than a boundary-matrix reduction we
  would write in Python; imported on first use only);
- a bar's persistence (death - birth) is read relative to the diameter, so clouds of any scale
  compare; ``long_bars`` (*ours*) counts the bars above the widest gap among the bars that reach
  ``floor`` (0.15) of the diameter, the floor itself the lowest rung: the number of loops the
  diagram shows.

Known answers (tests/test_metrics_persistence.py, seeds fixed): 100 uniform points on the 4D
Clifford torus give two bars at ~0.38-0.41 of the diameter, the next at ~0.25 -> 2; a circle one
at ~0.75 -> 1; the flat square none above 0.08 -> 0. 100 points are what an eval at
``eval.n_samples = 100`` has: enough to separate the torus's two loops, not by much (200 points
give 0.42-0.45 against 0.17-0.26). The count's limit: bars are read against the diameter, so a
torus whose second circle is smaller reads one loop at 100 points (radius 0.8 of the first: its
second bar at 0.28-0.32, the sampling's own holes at up to ~0.25, the widest gap above it), and
the 3D ring torus (radii 2 and 1) reads 0, 1 or 2 by seed (bars 0.15-0.17). Read the top bars
beside the count: the report draws and tabulates the three longest. Cost (GUDHI, one core): ~0.1 s at 100 points, ~2 s at 200,
~7 s at 300 (the full Rips complex grows as N³ triangles), so ``h1_bars`` subsamples to
``max_points`` (seeded) before it builds the complex.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FLOOR", "H1", "h1_bars", "long_bars"]

FLOOR = 0.15  # (ours) a loop shorter-lived than this share of the diameter is read as noise
_INSTALL = "persistence diagrams need GUDHI: pip install 'labconsole[topology]' (or: pip install gudhi)"


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class H1:
    """The H1 persistence diagram of a point cloud.

    bars:      (B, 2) birth and death of every H1 class, in the cloud's distance units, longest-lived
               first (every death finite: the filtration runs to the diameter).
    diameter:  the largest pairwise distance: the unit of ``persistence``.
    n_points:  the points the complex was built on (after subsampling).
    """

    bars: np.ndarray
    diameter: float
    n_points: int

    @property
    def persistence(self) -> np.ndarray:
        """(B,) death - birth over the diameter, descending."""
        if not len(self.bars):
            return np.zeros(0)
        return (self.bars[:, 1] - self.bars[:, 0]) / self.diameter

    @property
    def n_long(self) -> int:
        """The loops the diagram shows (``long_bars``)."""
        return long_bars(self.persistence)


def long_bars(persistence: np.ndarray, floor: float = FLOOR) -> int:
    """How many bars stand out: the cut at the widest gap between consecutive relative
    persistences (descending, the floor below the last), among the bars that reach ``floor``; 0
    when none does.

    Why a gap and not a threshold alone: a sparse sample of a torus has a third bar at ~0.25 of the
    diameter, well above noise, but far below the two loops (module docstring).
    """
    p = np.sort(np.asarray(persistence, dtype=float))[::-1]
    k = int(np.sum(p >= floor))
    if k == 0:
        return 0
    # The gap below each bar that reaches the floor, down to the next bar or to the floor: the floor
    # stands for the noise below it, so a lone bar just above it does not make a wide gap.
    gaps = p[:k] - np.maximum(np.append(p[1:], 0.0)[:k], floor)
    return int(np.argmax(gaps)) + 1


def h1_bars(points: np.ndarray, *, max_points: int = 150, seed: int = 0) -> H1:
    """The H1 persistence diagram of a point cloud's Vietoris-Rips filtration (module docstring).

    Args:
        points: (N, D) coordinates (e.g. layer 4's top PCs); rows with NaN are dropped.
        max_points: above this many points a seeded random subset is used (cost grows as N³).
        seed: the subset's seed.

    Returns: H1 (its ``persistence`` and ``n_long`` are the headline numbers).

    Raises:
        ValueError: not (N, D), fewer than 4 finite points, or every point the same.
        ImportError: GUDHI is not installed; the message says how to install it.
    """
    p = _validated(points)
    if len(p) > max_points:
        p = p[np.sort(np.random.default_rng(seed).choice(len(p), max_points, replace=False))]
    try:
        import gudhi
    except ImportError as exc:  # the extra is optional: say how to get it
        raise ImportError(_INSTALL) from exc
    diameter = float(np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)).max())
    if diameter == 0:
        raise ValueError("every point is the same: no persistence diagram")
    # Slightly past the diameter: every edge enters, so every H1 class dies (none left infinite).
    tree = gudhi.RipsComplex(points=p, max_edge_length=diameter * (1 + 1e-9)).create_simplex_tree(max_dimension=2)
    tree.compute_persistence(homology_coeff_field=2)
    bars = np.asarray(tree.persistence_intervals_in_dimension(1), dtype=float).reshape(-1, 2)
    bars[~np.isfinite(bars)] = diameter  # guard: an edge lost to round-off would leave one open
    bars = bars[np.argsort(bars[:, 0] - bars[:, 1], kind="stable")]  # longest-lived first
    return H1(bars=bars, diameter=diameter, n_points=len(p))


def _validated(points: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=float)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"points must be (N, D); got shape {p.shape}")
    p = p[np.isfinite(p).all(axis=1)]
    if len(p) < 4:
        raise ValueError(f"a persistence diagram needs at least 4 finite points; got {len(p)}")
    return p
