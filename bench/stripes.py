"""The per-axis reader (`metrics.read_axes`) and the torus reader: floor calibration, accuracy, speed.

    .venv/bin/python bench/stripes.py              # 500 images a family (~1 min on 2 cores)
    .venv/bin/python bench/stripes.py --quick      # 100 images a family
    .venv/bin/python bench/stripes.py --samples runs/*/samples/step-0000000.npz

Renders with numpy and fixed seeds, from the follow-up paper's formulas (pixel (i, j) centred at
(j + .5, i + .5); darkness g_x(col) + g_y(row) clipped to 1 for a sum of stripes, g_x * g_y for a
bump, g a Gaussian; model scale 1 - 2 x darkness), families whose answer per axis is known —
stripes, sums of stripes, bumps (sigma 0.5..3, centres anywhere in the frame), two stripes on one
axis, stripes centred off-frame, and images with nothing (blank, a faint stripe, Gaussian noise,
smooth random fields) — and prints: the share of axes read present under the default floor and
its neighbours; presence and error under pixel noise; position errors of clean images by distance
to the edge and of periodic bumps across the edge; and images/s for N = 1000 (the SUMMARY line).
``--samples`` adds the ``images`` of run sample files (e.g. an untrained model's step-0 eval).
metrics/stripes.py's docstring records a run of it.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, median, parser, table  # noqa: E402
from bench.failure_modes import sample_files, smooth_field  # noqa: E402
from metrics import (AXIS_MIN_DEPTH, AXIS_MIN_SNR, predict_centres, predict_centres_periodic,  # noqa: E402
                     read_axes, wrapped_error)

SIZE = 32
PIX = np.arange(SIZE) + 0.5
FLOORS = [(AXIS_MIN_DEPTH, AXIS_MIN_SNR), (AXIS_MIN_DEPTH, 8.0), (AXIS_MIN_DEPTH, 10.0), (AXIS_MIN_DEPTH, 16.0),
          (0.15, AXIS_MIN_SNR), (0.5, AXIS_MIN_SNR)]


def gauss(centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """(N,) centres, (N,) sigmas -> (N, SIZE) a 1-D Gaussian of peak 1 at the pixel centres."""
    return np.exp(-((PIX[None] - centres[:, None]) ** 2) / (2 * sigmas[:, None] ** 2))


def stripes(x, y, sx, sy, show_x=True, show_y=True) -> np.ndarray:
    """A vertical stripe at x plus a horizontal one at y, clipped: (N, SIZE, SIZE) model scale."""
    dark = np.clip(show_x * gauss(x, sx)[:, None, :] + show_y * gauss(y, sy)[:, :, None], 0, 1)
    return 1 - 2 * dark


def bumps(x, y, sx, sy) -> np.ndarray:
    """A 2-D Gaussian bump g_x * g_y: (N, SIZE, SIZE) model scale."""
    return 1 - 2 * gauss(x, sx)[:, None, :] * gauss(y, sy)[:, :, None]


def draw(rng: np.random.Generator, n: int, low: float = 0.0, high: float = SIZE):
    """Centres uniform in [low, high), sigmas uniform in [0.5, 3], for x and y."""
    return rng.uniform(low, high, n), rng.uniform(low, high, n), rng.uniform(0.5, 3, n), rng.uniform(0.5, 3, n)


def families(n: int, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """(name, expected x/y presence, images); '?' = no known answer; clipped to [-1, 1]."""
    rng = np.random.default_rng(seed)
    out = [("sum of stripes", "11", stripes(*draw(rng, n))),
           ("vertical stripe", "10", stripes(*draw(rng, n), show_y=False)),
           ("horizontal stripe", "01", stripes(*draw(rng, n), show_x=False)),
           ("2-D bump", "11", bumps(*draw(rng, n)))]
    x, y, sx, sy = draw(rng, n, 4, SIZE - 4)
    sx = rng.uniform(0.5, 2, n)
    second = np.where(x < SIZE / 2, x + rng.uniform(10, 14, n), x - rng.uniform(10, 14, n))
    two = np.minimum(stripes(x, y, sx, sy), stripes(second, y, rng.uniform(0.5, 2, n), sy, show_y=False))
    out.append(("two vertical stripes 10-14 px apart + one", "21", two))
    x, y, sx, sy = draw(rng, n)
    off = -sx * rng.uniform(0.0, 2.5, n)  # centre 0..2.5 sigma left of the frame
    out.append(("vertical stripe centred 0-2.5 sigma off-frame", "?0", stripes(off, y, sx, sy, show_y=False)))
    out.append(("blank", "00", np.ones((n, SIZE, SIZE))))
    out.append(("stripe of depth 0.2", "00", 1 - 0.1 * (1 - stripes(*draw(rng, n), show_y=False))))
    for std in (0.02, 0.1, 0.3, 1.0):
        out.append((f"noise std {std:g}, level U(-1,1)", "00",
                    rng.uniform(-1, 1, (n, 1, 1)) + rng.normal(0, std, (n, SIZE, SIZE))))
    out.append(("noise std 0.5 on white", "00", 1 + rng.normal(0, 0.5, (n, SIZE, SIZE))))
    for scale in (2, 4, 8):
        for amp in (0.1, 0.3):
            out.append((f"smooth field {scale} px, std {amp:g}", "00",
                        rng.uniform(-0.5, 0.5, (n, 1, 1)) + amp * smooth_field(rng, n, scale)))
    return [(name, want, np.clip(images, -1, 1)) for name, want, images in out]


def calibration(fams: list, res: Results) -> None:
    """One row a family: x/y present (%) under each floor; snr = depth / spread at the default."""
    rows = []
    for name, want, images in fams:
        cells = []
        for depth, snr in FLOORS:
            read = read_axes(images, min_depth=depth, min_snr=snr)
            x, y = (100 * read.present.mean(axis=0)).tolist()
            cells.append(f"{x:.0f}/{y:.0f}")
            res.add(f"{name} | {depth:g}/{snr:g} | present x", x)
            res.add(f"{name} | {depth:g}/{snr:g} | present y", y)
        read = read_axes(images)
        # snr of the axes that should be present, or of both where none should
        wanted = [c != "0" for c in want] if want != "00" else [True, True]
        ratio = np.percentile((read.depth / np.maximum(read.spread, 1e-9))[:, wanted], [1, 50, 99])
        several = (100 * np.mean(read.peaks >= 2, axis=0)).tolist()
        rows.append([name, want, *cells, "{:.0f}/{:.0f}".format(*several),
                     "/".join(f"{r:.1f}" if r < 1000 else ">1000" for r in ratio)])
    head = ["family", "want x,y", *(f"{d:g}/{s:g}" for d, s in FLOORS), "several x/y %", "snr p1/p50/p99"]
    table("x/y axes read present (%) by floor min_depth/min_snr; want: 1 present, 0 absent, 2 two peaks", head, rows)


def noisy(n: int, res: Results, seed: int = 1) -> None:
    """Presence (%) and p99 error (px) of the x axis under pixel noise, centres 3 sigma inside."""
    rng = np.random.default_rng(seed)
    stds, rows = (0.0, 0.1, 0.2, 0.3, 0.5), []
    for kind, render in (("stripe", lambda *a: stripes(*a, show_y=False)), ("sum", stripes), ("bump", bumps)):
        for sigma in (0.5, 1.0, 2.0, 3.0):
            s = np.full(n, sigma)
            x, y = rng.uniform(3 * sigma, SIZE - 3 * sigma, (2, n))
            cells = []
            for std in stds:
                read = read_axes(np.clip(render(x, y, s, s) + rng.normal(0, std, (n, SIZE, SIZE)), -1, 1))
                error = np.abs(read.positions[:, 0] - x)
                found = 100 * read.present[:, 0].mean()
                cells.append(f"{found:.0f}% {np.nanpercentile(error, 99) if found else np.nan:.2f}")
                res.add(f"noise {std:g} {kind} sigma {sigma:g} | present", found)
            rows.append([kind, f"{sigma:g}", *cells])
    table("x read present (%) and its p99 error (px) under pixel noise of std (model units)",
          ["image", "sigma", *map(str, stds)], rows)


def accuracy(n: int, res: Results, seed: int = 2) -> None:
    """Error (px) of clean readings: by distance of the centre to the nearest edge; torus bumps."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, render in (("stripe", lambda *a: stripes(*a, show_y=False)), ("sum", stripes), ("bump", bumps)):
        x, y, sx, sy = draw(rng, 4 * n)
        error = np.abs(read_axes(render(x, y, sx, sy)).positions[:, 0] - x)
        edge = np.minimum(x, SIZE - x)
        groups = (("interior (>= 3 sigma)", edge >= 3 * sx), ("1 px .. 3 sigma", (edge >= 1) & (edge < 3 * sx)),
                  ("last pixel, sigma >= 1", (edge < 1) & (sx >= 1)), ("last pixel, sigma < 1", (edge < 1) & (sx < 1)))
        for label, where in groups:
            p50, p99, worst = np.percentile(error[where], [50, 99, 100])
            rows.append([kind, label, int(where.sum()), p50, p99, worst])
            res.add(f"error p99 {kind} {label}", p99)
    for low in (0.5, 0.8):  # 0.8: the bump reader's own centroid table (docs/failure-modes.md)
        centres, sigmas = rng.uniform(0, SIZE, (n, 2)), rng.uniform(low, 3, n)
        pred = predict_centres_periodic(torus_bumps(centres, sigmas))
        error = wrapped_error(pred.centres, centres, SIZE).max(axis=1)
        p50, p99, worst = np.percentile(error, [50, 99, 100])
        one = f"anywhere ({np.mean(pred.blobs == 1):.0%} one blob)"
        rows.append([f"torus bump, sigma {low:g}-3", one, n, p50, p99, worst])
        res.add(f"error p99 torus bump sigma {low:g}-3", p99)
    table("position error of clean images (px): x of stripes / sums / bumps; max(|dx|, |dy|) wrapped on the torus",
          ["image", "centre", "n", "p50", "p99", "max"], rows)


def torus_bumps(centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Bumps on a 32 x 32 torus: the wrapped distance to the centre, model scale."""
    dx = wrapped_error(PIX[None, None, :], centres[:, 0, None, None], SIZE)
    dy = wrapped_error(PIX[None, :, None], centres[:, 1, None, None], SIZE)
    return 1 - 2 * np.exp(-(dx**2 + dy**2) / (2 * sigmas[:, None, None] ** 2))


def speed(res: Results, n: int = 1000, repeats: int = 5) -> float:
    """Images/s of each reader on N = 1000 sums of stripes / torus bumps (median of repeats)."""
    rng = np.random.default_rng(3)
    sums = stripes(*draw(rng, n))
    torus = torus_bumps(rng.uniform(0, SIZE, (n, 2)), rng.uniform(0.5, 3, n))
    rows, rates = [], {}
    readers = (("read_axes", read_axes, sums), ("predict_centres_periodic", predict_centres_periodic, torus),
               ("predict_centres (reference)", predict_centres, torus))
    for name, fn, images in readers:
        fn(images[:10])  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(images)
            times.append(time.perf_counter() - start)
        rates[name] = n / median(times)
        res.add(f"images/s {name}", rates[name])
        rows.append([name, n, 1000 * median(times), rates[name]])
    table(f"speed, N = {n}, median of {repeats}", ["reader", "N", "ms", "images/s"], rows)
    return rates["read_axes"]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, help="images a family (default 500; --quick 100)")
    p.add_argument("--samples", type=Path, nargs="*", default=[], metavar="NPZ",
                   help="run sample files (samples/step-*.npz) to read beside the generated families")
    args = p.parse_args()
    n = args.n or (100 if args.quick else 500)
    res = Results("stripes", args.quick, args.threads)
    calibration(families(n) + [(name, "00", images) for name, _, images in sample_files(args.samples)], res)
    noisy(n, res)
    accuracy(n, res)
    rate = speed(res)
    res.finish(args, f"read_axes {rate:,.0f} images/s at N = 1000; "
                     f"p99 error of clean interior sums {res.figures['error p99 sum interior (>= 3 sigma)']:.3f} px")


if __name__ == "__main__":
    main()
