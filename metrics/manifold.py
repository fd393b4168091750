"""How well a 3-D embedding of layer-4 activations encodes the bump position (paper App. A.2-A.3).

Paper: reduce the internal representation of the sampled images to 3-D with UMAP, then fit one
linear regression for x and one for y on the embedding; the R² of each (and their mean) measure
how ordered the learned 2-D manifold is. The R² is in-sample, as in the paper.

Beside it (ours), because a high R² alone proves little here (layer 4 carries the injected label
embedding even in an untrained model, DESIGN §5):
- the same regressions on PCA-3D (linear, deterministic: is the order there without UMAP?);
- the chance control: the UMAP embedding regressed on randomly permuted labels. In-sample R²
  with 3 regressors has expectation ~3 / (N - 1) under no relation (0.006 at N = 500).
- the UMAP seed alone moves R² by 0.02-0.04 (measured on layer 4): `n_seeds` fits UMAP with seeds
  seed, seed + 1, ... and reports the median R² with its range; default 1 fit.

Duplicate labels: samples generated for the same label give identical or near-identical feature
rows, and UMAP's kNN graph then links each row to its copies first. With a handful of copies
per label the graph falls apart into small disconnected cliques, each placed independently, and
R² no longer measures the representation: a perfectly linear one (features = a linear map of
(x, y) + 1 % noise, N = 300; PCA R² 1.00 either way) scores UMAP R² 0.29-0.33 with labels drawn
with replacement from an 8 x 8 grid and 0.92-0.93 with distinct labels from a 32 x 32 grid (UMAP
seeds 0-2; tests/test_metrics_manifold.py). Evaluate on distinct labels where the grid allows.

Cost of a fresh process (`.venv/bin/python bench/umap_cache.py`; umap-learn 0.5.12, numba
0.68.1, 500 x 64 float32 features, the 2-core dev box), seconds:
                                          import umap+metrics   first manifold_r2   a later call
    umap's default, every process               1.0                 6.6               0.5
    with enable_umap_jit_cache, 1st process     1.0                 6.6 (compiles)    0.5
    with it, every later process                1.0                 0.64 (loads)      0.5
  The same under load ~6 on the 2 cores: 11.9-19.9 s first call without the cache, 1.6 s
  with it (its later call: 1.5 s). A brand-new venv also compiles pynndescent once (cached by
  pynndescent itself): ~20 s more on its first import. `import metrics` alone takes ~0.1 s:
  umap and scikit-learn are imported on the first `manifold_r2` call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics.umap_cache import enable_umap_jit_cache, keep_numba_off_openmp

__all__ = ["MIN_SAMPLES", "ManifoldR2", "manifold_r2", "warm_up"]

MIN_SAMPLES = 10  # below this a 3-regressor fit (and a kNN graph) says nothing


@dataclass(frozen=True, eq=False)  # eq=False: the embedding array has no single truth value
class ManifoldR2:
    """R² of linear fits of the labels on 3-D embeddings of the features.

    r2_x, r2_y, r2_mean:          UMAP-3D embedding (paper); with several fits, the median of
                                  each over the fits (so r2_mean need not be (r2_x + r2_y) / 2).
    pca_r2_x, pca_r2_y, pca_r2_mean: PCA-3D embedding (ours, a linear reference).
    shuffled_r2_mean:             UMAP-3D against permuted labels (ours, the chance control),
                                  on the median fit's embedding.
    embedding:                    (N, 3) float32 UMAP embedding of the median fit (the lower
                                  middle one for an even count), read-only.
    n_neighbors:                  the UMAP n_neighbors actually used (clamped to N - 1).
    r2_means:                     each fit's mean R², in seed order (seed, seed + 1, ...).
    r2_mean_min, r2_mean_max:     their range: how much the UMAP seed moves R².
    An R² is NaN for a label axis with no variance (R² is undefined there).
    """

    r2_x: float
    r2_y: float
    r2_mean: float
    pca_r2_x: float
    pca_r2_y: float
    pca_r2_mean: float
    shuffled_r2_mean: float
    embedding: np.ndarray
    n_neighbors: int
    r2_means: tuple[float, ...]
    r2_mean_min: float
    r2_mean_max: float


def manifold_r2(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    seed: int = 0,
    n_seeds: int = 1,
) -> ManifoldR2:
    """UMAP the features to 3-D and score linear fits of x and y on it (paper App. A.3).

    Args:
        features: (N, D) or (N, C, H, W) (any (N, ...)) activations, e.g. layer 4; flattened.
        labels: (N, 2) the (x, y) each sample was generated for; keep them distinct (repeats
            break UMAP's kNN graph into cliques and pull R² down: module docstring).
        n_neighbors: UMAP n_neighbors (>= 2); clamped to N - 1 for small N.
        min_dist: UMAP min_dist.
        seed: seeds UMAP (which then runs single-threaded), PCA and the label permutation.
        n_seeds: UMAP fits with seeds seed, seed + 1, ...; R² is their median (default: one fit).

    Returns: ManifoldR2 (see its docstring); deterministic for a seed on a given machine.

    Raises:
        ValueError: N < MIN_SAMPLES or mismatched, labels not (N, 2), < 3 features a sample,
            NaN / inf anywhere, n_neighbors < 2 or n_seeds < 1.
    """
    x_feat, labels = _validated(features, labels, n_neighbors, n_seeds)
    n_neighbors = min(n_neighbors, len(x_feat) - 1)
    fits = [_umap_fit(x_feat, labels, n_neighbors, min_dist, seed + k) for k in range(n_seeds)]
    means = np.array([(r2_x + r2_y) / 2 for _, r2_x, r2_y in fits])
    embedding = fits[int(np.argsort(means)[(n_seeds - 1) // 2])][0]  # the (lower) median fit's
    pca = _pca_3d(x_feat, seed)
    pca_x, pca_y = (_r2(pca, labels[:, k]) for k in (0, 1))
    shuffled = labels[np.random.default_rng(seed).permutation(len(labels))]  # rows: keeps (x, y) pairs
    shuffled_r2 = (_r2(embedding, shuffled[:, 0]) + _r2(embedding, shuffled[:, 1])) / 2
    embedding.setflags(write=False)
    return ManifoldR2(
        r2_x=float(np.median([f[1] for f in fits])),
        r2_y=float(np.median([f[2] for f in fits])),
        r2_mean=float(np.median(means)),
        pca_r2_x=pca_x,
        pca_r2_y=pca_y,
        pca_r2_mean=(pca_x + pca_y) / 2,
        shuffled_r2_mean=shuffled_r2,
        embedding=embedding,
        n_neighbors=n_neighbors,
        r2_means=tuple(float(m) for m in means),
        r2_mean_min=float(means.min()),
        r2_mean_max=float(means.max()),
    )


def warm_up() -> None:
    """Load (or, the first time on a machine, compile and save) UMAP's numba code now.

    For a worker to call at startup, so that its first evaluation is not the one that pays:
    umap's ~1 s import plus ~0.2 s when the cache is warm; ~7 s once per machine and
    umap/numba version otherwise.
    """
    rng = np.random.default_rng(0)
    manifold_r2(rng.normal(size=(64, 8)).astype(np.float32), rng.uniform(0, 32, size=(64, 2)))


def _validated(
    features: np.ndarray, labels: np.ndarray, n_neighbors: int, n_seeds: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Check shapes and values; return (N, D) float32 features and (N, 2) float64 labels."""
    features = np.asarray(features)
    labels = np.asarray(labels, dtype=np.float64)
    if features.ndim < 2:
        raise ValueError(f"features must be (N, D) or (N, C, H, W); got shape {features.shape}")
    x_feat = features.reshape(len(features), -1).astype(np.float32)  # UMAP works in float32
    if labels.ndim != 2 or labels.shape[1] != 2 or len(labels) != len(x_feat):
        raise ValueError(f"labels must be ({len(x_feat)}, 2) (x, y); got shape {labels.shape}")
    if len(x_feat) < MIN_SAMPLES:
        raise ValueError(f"manifold_r2 needs at least {MIN_SAMPLES} samples; got {len(x_feat)}")
    if x_feat.shape[1] < 3:
        raise ValueError(
            f"features need at least 3 values per sample for a 3-D embedding; got {x_feat.shape[1]}"
        )
    if not (np.isfinite(x_feat).all() and np.isfinite(labels).all()):
        raise ValueError("features and labels must be finite; found NaN or inf")
    if n_neighbors < 2:
        raise ValueError(f"n_neighbors must be >= 2; got {n_neighbors}")
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, (int, np.integer)) or n_seeds < 1:
        raise ValueError(f"n_seeds must be an integer >= 1; got {n_seeds!r}")
    return x_feat, labels


def _umap_fit(
    x_feat: np.ndarray, labels: np.ndarray, n_neighbors: int, min_dist: float, seed: int
) -> tuple[np.ndarray, float, float]:
    """One seeded UMAP-3D fit -> (embedding, R² of x, R² of y)."""
    embedding = _umap_3d(x_feat, n_neighbors, min_dist, seed)
    return embedding, _r2(embedding, labels[:, 0]), _r2(embedding, labels[:, 1])


def _umap_3d(x_feat: np.ndarray, n_neighbors: int, min_dist: float, seed: int) -> np.ndarray:
    """(N, D) -> (N, 3) float32 seeded UMAP embedding."""
    # Imported here: umap (numba, pynndescent) costs ~1 s to import, and most users of
    # `metrics` (labels, accuracy, phase; the TUI, batch output) never need it.
    import umap

    enable_umap_jit_cache()  # before the first fit, so a fresh process loads instead of compiling
    keep_numba_off_openmp()  # else numba's OpenMP team spins beside torch's and starves training
    reducer = umap.UMAP(
        n_components=3,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        random_state=seed,
        n_jobs=1,  # what a seed forces anyway; saying so silences umap's warning
    )
    return np.asarray(reducer.fit_transform(x_feat), dtype=np.float32)


def _pca_3d(x_feat: np.ndarray, seed: int) -> np.ndarray:
    """(N, D) -> (N, 3) PCA projection."""
    from sklearn.decomposition import PCA  # lazy for the same reason as umap (~0.6 s)

    return PCA(n_components=3, random_state=seed).fit_transform(x_feat)


def _r2(embedding: np.ndarray, target: np.ndarray) -> float:
    """In-sample R² of the least-squares fit target ~ embedding (+ intercept); NaN if constant."""
    from sklearn.linear_model import LinearRegression

    if np.ptp(target) == 0:
        return float("nan")  # sklearn would report 1.0 for a perfectly "predicted" constant
    return float(LinearRegression().fit(embedding, target).score(embedding, target))
