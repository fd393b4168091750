"""The generated samples of one eval, as the console shows them (no Textual).

An eval writes ``runs/<id>/samples/step-0006400.npz`` (``Eval.samples_path``, relative to the run
dir) with ``images`` (N, 32, 32) in [-1, 1] (dark bump on white, 1 = white), ``labels`` (N, 2) target
centres, ``pred`` (N, 2) predicted centres, ``blobs`` (N,), ``embedding`` (N, 3) UMAP-3D of layer 4
and ``ood`` (N,) in-hole flags. Canvas coordinates: x = column, y = row, pixel (i, j) centred at
(j + .5, i + .5) (DESIGN §5).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class Samples:
    """One eval's samples; arrays are read-only views of the file's contents."""

    step: int
    path: Path
    images: np.ndarray  # (N, H, W) float32 in [-1, 1]
    labels: np.ndarray  # (N, 2) target (x, y)
    pred: np.ndarray  # (N, 2) predicted (x, y)
    blobs: np.ndarray  # (N,) int
    embedding: np.ndarray | None = None  # (N, 3) or None when the eval had too few samples
    ood: np.ndarray | None = None  # (N,) bool

    def __len__(self) -> int:
        return len(self.images)


def load_samples(path: Path, step: int = 0) -> Samples:
    """Read one eval's ``.npz``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a required array is missing or has the wrong shape.
    """
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    for key in ("images", "labels", "pred"):
        if key not in arrays:
            raise ValueError(f"{path}: no '{key}' array; has: {', '.join(sorted(arrays))}")
    images = arrays["images"]
    if images.ndim != 3:
        raise ValueError(f"{path}: images must be (N, H, W), got shape {images.shape}")
    n = len(images)
    blobs = arrays.get("blobs", np.ones(n, dtype=int))
    embedding = arrays.get("embedding")
    if embedding is not None and (embedding.ndim != 2 or len(embedding) != n or embedding.shape[1] < 2):
        embedding = None  # an eval too small for UMAP: show the bumps, skip the manifold
    return Samples(step, Path(path), images, arrays["labels"], arrays["pred"], blobs, embedding, arrays.get("ood"))
