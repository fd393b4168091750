"""What an H1 persistence diagram costs (`metrics.persistence.h1_bars`, GUDHI) against the points it
reads, and what the PC scores it reads cost (`metrics.spectrum.pc_scores`).

    .venv/bin/python bench/persistence.py            # N 50, 100, 150, 200, 300; 3 rounds (~1 min)
    .venv/bin/python bench/persistence.py --quick    # N 50, 100; 1 round
    .venv/bin/python bench/persistence.py --save now.json --compare before.json

The cloud: N uniform points on the 4D Clifford torus placed isometrically in 10 dims (a torus's diagram: two
long bars, the rest short), all points kept (``max_points = N``). The Rips complex runs to the
diameter, so its triangles grow as N³: the report subsamples to 150 (``h1_bars``' default). The PC
scores: N samples x D = 4,096 features (the w16 UNet's layer 4 is 64 x 4 x 4 = 1,024; the paper UNet's
256 x 4 x 4 = 4,096), k = 10, one BLAS
thread. Each size's median over the rounds; the table also prints the loops read (2 expected).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from threadpoolctl import threadpool_limits  # noqa: E402

from bench.common import Results, median, parser, spread, table  # noqa: E402
from metrics import pc_scores  # noqa: E402
from metrics.persistence import h1_bars  # noqa: E402


def torus(n: int, seed: int = 0) -> np.ndarray:
    """(N, 10) points of a Clifford torus under a fixed random isometry into 10 dims."""
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 2 * np.pi, (2, n))
    basis, _ = np.linalg.qr(rng.normal(size=(10, 4)))  # (10, 4) orthonormal columns
    return np.c_[np.cos(a), np.sin(a), np.cos(b), np.sin(b)] @ basis.T


def main() -> None:
    args = parser(__doc__).parse_args()
    sizes, rounds = ((50, 100), 1) if args.quick else ((50, 100, 150, 200, 300), 3)
    res = Results("persistence", args.quick, args.threads)
    rows = []
    for n in sizes:
        cloud = torus(n)
        features = np.random.default_rng(n).standard_normal((n, 4096), dtype=np.float32)
        diagram_s, scores_s, loops = [], [], 0
        for _ in range(rounds):
            start = time.perf_counter()
            loops = h1_bars(cloud, max_points=n).n_long
            diagram_s.append(time.perf_counter() - start)
            with threadpool_limits(1, user_api="blas"):
                start = time.perf_counter()
                pc_scores(features, 10)
                scores_s.append(time.perf_counter() - start)
        res.add(f"N={n} | h1_bars", median(diagram_s))
        res.add(f"N={n} | pc_scores", median(scores_s))
        rows.append([n, median(diagram_s), spread(diagram_s), median(scores_s), loops])
    table(f"seconds (median of {rounds})", ["N", "h1_bars", "spread", "pc_scores D=4096", "loops read"], rows)
    n = 100 if 100 in sizes else sizes[-1]
    res.finish(args, f"N={n}: a diagram {res.figures[f'N={n} | h1_bars']:.3f} s, its PC scores "
                     f"{res.figures[f'N={n} | pc_scores']:.3f} s")


if __name__ == "__main__":
    main()
