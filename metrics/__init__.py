"""Metrics of a bump-drawing DDPM (paper App. A.3): pure functions on numpy arrays.

Imports only numpy, opencv, scikit-learn and umap-learn (the last two lazily, on first use of
`manifold_r2`), and GUDHI inside `metrics.persistence.h1_bars` only (the optional topology extra);
never torch, `model` or `labconsole`.
"""

from metrics.accuracy import Accuracy, BlobFractions, FailureModes, accuracy, blob_fractions, failure_modes
from metrics.labels import MIN_DEPTH, MIN_SNR, SMOOTHING, LabelPrediction, predict_centres
from metrics.manifold import MIN_SAMPLES, ManifoldR2, manifold_r2, warm_up
from metrics.periodic import predict_centres_periodic, wrapped_error
from metrics.phase import Phase, PhaseRule, label_eval, label_phase, phase_from_counts
from metrics.spectrum import MIN_RING_SAMPLES, RingOverlaps, Spectrum, isotropic_pr, pc_scores, pca_spectrum
from metrics.stripes import AXIS_MIN_DEPTH, AXIS_MIN_SNR, AxisReading, accuracy_per_axis, read_axes
from metrics.umap_cache import enable_umap_jit_cache

__all__ = [
    "AXIS_MIN_DEPTH",
    "AXIS_MIN_SNR",
    "MIN_DEPTH",
    "MIN_RING_SAMPLES",
    "MIN_SAMPLES",
    "MIN_SNR",
    "SMOOTHING",
    "Accuracy",
    "AxisReading",
    "BlobFractions",
    "FailureModes",
    "LabelPrediction",
    "ManifoldR2",
    "Phase",
    "PhaseRule",
    "RingOverlaps",
    "Spectrum",
    "accuracy",
    "accuracy_per_axis",
    "blob_fractions",
    "enable_umap_jit_cache",
    "failure_modes",
    "isotropic_pr",
    "pc_scores",
    "label_eval",
    "label_phase",
    "manifold_r2",
    "pca_spectrum",
    "phase_from_counts",
    "predict_centres",
    "predict_centres_periodic",
    "read_axes",
    "warm_up",
    "wrapped_error",
]
