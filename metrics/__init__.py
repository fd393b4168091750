"""Metrics of a bump-drawing DDPM (paper App. A.3): pure functions on numpy arrays.

Imports only numpy, opencv, scikit-learn and umap-learn (the last two lazily, on first use of
`manifold_r2`); never torch, `model` or `labconsole`.
"""

from metrics.accuracy import Accuracy, BlobFractions, FailureModes, accuracy, blob_fractions, failure_modes
from metrics.labels import MIN_DEPTH, MIN_SNR, SMOOTHING, LabelPrediction, predict_centres
from metrics.manifold import MIN_SAMPLES, ManifoldR2, manifold_r2, warm_up
from metrics.phase import Phase, PhaseRule, label_eval, label_phase, phase_from_counts
from metrics.umap_cache import enable_umap_jit_cache

__all__ = [
    "MIN_DEPTH",
    "MIN_SAMPLES",
    "MIN_SNR",
    "SMOOTHING",
    "Accuracy",
    "BlobFractions",
    "FailureModes",
    "LabelPrediction",
    "ManifoldR2",
    "Phase",
    "PhaseRule",
    "accuracy",
    "blob_fractions",
    "enable_umap_jit_cache",
    "failure_modes",
    "label_eval",
    "label_phase",
    "manifold_r2",
    "phase_from_counts",
    "predict_centres",
    "warm_up",
]
