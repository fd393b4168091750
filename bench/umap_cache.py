"""What a fresh process pays for its first `manifold_r2` (500 x 64), with and without the numba cache.

    .venv/bin/python bench/umap_cache.py                  # ~30 s on a 2-core box
    .venv/bin/python bench/umap_cache.py --fresh-install  # also a cold pynndescent (slower)

Each scenario runs two fresh processes in a row that share one new cache directory, and
prints: import time (umap + metrics), the first call (compile or cache load + fit) and a
second call in the same process (the steady state).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import os, sys, time
    mode, cache_dir = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    import umap
    import numba
    if mode == "ours":  # pynndescent's caches stay where they are; ours go to cache_dir
        os.environ["NUMBA_CACHE_DIR"] = cache_dir
        numba.config.reload_config()
    import numpy as np
    import metrics.manifold
    if mode == "off":  # umap's default: no on-disk cache for its own functions
        metrics.manifold.enable_umap_jit_cache = lambda: ()
    imported = time.perf_counter()
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 64)).astype(np.float32)
    labels = rng.uniform(0, 32, size=(500, 2))
    metrics.manifold.manifold_r2(features, labels)
    first = time.perf_counter()
    metrics.manifold.manifold_r2(features, labels)
    second = time.perf_counter()
    print(imported - start, first - imported, second - first)
    """
)

SCENARIOS = {
    "off": "umap default (no cache for umap's own jit code)",
    "ours": "enable_umap_jit_cache, new cache dir",
    "fresh-install": "NUMBA_CACHE_DIR new for everything (pynndescent too)",
}


def run(mode: str, cache_dir: str) -> tuple[float, float, float]:
    env_mode = "ours" if mode == "fresh-install" else mode
    env = None
    if mode == "fresh-install":  # the variable is set before anything imports numba
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    command = [sys.executable, "-c", CHILD, env_mode, cache_dir]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    return tuple(float(v) for v in done.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-install", action="store_true", help="also time a fully cold numba cache")
    args = parser.parse_args()
    modes = ["off", "ours"] + (["fresh-install"] if args.fresh_install else [])
    print(f"{'scenario':56} {'process':>7} {'import s':>9} {'1st call s':>10} {'2nd call s':>10}")
    for mode in modes:
        with tempfile.TemporaryDirectory() as cache_dir:
            for process in (1, 2):
                imported, first, second = run(mode, cache_dir)
                print(f"{SCENARIOS[mode]:56} {process:>7} {imported:9.2f} {first:10.2f} {second:10.2f}")


if __name__ == "__main__":
    main()
