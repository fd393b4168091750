"""The samples file of one eval, ``runs/<id>/samples/step-0006400.npz`` (DESIGN §4): its arrays,
its writer (the worker) and its reader (the console, the benches, the tests). No Textual, no torch.

Arrays, N = in-distribution samples then in-hole ones:
- ``images`` (N, H, W) float32 in [-1, 1], a dark bump on white (1 = white)
- ``labels`` (N, 2) float32 target centres (x, y); ``pred`` (N, 2) float32 predicted centres
- ``blobs`` (N,) int: blobs the label predictor found in each image
- ``embedding`` (N, 3) float32: UMAP-3D of layer 4 (may be absent or unusable for a tiny eval)
- ``ood`` (N,) bool: in-hole label
- ``pcs`` (N, k) float32: layer 4's top-k PC scores (``metrics.spectrum.pc_scores``, k <= 10) on the
  rows UMAP reads (one ID sample per distinct label), NaN on the other rows: the point cloud of the
  report's persistence diagram (``metrics.persistence``); absent in files written before it
- ``region`` (N,) int16: the held-out region of each sample, an index into its eval's ``regions``
  (in their order; -1 = in distribution or in no region); absent without held-out regions and in
  files written before it
- ``offset`` () float32, only when not 0: the canvas coordinate of the image's top-left corner
  (a frame of a larger latent canvas, ``model.render.frame_offset``; issue 16)
Canvas coordinates: x = column, y = row, pixel (i, j) centred at (j + .5, i + .5) (DESIGN §5); with
an offset, pixel (i, j) is centred at (offset + j + .5, offset + i + .5).
``pred`` is NaN on an axis read absent (stripes and sums of stripes, ``labconsole.readout``).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labconsole.rundir import samples_path, write_atomic

REQUIRED = ("images", "labels", "pred")  # a file without one of these cannot be shown


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Samples:
    """One eval's samples; read back, the arrays are views of the file's contents."""

    images: np.ndarray  # (N, H, W) float32 in [-1, 1]
    labels: np.ndarray  # (N, 2) target (x, y)
    pred: np.ndarray  # (N, 2) predicted (x, y)
    blobs: np.ndarray  # (N,) int
    embedding: np.ndarray | None = None  # (N, 3), or None when the eval had too few samples for UMAP
    ood: np.ndarray | None = None  # (N,) bool
    step: int = 0
    path: Path | None = None  # the file it was read from
    offset: float = 0.0  # canvas coordinate of the image's top-left corner (0: the image is the canvas)
    pcs: np.ndarray | None = None  # (N, k) layer 4's top PC scores, NaN off the rows they were fit on
    region: np.ndarray | None = None  # (N,) index into the eval's held-out regions, -1 for none

    def __len__(self) -> int:
        return len(self.images)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays the file holds, by name (absent ones left out)."""
        names = ("images", "labels", "pred", "blobs", "embedding", "ood", "pcs", "region")
        arrays = {k: getattr(self, k) for k in names if getattr(self, k) is not None}
        if self.offset:
            arrays["offset"] = np.asarray(self.offset, dtype=np.float32)
        return arrays


def write_samples(run_dir: str | Path, step: int, samples: Samples) -> Path:
    """Write ``samples`` as ``run_dir/samples/step-XXXXXXX.npz`` (compressed), atomically: a viewer
    reads the old file or the new one, never half of one. Returns the path written."""
    path = samples_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **samples.arrays())
    write_atomic(path, buf.getvalue())
    return path


def read_samples(path: str | Path, step: int = 0) -> Samples:
    """Read one eval's ``.npz`` (``step`` is recorded with it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a readable npz (empty, truncated, not a zip: what np.load raises for those,
            turned into one error every reader catches), or a required array is missing or has the
            wrong shape.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (EOFError, ValueError, zipfile.BadZipFile) as exc:  # ValueError: bytes np.load takes for a pickle
        raise ValueError(f"{path}: not a readable samples file ({exc or type(exc).__name__})") from exc
    for key in REQUIRED:
        if key not in arrays:
            raise ValueError(f"{path}: no '{key}' array; has: {', '.join(sorted(arrays))}")
    images = arrays["images"]
    if images.ndim != 3:
        raise ValueError(f"{path}: images must be (N, H, W), got shape {images.shape}")
    n = len(images)
    for key in ("labels", "pred"):
        if arrays[key].shape != (n, 2):
            raise ValueError(f"{path}: {key} must be ({n}, 2) for {n} images, got shape {arrays[key].shape}")
    embedding = arrays.get("embedding")
    if embedding is not None and (embedding.ndim != 2 or len(embedding) != n or embedding.shape[1] < 2):
        embedding = None  # an eval too small for UMAP: show the bumps, skip the manifold
    pcs, region = arrays.get("pcs"), arrays.get("region")
    if pcs is not None and (pcs.ndim != 2 or len(pcs) != n):
        pcs = None  # unreadable: the report draws no persistence diagram for this eval
    if region is not None and region.shape != (n,):
        region = None  # unreadable: no per-region samples figure for this eval
    return Samples(images, arrays["labels"], arrays["pred"], arrays.get("blobs", np.ones(n, dtype=int)),
                   embedding, arrays.get("ood"), step, Path(path), float(arrays.get("offset", 0.0)), pcs, region)
