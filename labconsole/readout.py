"""How an eval reads its samples, by data kind (paper App. A.3; follow-up, Liang et al. 2024, Figs. 1-4).

``Readout`` picks the reader once per run from the data config and scores what it reads:

- **bump** (the paper's config: kind bump, canvas = size, not periodic): ``metrics.predict_centres``
  and ``metrics.accuracy``, exactly as before issue 16; the failure modes are its blob counts.
- **periodic** (kind bump on a torus, canvas = size): ``metrics.predict_centres_periodic``, scored by
  ``metrics.accuracy_per_axis`` with the wrapped distance, period = the canvas side.
- **axes** (kind sos or stripe, or a canvas larger than the frame): ``metrics.read_axes`` per axis,
  with its own calibrated contrast floor (``AXIS_MIN_DEPTH`` / ``AXIS_MIN_SNR``, not the bump
  reader's ``eval.min_depth`` / ``eval.min_snr``); the positions shifted from frame to canvas
  coordinates by ``frame_offset``; scored by ``accuracy_per_axis`` with
  ``expected = in_frame(labels)``: an axis whose label lies outside the frame is correct when it
  reads absent (follow-up: "1D" and "0D" images; for kind bump both axes are expected only when
  both lie in the frame, as only then is the bump drawn whole). On a canvas larger than the frame an axis read
  outside the frame (a stripe's tail cut by the edge, which ``read_axes`` places beyond it) counts
  as read absent (ours: the docstring of ``metrics.stripes`` leaves that split to the caller).
  **The edge band** (kind sos on a larger canvas, ours): a stripe whose centre lies on the frame's
  edge or outside it by at most ``tol`` still shows in the edge column (a stripe at 38 half, at 39
  as a 0.32-deep tail of the last column), and the half-open frame ([off, off + size)) would call
  the one at 6 in and the one at 38 out although their images mirror each other. Such an axis is
  scored either way: read absent, or read within ``tol`` of the edge (the label clamped to the
  frame). Without it a truth image of these labels reads wrong 28 % of the time on stripes-mini's
  1D labels (3 of its 12 margin values per axis); with it the ceiling is 1. Kind stripe draws no
  tail (its 1D images gate each axis by the frame), and kind bump on a larger canvas has no preset:
  neither gets the band.
  Periodic configs of this reader score with the wrapped distance too; a stripe split by the edge
  of a torus may read as two peaks (a known limit, ours).

Failure modes of the axes reader (ours; the paper's are blob counts of 2-D bumps), per sample:
    several  an axis reads 2+ peaks, or an axis whose label is off the frame reads present
             (an extra mark: failure mode (iii));
    one      every axis whose label is in the frame reads exactly one peak and every other axis
             reads absent (for a label off the frame on both axes: a blank read as blank);
    none     otherwise: an axis whose label is in the frame reads absent (nothing read at all is
             the common case: failure mode (i)).
They are coded 0 / 1 / 2 like blob counts (``Reading.marks``), so ``metrics.failure_modes`` and the
phase rule (``metrics.label_eval``) apply unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metrics import Accuracy, accuracy, accuracy_per_axis, predict_centres, predict_centres_periodic, read_axes
from model.config import DataConfig
from model.render import canvas_side, frame_offset, in_frame, render

READERS = ("bump", "periodic", "axes")


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value
class Reading:
    """What the reader saw in N images.

    positions: (N, 2) float64 (x, y) in canvas coordinates; NaN where an axis reads absent.
    marks:     (N,) int64: the failure-mode code of each sample, 0 none / 1 one / 2+ several
               (the bump readers' blob counts; the axes reader's rule in the module docstring).
    """

    positions: np.ndarray
    marks: np.ndarray

    def take(self, rows: np.ndarray) -> Reading:
        """The reading of a subset of the samples (a bool mask or indices)."""
        return Reading(self.positions[rows], self.marks[rows])


def reader_for(cfg: DataConfig) -> str:
    """Which reader a data config needs: one of READERS (module docstring)."""
    if cfg.kind != "bump" or canvas_side(cfg) > cfg.size:
        return "axes"
    return "periodic" if cfg.periodic else "bump"


class Readout:
    """Reads images of a data config's kind and scores them against labels (module docstring).

    Args:
        cfg: the run's data config.
        tol: eval.tolerance, pixels.
        min_depth, min_snr: the bump readers' contrast floor (eval.min_depth / eval.min_snr).
    """

    def __init__(self, cfg: DataConfig, tol: float, *, min_depth: float, min_snr: float):
        self.cfg, self.tol = cfg, tol
        self.floor = dict(min_depth=min_depth, min_snr=min_snr)
        self.kind = reader_for(cfg)
        self.period = float(canvas_side(cfg)) if cfg.periodic else None
        self.offset = frame_offset(cfg)

    def read(self, images: np.ndarray, labels: np.ndarray) -> Reading:
        """Read (N, H, W) model-scale images whose labels are (N, 2): positions and failure codes."""
        if self.kind == "bump":
            pred = predict_centres(images, **self.floor)
            return Reading(np.asarray(pred.centres, dtype=np.float64), np.asarray(pred.blobs, dtype=np.int64))
        if self.kind == "periodic":
            pred = predict_centres_periodic(images, **self.floor)
            return Reading(np.asarray(pred.centres, dtype=np.float64), np.asarray(pred.blobs, dtype=np.int64))
        return self._read_axes(images, labels)

    def _read_axes(self, images: np.ndarray, labels: np.ndarray) -> Reading:
        """read_axes on the frame, positions to canvas coordinates, the failure code per sample."""
        axes = read_axes(images)
        positions = axes.positions + self.offset  # frame -> canvas coordinates
        present = axes.present.copy()
        if canvas_side(self.cfg) > self.cfg.size:  # read beyond the frame's edge: read as off the frame
            present &= in_frame(np.nan_to_num(positions, nan=-1.0), self.cfg)
        positions = np.where(present, positions, np.nan)
        expected, edge = self.expected(labels), self.edge(labels)
        several = (axes.peaks >= 2).any(axis=1) | (present & ~expected & ~edge).any(axis=1)
        single = present & (axes.peaks == 1)
        one = (np.where(expected, single, ~present) | (edge & (single | ~present))).all(axis=1)
        marks = np.where(several, 2, np.where(one, 1, 0)).astype(np.int64)
        return Reading(positions, marks)

    def expected(self, labels: np.ndarray) -> np.ndarray:
        """(N, 2) bool: which axes of each label should show (all of them but for the axes reader
        on a canvas larger than the frame, where a coordinate off the frame shows nothing)."""
        if self.kind != "axes":
            return np.ones(np.shape(labels), dtype=bool)
        inside = np.asarray(in_frame(np.asarray(labels), self.cfg))  # (N, 2)
        if self.cfg.kind == "bump":  # a 2-D bump shows (on both axes) only when both coordinates do
            inside = np.repeat(inside.all(axis=1, keepdims=True), 2, axis=1)
        return inside

    def edge(self, labels: np.ndarray) -> np.ndarray:
        """(N, 2) bool: the axes in the edge band (module docstring), scored either way."""
        labels = np.asarray(labels, dtype=np.float64)
        if self.kind != "axes" or self.cfg.kind != "sos" or canvas_side(self.cfg) <= self.cfg.size:
            return np.zeros(labels.shape, dtype=bool)
        low, high = self.offset, self.offset + self.cfg.size
        return ((labels >= low - self.tol) & (labels <= low)) | ((labels >= high) & (labels <= high + self.tol))

    def score(self, reading: Reading, labels: np.ndarray) -> Accuracy:
        """Accuracy of a reading against its (N, 2) labels within ``tol`` (per kind: module docstring)."""
        if self.kind == "bump":
            return accuracy(reading.positions, labels, self.tol)
        edge = self.edge(labels)
        # an edge axis read present is scored against the edge it shows at
        target = np.where(edge, np.clip(labels, self.offset, self.offset + self.cfg.size), labels)
        return accuracy_per_axis(reading.positions, target, self.expected(labels), tol=self.tol,
                                 period=self.period, either=edge)

    def ceiling(self, labels: np.ndarray) -> Accuracy:
        """The reader's accuracy on ground-truth images of ``labels`` (``render``): the best an eval
        can read. For the paper's config the images equal ``bump_images`` bit for bit."""
        truth = render(torch.from_numpy(np.asarray(labels, dtype=np.float32)), self.cfg).numpy() * 2 - 1
        return self.score(self.read(truth, labels), labels)
