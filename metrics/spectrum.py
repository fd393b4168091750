"""The torus metrics of the periodic-boundary experiment (follow-up paper, Figs. 2-3; issue 16).

From layer-4 features X (N, D) of N samples:
- the PCA spectrum: explained-variance ratios of the top k components (k = 15, the follow-up's
  figure) and the variance share of the top 4 PCs (a torus of two circles needs 4 dimensions to
  be factorized: the 4D Clifford torus puts all of its variance there);
- an effective dimension. The follow-up does not define its own; ours (*ours*) is the
  participation ratio PR = (sum l)² / sum l² over all eigenvalues l of the sample covariance.
  Why it: it needs no threshold and moves continuously over training (a count of components
  jumps in integer steps); it equals d for d equal-variance directions whatever their scale or
  orientation, so the known answers are exact (Clifford torus 4, a line 1, the 3D ring torus of
  radii 3 and 1: 2.20); and it is a common "dimensionality" of neural population codes.
  Its caveat: it counts noise too, and with a finite-sample bias: N samples of isotropic noise
  in d dims give ``isotropic_pr(d, N)`` ≈ d (N - 1) / (N + d), a little below d for d << N
  but ~N for d >> N, so noise spread over many features can add up to ~N: read it beside that.
  Beside it, the threshold reading: ``n_components``, the fewest PCs whose variance reaches
  ``threshold`` (90 % by default) of the total;
- with (x, y) labels, the orthogonality and parallelism tests of the captions (*ours*, the
  follow-up gives no formula). An "x-ring" is the set of samples sharing one y value (x varies
  along it); its subspace is the plane of its top 2 PCs (a circle spans a plane). Between two
  planes P, Q the overlap is ||P^T Q||_F² / 2, the mean cos² of their principal angles: 1 for
  the same plane, 0 for orthogonal planes, 2 / D for random planes in D dims. Reported:
  overlap_xy, the mean over every (x-ring, y-ring) pair (orthogonality: 0 when x and y are coded
  in orthogonal subspaces), and overlap_xx / overlap_yy, the mean over pairs of x-rings (y-rings)
  (parallelism: 1 when every x-ring lies in the same plane). Known answers, with a grid of
  angles: the 4D Clifford torus (cos a, sin a, cos b, sin b) gives 0 / 1 / 1 (factorized); the
  3D ring torus ((R + r cos b) cos a, (R + r cos b) sin a, r sin b) gives 0.5 / 1 / 0.75
  (coupled: each meridian y-ring lies in its own vertical plane, sharing one axis with the
  horizontal x-rings; 0.742 rather than 0.75 on a grid of 32 angles, (1 + 15/31) / 2, as a ring
  is not paired with itself).

Cost: everything comes from the N x N centred Gram matrix Xc Xc^T (its nonzero eigenvalues are
those of the D x D scatter Xc^T Xc; a ring's plane is read off its block of it), accumulated in
float64 over blocks of 2048 features: N² D / 2 multiply-adds and no copy of X, so D = 65,536 is
cheap. For D <= N without labels the D x D scatter is used. Measured (``.venv/bin/python
bench/spectrum.py``, float32 features, the 2-core dev box under load ~6 from training jobs),
seconds, numpy's BLAS on 1 thread / on its default 2 threads:
    N = 100:  D = 4096  0.02 / 0.30    D = 65,536  0.12 / 1.2
    N = 500:  D = 4096  0.16 / 1.6     D = 65,536  1.8  / 10
    N = 1000: D = 4096  0.70 / 4.2     D = 65,536  5.3  / 8.2    (labels add 0-1 s)
On a busy CPU OpenBLAS's threads wait on each other (eigvalsh of 1000 x 1000: 0.16 s on one
thread, 2 s on two): a caller beside training may run this inside
``threadpoolctl.threadpool_limits(1, user_api="blas")``. This function leaves threads alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

__all__ = ["MIN_RING_SAMPLES", "RingOverlaps", "Spectrum", "isotropic_pr", "pc_scores", "pca_spectrum"]

MIN_RING_SAMPLES = 4  # a ring's plane from 3 points is just the plane through them (ours)
_RING_DIM = 2  # a circle spans a plane
_TOP = 4  # the follow-up's "variance share of the top 4 PCs"
_BLOCK = 2048  # features per Gram block: N x 2048 float64 (16 MB at N = 1000)


@dataclass(frozen=True)
class RingOverlaps:
    """Orthogonality and parallelism of the x- and y-rings (module docstring; *ours*).

    overlap_xy:  mean overlap of every x-ring plane with every y-ring plane (0 = orthogonal).
    overlap_xx:  mean overlap over pairs of x-ring planes (1 = parallel).
    overlap_yy:  mean overlap over pairs of y-ring planes (1 = parallel).
    n_rings_x:   x-rings used: distinct y values with >= MIN_RING_SAMPLES samples.
    n_rings_y:   y-rings used: distinct x values with >= MIN_RING_SAMPLES samples.
    An overlap is NaN where there are too few rings (overlap_xx needs 2 x-rings, overlap_xy one
    of each); ``Spectrum.to_dict`` writes NaN as None.
    """

    overlap_xy: float
    overlap_xx: float
    overlap_yy: float
    n_rings_x: int
    n_rings_y: int


@dataclass(frozen=True)
class Spectrum:
    """The PCA spectrum of a set of features, and its effective dimension.

    explained_variance_ratio: variance share of each of the top PCs, largest first: min(k, N - 1,
                              D) values (what sklearn's PCA reports as explained_variance_ratio_).
    top4_share:               variance share of the top 4 PCs (of all there are, if fewer).
    participation_ratio:      (sum l)² / sum l² over all eigenvalues l (*ours*; in [1, N - 1]).
    n_components:             the fewest PCs reaching `threshold` of the variance (*ours*).
    threshold:                the share n_components is counted for (0.9 by default).
    n_samples, n_features:    N and D of the features read.
    rings:                    RingOverlaps when labels were given, else None.
    ``to_dict`` / ``from_dict`` encode it as a JSON-ready dict of ~k + 12 numbers.
    """

    explained_variance_ratio: tuple[float, ...]
    top4_share: float
    participation_ratio: float
    n_components: int
    threshold: float
    n_samples: int
    n_features: int
    rings: RingOverlaps | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (lists for tuples, None for NaN); ``from_dict`` reads it back."""
        out = asdict(self)
        out["explained_variance_ratio"] = list(self.explained_variance_ratio)
        if self.rings is not None:
            out["rings"] = {k: None if _isnan(v) else v for k, v in out["rings"].items()}
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Spectrum:
        """Read what ``to_dict`` wrote. Raises ValueError naming missing or unknown keys."""
        _check_keys(data, cls, "spectrum")
        rings = data["rings"]
        if rings is not None:
            _check_keys(rings, RingOverlaps, "spectrum rings")
            rings = RingOverlaps(
                **{k: float("nan") if v is None else v for k, v in rings.items()}
            )
        return cls(
            **{**data, "explained_variance_ratio": tuple(data["explained_variance_ratio"]),
               "rings": rings}
        )


def pca_spectrum(
    features: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    k: int = 15,
    threshold: float = 0.9,
) -> Spectrum:
    """PCA spectrum, participation ratio and (given labels) ring overlaps of the features.

    The torus metrics of the follow-up's periodic-boundary experiment (Figs. 2-3); definitions
    and their known answers in the module docstring.

    Args:
        features: (N, D) or (N, C, H, W) (any (N, ...)) activations, e.g. layer 4; flattened.
        labels: optional (N, 2) (x, y) of each sample; samples sharing an exact y value form
            an x-ring (and sharing an x value, a y-ring). Without them `rings` is None.
        k: how many top explained-variance ratios to report (fewer when N - 1 or D is smaller).
        threshold: the variance share `n_components` is counted for, in (0, 1].

    Returns: Spectrum (see its docstring); deterministic, invariant to rotating, scaling or
        translating the features.

    Raises:
        ValueError: features not (N, ...) with N >= 2, NaN / inf in features or labels, labels
            not (N, 2), every sample identical (no variance), k < 1, threshold outside (0, 1].
    """
    x, labels = _validated(features, labels, k, threshold)
    mean = x.mean(axis=0, dtype=np.float64)  # (D,)
    n, d = x.shape
    gram = _centred_gram(x, mean) if d > n or labels is not None else None  # (N, N)
    eigvals = _eigvals(x, mean, gram)
    total = eigvals.sum()
    ratios = eigvals / total
    cumulative = np.cumsum(ratios)
    return Spectrum(
        explained_variance_ratio=tuple(float(r) for r in ratios[:k]),
        top4_share=float(cumulative[min(_TOP, len(ratios)) - 1]),
        participation_ratio=float(total**2 / np.sum(eigvals**2)),
        # the tolerance keeps an exact share (e.g. 0.9 of 0.45 + 0.45) from rounding to one more PC
        n_components=min(int(np.searchsorted(cumulative, threshold - 1e-12)) + 1, len(ratios)),
        threshold=float(threshold),
        n_samples=x.shape[0],
        n_features=x.shape[1],
        rings=None if labels is None else _ring_overlaps(gram, labels),
    )


def pc_scores(features: np.ndarray, k: int = 10) -> np.ndarray:
    """The samples' coordinates on their top-k principal components: the point cloud a
    persistence diagram reads (``metrics.persistence``), as the samples file keeps it (``pcs``).

    From the centred Gram matrix (eigenpairs (s², u): PC j's scores are s_j u_j), so D = 65,536
    features cost what ``pca_spectrum`` does. Distances between the rows are those of the features
    projected on the top-k PC subspace (exact when the rank is <= k).

    Args:
        features: (N, D) or (N, ...) activations; flattened.
        k: how many components (fewer when the rank N - 1 or D is smaller).

    Returns: (N, min(k, rank)) float64 scores, largest-variance component first; each column's
        sign is fixed so that its largest-magnitude score is positive (deterministic).

    Raises: ValueError as ``pca_spectrum`` (N < 2, NaN / inf, no variance, k < 1).
    """
    x, _ = _validated(features, None, k, 0.9)
    gram = _centred_gram(x, x.mean(axis=0, dtype=np.float64))
    eigvals, vecs = np.linalg.eigh(gram)
    eigvals, vecs = np.clip(eigvals[::-1], 0.0, None), vecs[:, ::-1]
    m = min(k, _rank(eigvals, *x.shape))
    scores = vecs[:, :m] * np.sqrt(eigvals[:m])
    signs = np.sign(scores[np.abs(scores).argmax(axis=0), np.arange(m)])
    return scores * np.where(signs == 0, 1.0, signs)


def isotropic_pr(dim: int, n_samples: int) -> float:
    """The participation ratio expected of N samples of isotropic Gaussian noise in `dim` dims.

    The chance level of the participation ratio, and its finite-sample bias: the sample
    covariance of n = N - 1 degrees of freedom is Wishart, with E[tr W] = n d,
    E[(tr W)²] = n² d² + 2 n d and E[tr W²] = n d (n + d + 1), so the ratio of expectations is
    (n d + 2) / (n + d + 1): below d by a factor ~n / (n + d), and ~n for d >> n. Matches the
    mean over seeds to 0.1 % (tests/test_metrics_spectrum.py).

    Args:
        dim: d, the number of noise dimensions (the rank the noise can fill).
        n_samples: N, the samples it is estimated from.

    Returns: the expected participation ratio (a float in [1, min(d, N - 1)]).

    Raises: ValueError for dim < 1 or n_samples < 2.
    """
    if dim < 1 or n_samples < 2:
        raise ValueError(f"isotropic_pr needs dim >= 1 and n_samples >= 2; got {dim}, {n_samples}")
    n = n_samples - 1
    return (n * dim + 2) / (n + dim + 1)


# --------------------------------------------------------------------------- internals


def _validated(
    features: np.ndarray, labels: np.ndarray | None, k: int, threshold: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check shapes and values; return (N, D) features (a view where possible) and labels."""
    features = np.asarray(features)
    if features.ndim < 2 or len(features) < 2:
        raise ValueError(
            f"features must be (N, D) or (N, C, H, W) with N >= 2 samples; got shape {features.shape}"
        )
    x = features.reshape(len(features), -1)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.shape[1] < 1 or not np.isfinite(x).all():
        raise ValueError("features must be finite with at least one value a sample; found NaN, inf or none")
    if np.ptp(x, axis=0).max() == 0:
        raise ValueError("features have no variance: every sample is identical")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold!r}")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.float64)
        if labels.shape != (len(x), 2) or not np.isfinite(labels).all():
            raise ValueError(f"labels must be finite, shape ({len(x)}, 2) (x, y); got shape {labels.shape}")
    return x, labels


def _eigvals(x: np.ndarray, mean: np.ndarray, gram: np.ndarray | None) -> np.ndarray:
    """Eigenvalues of the scatter Xc^T Xc (the covariance times N - 1), descending, rank-truncated.

    From the D x D scatter when D <= N, else from the N x N Gram (same nonzero eigenvalues).
    """
    n, d = x.shape
    if d <= n:
        xc = x.astype(np.float64) - mean  # (N, D): small, as D <= N
        eigvals = np.linalg.eigvalsh(xc.T @ xc)  # (D,)
    else:
        eigvals = np.linalg.eigvalsh(gram)  # (N,)
    eigvals = np.clip(eigvals[::-1], 0.0, None)
    return eigvals[: _rank(eigvals, n, d)]


def _rank(eigvals: np.ndarray, n: int, d: int) -> int:
    """How many of the descending eigenvalues are real: centring leaves N - 1 directions, and
    below numpy's matrix_rank tolerance is round-off; at least 1."""
    return max(1, min(n - 1, d, int(np.sum(eigvals > eigvals[0] * max(n, d) * np.finfo(float).eps))))


def _centred_gram(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(N, N) float64 Xc Xc^T of the centred features, accumulated over blocks of features.

    Centring block by block keeps the cost at one float64 block (N x 2048) instead of a copy of
    X (e.g. 500 MB for N = 1000, D = 65,536); ``blk @ blk.T`` runs as a symmetric rank-k update.
    """
    gram = np.zeros((len(x), len(x)))
    for start in range(0, x.shape[1], _BLOCK):
        blk = x[:, start : start + _BLOCK].astype(np.float64)  # (N, <=2048), a fresh copy
        blk -= mean[start : start + _BLOCK]
        gram += blk @ blk.T
    return gram


def _ring_overlaps(gram: np.ndarray, labels: np.ndarray) -> RingOverlaps:
    """Fit each ring's plane and average the overlaps (module docstring)."""
    x_rings = _ring_planes(gram, labels[:, 1])  # (N, 2 G_x): samples sharing a y; x varies
    y_rings = _ring_planes(gram, labels[:, 0])  # (N, 2 G_y)
    return RingOverlaps(
        overlap_xy=_mean_overlap(gram, x_rings, y_rings, same=False),
        overlap_xx=_mean_overlap(gram, x_rings, x_rings, same=True),
        overlap_yy=_mean_overlap(gram, y_rings, y_rings, same=True),
        n_rings_x=x_rings.shape[1] // _RING_DIM,
        n_rings_y=y_rings.shape[1] // _RING_DIM,
    )


def _ring_planes(gram: np.ndarray, key: np.ndarray) -> np.ndarray:
    """The top-2 PC plane of each group of samples sharing one `key` value, as coefficients.

    Returns A (N, 2 G), two columns a group, such that Xc^T A holds each plane's orthonormal
    basis in feature space: a group's PCs are Xg^T u / s for the eigenpairs (s², u) of its
    group-centred Gram, read off the full Gram (no pass over the features; n_g x n_g eigh).
    """
    planes = []
    for value in np.unique(key):
        idx = np.flatnonzero(key == value)
        if len(idx) < MIN_RING_SAMPLES:
            continue
        block = gram[np.ix_(idx, idx)]  # (n_g, n_g)
        block = block - block.mean(axis=0) - block.mean(axis=1)[:, None] + block.mean()
        eigvals, vecs = np.linalg.eigh(block)  # ascending
        top, vecs = eigvals[::-1][:_RING_DIM], vecs[:, ::-1][:, :_RING_DIM]
        if top[-1] <= top[0] * 1e-9:  # a line or a point: no plane to fit
            continue
        coeff = np.zeros((len(gram), _RING_DIM))
        coeff[idx] = vecs / np.sqrt(top)  # u is orthogonal to 1, so the centring drops out
        planes.append(coeff)
    return np.hstack(planes) if planes else np.zeros((len(gram), 0))


def _mean_overlap(gram: np.ndarray, a: np.ndarray, b: np.ndarray, same: bool) -> float:
    """Mean ||P^T Q||_F² / 2 over pairs of planes (P of a, Q of b); distinct pairs if `same`."""
    n_a, n_b = a.shape[1] // _RING_DIM, b.shape[1] // _RING_DIM
    if n_a == 0 or n_b == 0 or (same and n_a < 2):
        return float("nan")
    cross = (a.T @ gram @ b) ** 2  # (2 G_a, 2 G_b) squared cosines between basis vectors
    # Summing each 2 x 2 block gives ||P_i^T Q_j||_F²: twice the overlap of plane i with plane j.
    blocks = cross.reshape(n_a, _RING_DIM, n_b, _RING_DIM).sum(axis=(1, 3)) / _RING_DIM
    if same:
        return float(blocks[~np.eye(n_a, dtype=bool)].mean())
    return float(blocks.mean())


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _check_keys(data: dict, cls: type, what: str) -> None:
    """Raise ValueError unless `data` is a dict with exactly the fields of `cls`."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a dict; got {type(data).__name__}")
    want = {f.name for f in fields(cls)}
    missing, unknown = sorted(want - set(data)), sorted(set(data) - want)
    if missing or unknown:
        raise ValueError(f"{what}: missing keys {missing}, unknown keys {unknown}; expected {sorted(want)}")
