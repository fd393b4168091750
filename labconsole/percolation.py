"""Percolation of the data (the follow-up paper, Liang, Liu, Ostrow & Fiete 2024, Figs. 6c, 13, 14b).

No training. ``labconsole --batch presets/percolation.toml`` prints the table;
``labconsole report presets/percolation.toml --out DIR`` writes it as CSV with its figure.

What the captions say (paper): bumps sit on a lattice of spacing d; lambda is the fraction of the
lattice sites kept; two kept sites are joined when their bumps overlap more than a threshold
(0.005 in Fig. 6c, 0.05 in Fig. 14b); the curve is the share of the data in the largest connected
cluster against lambda, one per sigma.

What is ours (the body of the paper could not be read):

- the overlap of two bumps is ``model.data.neighbour_overlap``'s: ``|a b| / sqrt(|a a| |b b|)``
  over the inverted (bright) bump images, for any pair of sites, not only neighbours along x;
- it is computed exactly for every pair from the rendered pixels, border and pixel grid included
  (``overlap = "images"``), or from its closed form far from the border, ``exp(-r^2 / (4 sigma^2))``
  (``"gaussian"``): a bright bump is separable, ``gy(y) gx(x)``, so the overlap of two bumps is the
  product of an x factor and a y factor, each a (n, n) table over the lattice's n coordinates,
  computed once per sigma. The two differ where sigma is near a pixel: at sigma 0.5 and d = 1 the
  rendered neighbour overlap is 0.71, the closed form's 0.37 (tests/test_percolation.py);
- the lattice: 0, d, 2d, ... < size along each axis, the data grid of increment d with no margin;
- the kept sites: the first round(lambda N) of a seeded random order of the N sites (at least
  one), so a draw's subsets are nested as lambda grows (one order serves the lambda grid) and every
  sigma and threshold sees the same subsets. At each lambda that is a uniform random subset of
  that size, as a training run's ``data.keep`` draws, though not the same one (``keep_seed``);
- the share's denominator: the kept sites (``denominator = "kept"``), or all N sites (``"all"``);
- several draws per lambda, reported as their mean and standard deviation (ddof 0), min and max.
"""
from __future__ import annotations

import csv
import importlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from rich.console import Console
from rich.table import Table

from labconsole.presets import PercolationConfig, Preset
from labconsole.rundir import write_atomic

MAX_PAIRS = 5_000_000  # joined pairs of one (sigma, threshold); d = 1 has 0.2 M at sigma 3, d = 0.5 has
# 3.3 M (measured: ~2 s a draw, 0.3 GB), d = 0.25 52 M (refused: minutes a draw, several GB)
FIGURE_MODULE = "labconsole.figures.percolation"  # draws the figure; needs matplotlib (an extra)
FIGURE_HOW = "pip install 'labconsole[report]' (from a checkout: pip install -e '.[report]')"


# --------------------------------------------------------------------------- the graph


def lattice_axis(d: float, size: int = 32) -> np.ndarray:
    """The lattice's coordinates along one axis, 0, d, 2d, ... < size (pixels): the data grid of
    increment d without a margin (``model.data.axis_centres(d, size, 0)``, without torch)."""
    n = int(math.floor((size - 1e-9) / d)) + 1  # on integers: d = 0.1 gives exactly 320 values
    return np.round(np.arange(n) * d, 9)


def axis_overlap(sigma: float, xs: np.ndarray, size: int = 32, overlap: str = "images") -> np.ndarray:
    """The (n, n) factor of the overlap of two bumps at coordinates ``xs[i]``, ``xs[j]`` of one axis.

    The overlap of two bumps at (x_i, y_k) and (x_j, y_l) is ``F[i, j] * F[k, l]`` (bright bumps are
    separable). ``"images"``: from the pixels, whose centres are at p + 0.5 (``model.data.bump_images``);
    ``"gaussian"``: the closed form ``exp(-(x_i - x_j)^2 / (4 sigma^2))``, no border, no pixels.
    """
    if overlap == "gaussian":
        return np.exp(-((xs[:, None] - xs[None, :]) ** 2) / (4 * sigma**2))
    if overlap != "images":
        raise ValueError(f"unknown overlap {overlap!r}; expected one of: images, gaussian")
    pixels = np.arange(size) + 0.5
    g2 = np.exp(-((pixels[None, :] - xs[:, None]) ** 2) / sigma**2)  # (n, size): a bright profile, squared
    s = g2 @ g2.T  # (n, n): sum_p g_i^2 g_j^2, the squared norm of the product's factor
    norm = np.sqrt(np.diag(s))  # |g_i g_i| of each coordinate
    return np.sqrt(s) / np.sqrt(np.outer(norm, norm))


def joined_pairs(factor: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The site pairs (u < v) whose overlap exceeds ``threshold``; site s = k n + i is at (xs[i], xs[k]).

    Raises:
        ValueError: more than ``MAX_PAIRS`` pairs (too dense a lattice for so wide bumps).
    """
    n = len(factor)
    if (pairs := pair_count(factor, threshold)) > MAX_PAIRS:
        raise ValueError(f"{pairs:,} joined pairs of sites at threshold {threshold:g} (at most {MAX_PAIRS:,}): "
                         f"use a larger d or threshold, or smaller sigmas")
    i, j = np.nonzero(factor > threshold)  # axis pairs that can join: the other factor is at most 1
    f = factor[i, j]
    us, vs = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]  # none at a threshold of 1
    chunk = max(1, 4_000_000 // max(len(f), 1))  # bounds the (chunk, P) temporary
    for lo in range(0, len(f), chunk):
        a, b = np.nonzero(f[lo:lo + chunk, None] * f[None, :] > threshold)  # x pair a, y pair b
        a += lo
        u, v = i[b] * n + i[a], j[b] * n + j[a]
        keep = u < v  # each unordered pair comes twice (and a site with itself): keep one
        us.append(u[keep])
        vs.append(v[keep])
    return np.concatenate(us), np.concatenate(vs)


def pair_count(factor: np.ndarray, threshold: float) -> int:
    """How many site pairs ``joined_pairs`` gives, counted without forming them (in a second)."""
    f = np.sort(factor[factor > threshold])
    ordered = int(np.sum(len(f) - np.searchsorted(f, threshold / f, side="right")))  # (a, b): f_a f_b > t
    return (ordered - len(factor) ** 2) // 2  # less each site with itself; each pair came twice


def kept_count(lam: float, n_sites: int) -> int:
    """The sites kept at ``lam``: round(lam N) half up, at least one (as ``model.data.keep_mask``)."""
    return max(1, int(math.floor(lam * n_sites + 0.5)))


def draw_order(n_sites: int, seed: int, draw: int) -> np.ndarray:
    """Draw ``draw``'s random order of the sites; its first k are the kept ones."""
    return np.random.default_rng((seed, draw)).permutation(n_sites)


# --------------------------------------------------------------------------- clusters


def cluster_share(sigma: float, d: float, lam: float, threshold: float, seed: int = 0, draw: int = 0, *,
                  size: int = 32, overlap: str = "images", denominator: str = "kept") -> float:
    """The share in the largest cluster for one (sigma, d, lambda, threshold, seed, draw).

    Found directly (scipy's connected components of the kept sites' graph); ``percolation_table``
    gets the same numbers for a whole grid through one spanning forest per draw.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    xs = lattice_axis(d, size)
    n_sites = len(xs) ** 2
    u, v = joined_pairs(axis_overlap(sigma, xs, size, overlap), threshold)
    k = kept_count(lam, n_sites)
    kept = np.zeros(n_sites, dtype=bool)
    kept[draw_order(n_sites, seed, draw)[:k]] = True
    both = kept[u] & kept[v]
    graph = coo_matrix((np.ones(int(both.sum())), (u[both], v[both])), shape=(n_sites, n_sites))
    labels = connected_components(graph, directed=False)[1]
    return int(np.bincount(labels[kept]).max()) / (k if denominator == "kept" else n_sites)


def largest_clusters(u: np.ndarray, v: np.ndarray, order: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """The largest cluster's size (in sites) when the first k sites of ``order`` are kept, per k of
    ``ks`` (non-decreasing).

    Kruskal's algorithm tells: weight a pair by the later place of its two sites in ``order`` (the k from
    which both are kept); the clusters at k are those of a minimum spanning forest's edges of
    weight < k. So one forest per draw (scipy, C; ~10 ms for 0.2 M pairs) and a union-find over
    its at most N - 1 edges serve the whole lambda grid.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    n = len(order)
    place = np.empty(n, dtype=np.int64)
    place[order] = np.arange(n)
    weight = np.maximum(place[u], place[v]) + 1.0  # + 1: scipy reads a zero weight as no edge
    forest = minimum_spanning_tree(coo_matrix((weight, (u, v)), shape=(n, n))).tocoo()
    by_weight = np.argsort(forest.data, kind="stable")
    edges = zip(forest.row[by_weight].tolist(), forest.col[by_weight].tolist(),
                (forest.data[by_weight] - 1).tolist())
    return np.array(_grow(edges, n, [int(k) for k in ks]))


def _grow(edges: Iterator[tuple[int, int, float]], n: int, ks: list[int]) -> list[int]:
    """Union-find over ``(a, b, weight)`` in weight order: the largest cluster at each k."""
    parent, size = list(range(n)), [1] * n
    largest, out, pending = 1, [], next(edges, None)

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]  # path halving: near-constant time a lookup
            a = parent[a]
        return a

    for k in ks:
        while pending is not None and pending[2] < k:
            a, b = root(pending[0]), root(pending[1])
            if a != b:
                if size[a] < size[b]:
                    a, b = b, a
                parent[b] = a
                size[a] += size[b]
                largest = max(largest, size[a])
            pending = next(edges, None)
        out.append(largest)
    return out


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True, eq=False)
class PercolationTable:
    """The largest cluster's size per (sigma, threshold, lambda, draw), and what it is a share of."""

    cfg: PercolationConfig
    n_sites: int  # N, the lattice's sites
    kept: np.ndarray  # (L,) the sites kept at each lambda
    largest: np.ndarray  # (S, T, L, D) the largest cluster, in sites

    @property
    def shares(self) -> np.ndarray:
        """(S, T, L, D): the largest cluster over the kept sites (or over all N: ``denominator``)."""
        denominator = self.kept[:, None] if self.cfg.denominator == "kept" else self.n_sites
        return self.largest / denominator


def percolation_table(cfg: PercolationConfig) -> PercolationTable:
    """Every (sigma, threshold, lambda, draw) of ``cfg``; ~2 s for the shipped preset (d = 1).

    Raises:
        ValueError: a (sigma, threshold) with more than ``MAX_PAIRS`` joined pairs (checked for
            all of them before the long part).
    """
    xs = lattice_axis(cfg.d, cfg.size)
    n_sites = len(xs) ** 2
    ks = np.array([kept_count(lam, n_sites) for lam in cfg.lambdas])
    factors = [axis_overlap(s, xs, cfg.size, cfg.overlap) for s in cfg.sigmas]
    for sigma, factor in zip(cfg.sigmas, factors):
        for t in cfg.thresholds:
            if (pairs := pair_count(factor, t)) > MAX_PAIRS:
                raise ValueError(f"percolation.d: {cfg.d:g} joins {pairs:,} pairs of sites at sigma {sigma:g}, "
                                 f"threshold {t:g} (at most {MAX_PAIRS:,}): use a larger d or threshold, "
                                 f"or smaller sigmas")
    orders = [draw_order(n_sites, cfg.seed, j) for j in range(cfg.draws)]  # shared by every sigma, threshold
    largest = np.empty((len(cfg.sigmas), len(cfg.thresholds), len(ks), cfg.draws), dtype=np.int64)
    for si, factor in enumerate(factors):
        for ti, t in enumerate(cfg.thresholds):
            u, v = joined_pairs(factor, t)
            for j, order in enumerate(orders):
                largest[si, ti, :, j] = largest_clusters(u, v, order, ks)
    return PercolationTable(cfg, n_sites, ks, largest)


def title(table: PercolationTable) -> str:
    """What the numbers are: a share of what (the denominator)."""
    of = "the kept sites" if table.cfg.denominator == "kept" else "all lattice sites"
    return f"largest-cluster share of {of} against lambda (follow-up Figs. 6c, 14b)"


def caption(table: PercolationTable) -> str:
    """How they were made: the lattice, the overlap, the draws."""
    cfg = table.cfg
    return (f"d = {cfg.d:g}: {table.n_sites:,} sites; overlap from {cfg.overlap}; "
            f"mean ± std over {cfg.draws} draws (seed {cfg.seed})")


def rich_table(table: PercolationTable) -> Table:
    """Rows: lambda (and the sites kept); columns: threshold x sigma; cells: mean ± std over draws."""
    cfg, shares = table.cfg, table.shares
    out = Table(title=title(table), caption=caption(table))
    out.add_column("lambda", justify="right")
    out.add_column("kept", justify="right")
    for t in cfg.thresholds:
        for s in cfg.sigmas:
            out.add_column(f"thr {t:g}\nsigma {s:g}", justify="right")
    for li, lam in enumerate(cfg.lambdas):
        cells = [f"{shares[si, ti, li].mean():.3f} ± {shares[si, ti, li].std():.3f}"
                 for ti in range(len(cfg.thresholds)) for si in range(len(cfg.sigmas))]
        out.add_row(f"{lam:g}", f"{table.kept[li]:,}", *cells)
    return out


def csv_rows(table: PercolationTable) -> tuple[list[str], list[list]]:
    """percolation.csv: one row per (threshold, sigma, lambda), tidy."""
    header = ["threshold", "sigma", "lambda", "kept", "n_sites", "d", "overlap", "denominator", "draws",
              "share_mean", "share_std", "share_min", "share_max", "largest_mean"]
    cfg, shares, rows = table.cfg, table.shares, []
    for ti, t in enumerate(cfg.thresholds):
        for si, s in enumerate(cfg.sigmas):
            for li, lam in enumerate(cfg.lambdas):
                x = shares[si, ti, li]
                rows.append([t, s, lam, int(table.kept[li]), table.n_sites, cfg.d, cfg.overlap, cfg.denominator,
                             cfg.draws, x.mean(), x.std(), x.min(), x.max(), table.largest[si, ti, li].mean()])
    return header, rows


# --------------------------------------------------------------------------- entry points


def print_table(preset: Preset, console: Console, overrides: Sequence[str] = ()) -> PercolationTable:
    """``labconsole --batch`` of a percolation preset: the table, and how to get its figure."""
    table = percolation_table(preset.percolation)
    console.print(rich_table(table))
    sets = "".join(f" --set '{o}'" for o in overrides)
    console.print(f"figure and CSV: labconsole report {preset.path}{sets} --out DIR", markup=False,
                  highlight=False, soft_wrap=True)
    return table


def write_files(table: PercolationTable, out: Path, source: str = "") -> tuple[list[Path], list[str]]:
    """percolation.csv, percolation.png / .pdf (when matplotlib is installed) and README.txt into
    ``out`` (made if needed); returns (the files, notes on what was not made)."""
    out.mkdir(parents=True, exist_ok=True)
    header, rows = csv_rows(table)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    write_atomic(out / "percolation.csv", buf.getvalue(), fsync=False)  # a reader never sees half a table
    files, notes = [out / "percolation.csv"], []
    try:
        figures = importlib.import_module(FIGURE_MODULE)  # lazy: matplotlib loads only here
        files += figures.write_percolation_figure(table, out / "percolation")
    except ImportError as exc:
        notes.append(f"figures: none ({exc}); for PNG / PDF figures: {FIGURE_HOW}")
    lines = [f"labconsole report: {source or 'a percolation table'} (no training)", title(table), caption(table), "",
             "percolation.csv  one row per (threshold, sigma, lambda): the sites kept, the share's mean, std",
             "                 (ddof 0), min and max over the draws, the largest cluster's mean size in sites",
             "percolation.*    the share against lambda (log axis), one line per sigma with its ± std band,",
             "                 one panel per threshold", "", "config: " + repr(table.cfg)]
    lines += [f"note: {n}" for n in notes]
    write_atomic(out / "README.txt", "\n".join(lines) + "\n", fsync=False)
    return files + [out / "README.txt"], notes
