"""What `metrics.pca_spectrum` costs: N samples x D features, with 1 BLAS thread and with all.

    .venv/bin/python bench/spectrum.py            # N 100, 500, 1000 x D 4096, 65,536; 3 rounds (~3 min on 2 loaded cores)
    .venv/bin/python bench/spectrum.py --quick    # N 100, 500 x D 4096; 1 round
    .venv/bin/python bench/spectrum.py --save now.json --compare before.json

Features are float32 Gaussian noise (the cost does not depend on the values); labels are N
distinct points of a 32 x 32 grid (~N/32 samples a ring). Per size, three contenders timed in
alternation (bench/common.py), each summarised by its median: the spectrum alone with numpy's
BLAS limited to 1 thread (threadpoolctl), the same with BLAS's default threads, and the spectrum
with labels (the ring overlaps) on 1 thread. On a machine busy with training, BLAS's default
threads wait on each other: compare the first two columns before choosing for a worker.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

from bench.common import Results, alternate, median, parser, spread, table  # noqa: E402
from metrics import pca_spectrum  # noqa: E402

GRID = 32


def data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float32 noise and (N, 2) distinct grid labels."""
    rng = np.random.default_rng(seed)
    cells = rng.choice(GRID * GRID, size=n, replace=False)
    return rng.standard_normal((n, d), dtype=np.float32), np.column_stack([cells % GRID, cells // GRID])


def timer(x: np.ndarray, labels: np.ndarray | None, threads: int | None):
    """A contender: one timed call with BLAS limited to `threads` (None: the default)."""

    def call() -> float:
        with threadpool_limits(limits=threads, user_api="blas"):
            start = time.perf_counter()
            pca_spectrum(x, labels)
            return time.perf_counter() - start

    return call


def main() -> None:
    args = parser(__doc__).parse_args()
    ns, ds = ((100, 500), (4096,)) if args.quick else ((100, 500, 1000), (4096, 65536))
    rounds = 1 if args.quick else 3
    res = Results("spectrum", args.quick, args.threads)
    blas = max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)
    rows = []
    for d in ds:
        for n in ns:
            x, labels = data(n, d)
            times = alternate({"1 thread": timer(x, None, 1), f"{blas} threads": timer(x, None, None),
                               "labels, 1 thread": timer(x, labels, 1)}, rounds)
            for name, values in times.items():
                res.add(f"N={n} D={d} | {name}", median(values))
            rows.append([n, d, f"{x.nbytes / 2**20:.0f}", *(median(v) for v in times.values()),
                         " / ".join(spread(v) for v in times.values())])
    table(f"pca_spectrum seconds (median of {rounds}); BLAS default: {blas} threads",
          ["N", "D", "X MB", "1 BLAS thread", f"{blas} BLAS threads", "+ labels, 1 thread", "spread (min..max)"],
          rows)
    n, d = ns[-1], ds[-1]
    res.finish(args, f"N={n}, D={d}: {res.figures[f'N={n} D={d} | 1 thread']:.2f} s on 1 BLAS thread, "
                     f"{res.figures[f'N={n} D={d} | {blas} threads']:.2f} s on {blas}; with labels "
                     f"{res.figures[f'N={n} D={d} | labels, 1 thread']:.2f} s")


if __name__ == "__main__":
    main()
