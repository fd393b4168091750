"""Metrics of a bump-drawing DDPM (paper App. A.3): pure functions on numpy arrays.

Imports only numpy, opencv, scikit-learn and umap-learn (the last two lazily, on first use of
`manifold_r2`); never torch, `model` or `labconsole`.
"""

from metrics.accuracy import Accuracy, BlobFractions, accuracy, blob_fractions
from metrics.labels import LabelPrediction, predict_centres
from metrics.manifold import MIN_SAMPLES, ManifoldR2, manifold_r2, warm_up
from metrics.phase import Phase, PhaseRule, label_phase
from metrics.umap_cache import enable_umap_jit_cache

__all__ = [
    "MIN_SAMPLES",
    "Accuracy",
    "BlobFractions",
    "LabelPrediction",
    "ManifoldR2",
    "Phase",
    "PhaseRule",
    "accuracy",
    "blob_fractions",
    "enable_umap_jit_cache",
    "label_phase",
    "manifold_r2",
    "predict_centres",
    "warm_up",
]
