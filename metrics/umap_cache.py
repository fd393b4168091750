"""Keep umap-learn's numba compilations across processes.

Why: pynndescent marks its numba functions `cache=True`, but umap-learn (0.5.x) does not mark
the ones on our path (exact kNN for N < 4096, fuzzy simplicial set, layout epochs), so every
fresh process recompiles them: ~6 s of a ~7 s first `manifold_r2` call on 500 x 64 data, paid
again by every worker and every test process. `enable_umap_jit_cache()` turns numba's own
on-disk cache on for those functions (what `cache=True` would have done); the code that runs is
unchanged, only where its machine code comes from.

Where the cache goes is numba's rule, no configuration of ours: NUMBA_CACHE_DIR if the user
set it; else `__pycache__` beside umap's source if writable; else numba's user-wide cache
(~/.cache/numba). Entries are keyed by numba version, source file stamp, signature and CPU, so
a stale or foreign entry is recompiled, never loaded; concurrent writers are safe (numba
writes to a temp name, then renames).
"""

from __future__ import annotations

import importlib

__all__ = ["UMAP_JIT_FUNCTIONS", "enable_umap_jit_cache", "keep_numba_off_openmp"]

# (module, attribute) of the numba dispatchers umap calls from Python on our path (euclidean
# metric, exact kNN, seeded layout). The jitted helpers they call are compiled into them, so
# caching these entry points (plus the parallel layout variant) covers the whole compile.
UMAP_JIT_FUNCTIONS: tuple[tuple[str, str], ...] = (
    ("umap.utils", "fast_knn_indices"),
    ("umap.umap_", "smooth_knn_dist"),
    ("umap.umap_", "compute_membership_strengths"),
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch"),
    ("umap.layouts", "_nb_optimize_layout_euclidean_single_epoch_parallel"),
)


def enable_umap_jit_cache() -> tuple[str, ...]:
    """Turn on numba's on-disk cache for umap-learn's uncached hot functions. Idempotent.

    A process-wide change to umap's dispatchers, with no effect on results. Call it before the
    first UMAP fit of a process (`manifold_r2` does); a function already compiled in this
    process keeps its in-memory code and saves new signatures only.

    Returns:
        The "module.name" of each function whose cache is now on. A name from
        UMAP_JIT_FUNCTIONS that this umap version lacks is left out: that costs compile time,
        never correctness (tests pin the list against the installed umap).
    """
    enabled = []
    for module_name, attr in UMAP_JIT_FUNCTIONS:
        dispatcher = getattr(importlib.import_module(module_name), attr, None)
        if not hasattr(dispatcher, "enable_caching"):  # renamed, or no longer jitted
            continue
        # What @njit(cache=True) does at decoration time; redoing it only rebuilds a small
        # locator object (tens of microseconds), the cache on disk is untouched.
        dispatcher.enable_caching()
        enabled.append(f"{module_name}.{attr}")
    return tuple(enabled)


def keep_numba_off_openmp() -> str:
    """Run numba's parallel code (umap, pynndescent) on its own ``workqueue`` threads. Idempotent.

    Why: numba's default threading layer picks OpenMP, and in a process that also trains with
    torch it binds to torch's libgomp. Its worker team then spins on libgomp barriers for the rest
    of the process and steals a core from training: measured on the 2-core dev box, a w16 UNet
    training step at 1 torch thread ran at 108 images/s before a UMAP fit and 4 after; with the
    workqueue layer, 108 after. UMAP's seeded fit is single-threaded, so it costs nothing here.

    Must run before numba launches its first parallel region in this process (``manifold_r2``
    calls it); afterwards the layer is fixed and this is a no-op. Returns the layer in effect.
    """
    import numba

    if numba.config.THREADING_LAYER in ("default", "omp"):
        numba.config.THREADING_LAYER = "workqueue"
    return numba.config.THREADING_LAYER
