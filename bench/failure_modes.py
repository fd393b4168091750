"""The paper's failure modes read from generated images: calibration of the detector's contrast floor.

    .venv/bin/python bench/failure_modes.py              # 500 images a family (~1 min on 2 cores)
    .venv/bin/python bench/failure_modes.py --quick      # 100 images a family
    .venv/bin/python bench/failure_modes.py --samples runs/*/samples/step-0000000.npz

``metrics.predict_centres`` counts a contour as a blob only above a contrast floor (``min_depth``,
``min_snr``; metrics/labels.py). This script renders, with numpy and fixed seeds, images whose
answer is known — one bump (DESIGN §5's formula, sigma 0.5..3, centres anywhere on the canvas,
borders included), two well-separated bumps, and images with no bump (Gaussian noise around a
constant level, smooth low-frequency random fields) — and prints, for the paper's algorithm (no
floor), the default floor and a few others, the percentage of each family read as no bump / one
bump / several bumps. Two more tables sweep pixel noise and background texture under single
bumps; the last gives the centroid error on clean bumps (the floor must not move it). ``--samples`` adds the ``images`` of
run sample files (``samples/step-*.npz``), e.g. an untrained model's step-0 eval.
docs/failure-modes.md records a run of it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Results, parser, table  # noqa: E402
from metrics import MIN_DEPTH, MIN_SNR, predict_centres  # noqa: E402

SIZE = 32
# (label, min_depth, min_snr): the paper's algorithm, the default, and neighbours of each knob.
FLOORS = [("no floor", 0.0, 0.0), (f"{MIN_DEPTH:g}/{MIN_SNR:g}", MIN_DEPTH, MIN_SNR),
          (f"{MIN_DEPTH:g}/6", MIN_DEPTH, 6.0), (f"{MIN_DEPTH:g}/14", MIN_DEPTH, 14.0),
          (f"0.15/{MIN_SNR:g}", 0.15, MIN_SNR), (f"0.5/{MIN_SNR:g}", 0.5, MIN_SNR)]
EXPECTED = {"one": "one", "two": "several", "none": "none"}


# --------------------------------------------------------------------------- rendering


def render(centres: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """(N, 2) (x, y), (N,) sigma -> (N, 32, 32) dark bumps on white, model scale [-1, 1] (DESIGN §5)."""
    pix = np.arange(SIZE) + 0.5  # pixel (i, j) has its centre at (j + .5, i + .5)
    dx2 = (pix[None, None, :] - centres[:, 0, None, None]) ** 2
    dy2 = (pix[None, :, None] - centres[:, 1, None, None]) ** 2
    bump = np.exp(-(dx2 + dy2) / (2 * sigmas[:, None, None] ** 2))
    return 2 * (1 - bump) - 1


def smooth_field(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """(n, 32, 32) zero-mean, unit-std random fields with correlation length ~``scale`` px."""
    k = np.fft.fftfreq(SIZE)
    gain = np.exp(-2 * (np.pi * scale) ** 2 * (k[:, None] ** 2 + k[None, :] ** 2))  # Gaussian blur
    field = np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, SIZE, SIZE))) * gain).real
    field -= field.mean(axis=(1, 2), keepdims=True)  # the blur keeps the mean; the level sets it
    return field / field.std(axis=(1, 2), keepdims=True)


def single_bumps(rng: np.random.Generator, n: int, sigma: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Centres uniform over the whole canvas (borders included) and sigmas uniform in ``sigma``."""
    return rng.uniform(0, SIZE, (n, 2)), rng.uniform(*sigma, n)


def families(n: int, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """(name, expected answer, images) of every generated family; clipped to [-1, 1] as evals are."""
    rng = np.random.default_rng(seed)
    out = [("one bump, sigma 1-3", "one", render(*single_bumps(rng, n, (1.0, 3.0)))),
           ("one bump, sigma 0.5", "one", render(*single_bumps(rng, n, (0.5, 0.5))))]
    first, second = rng.uniform(4, SIZE - 4, (2, 8 * n, 2))
    apart = np.linalg.norm(first - second, axis=1) >= 12  # well separated: >= 4 sigma at sigma 3
    sig = rng.uniform(1.0, 3.0, (2, n))
    two = np.minimum(render(first[apart][:n], sig[0]), render(second[apart][:n], sig[1]))
    out.append(("two bumps >= 12 px apart", "two", two))
    faint = render(*single_bumps(rng, n, (1.0, 3.0)))
    out.append(("one bump at depth 0.2, sigma 1-3", "none", 1 - 0.1 * (1 - faint)))  # below the floor
    for std in (0.02, 0.1, 0.3, 1.0):
        level = rng.uniform(-1, 1, (n, 1, 1))
        out.append((f"noise std {std:g}, level U(-1,1)", "none", level + rng.normal(0, std, (n, SIZE, SIZE))))
    for std in (0.1, 0.5):
        out.append((f"noise std {std:g} on white", "none", 1 + rng.normal(0, std, (n, SIZE, SIZE))))
    for scale in (2, 4, 8):
        for amp in (0.1, 0.3):
            level = rng.uniform(-0.5, 0.5, (n, 1, 1))
            out.append((f"smooth field {scale} px, std {amp:g}", "none", level + amp * smooth_field(rng, n, scale)))
    return [(name, want, np.clip(images, -1, 1)) for name, want, images in out]


def sample_files(paths: list[Path]) -> list[tuple[str, str, np.ndarray]]:
    """Families read from run sample files: the ``images`` array of each (answer unknown: '?')."""
    out = []
    for path in paths:
        try:
            images = np.load(path)["images"]
        except (OSError, KeyError, ValueError) as exc:
            sys.exit(f"error: cannot read images from {path} ({exc}); expected a run's samples/step-*.npz")
        out.append((f"{path.parent.parent.name}/{path.stem}", "?", images))
    return out


# --------------------------------------------------------------------------- tables


def modes(blobs: np.ndarray) -> tuple[float, float, float]:
    """Percentages of images with no blob, one, several."""
    return tuple(100 * float(np.mean(m)) for m in (blobs == 0, blobs == 1, blobs >= 2))


def calibration(fams: list, res: Results) -> None:
    """One row a family: none / one / several (%) under each floor; snr = depth / spread."""
    rows = []
    for name, want, images in fams:
        cells = []
        for label, depth, snr in FLOORS:
            none, one, several = modes(predict_centres(images, min_depth=depth, min_snr=snr).blobs)
            cells.append(f"{none:.0f}/{one:.0f}/{several:.0f}")
            res.add(f"{name} | {label} | {want}", {"one": one, "two": several, "none": none}.get(want, one))
        pred = predict_centres(images)
        ratio = np.percentile(pred.depth / np.maximum(pred.spread, 1e-9), [1, 50, 99])
        rows.append([name, EXPECTED.get(want, "?"), *cells, f"{np.median(pred.depth):.2f}",
                     "/".join(f"{r:.1f}" if r < 1000 else ">1000" for r in ratio)])
    head = ["family", "expected", *(f"{label}" for label, _, _ in FLOORS), "depth p50", "snr p1/p50/p99"]
    table("none/one/several % by contrast floor min_depth/min_snr; depth (model units) and "
          "snr = depth / spread at the default", head, rows)


def disturbed_bumps(n: int, res: Results, kind: str, seed: int = 1) -> None:
    """Single bumps under pixel noise or on a textured background: none/one/several %, by sigma and std.

    kind: "pixel noise" (white Gaussian noise) or "texture" (a smooth 4 px random field: what a
    model that draws its bump on an uneven canvas would show).
    """
    rng = np.random.default_rng(seed)
    stds = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7)
    rows = []
    for sigma in (0.5, 1.0, 2.0, 3.0):
        clean = render(*single_bumps(rng, n, (sigma, sigma)))
        # Pixel noise is what min_snr trades off: show its neighbours too.
        for label, depth, snr in FLOORS[:4] if kind == "pixel noise" else FLOORS[:2]:
            cells = []
            for std in stds:
                extra = rng.normal(size=clean.shape) if kind == "pixel noise" else smooth_field(rng, n, 4)
                images = np.clip(clean + std * extra, -1, 1)
                none, one, several = modes(predict_centres(images, min_depth=depth, min_snr=snr).blobs)
                cells.append(f"{none:.0f}/{one:.0f}/{several:.0f}")
                res.add(f"{kind} {std:g} sigma {sigma:g} | {label} | one", one)
            rows.append([f"sigma {sigma:g}", label, *cells])
    table(f"single bumps under {kind} of std (model units): none/one/several %",
          ["bump", "floor", *map(str, stds)], rows)


def centroid_error(n: int, res: Results, seed: int = 2) -> None:
    """Centroid error (max of |dx|, |dy|, px) of clean bumps away from the border, floor on vs off."""
    rng = np.random.default_rng(seed)
    sigmas = rng.uniform(0.8, 3.0, n)
    margin = 3 * sigmas + 1
    centres = np.stack([rng.uniform(margin, SIZE - margin), rng.uniform(margin, SIZE - margin)], axis=1)
    images = render(centres, sigmas)
    rows = []
    for label, depth, snr in FLOORS[:2]:
        error = np.abs(predict_centres(images, min_depth=depth, min_snr=snr).centres - centres).max(axis=1)
        res.add(f"centroid error median | {label}", float(np.median(error)))
        rows.append([label, f"{np.median(error):.4f}", f"{error.max():.4f}"])
    table("centroid error of clean bumps, sigma 0.8-3, >= 3 sigma + 1 px from the border (px)",
          ["floor", "median", "max"], rows)


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, help="images a family (default 500; --quick 100)")
    p.add_argument("--samples", type=Path, nargs="*", default=[], metavar="NPZ",
                   help="run sample files (samples/step-*.npz) to read beside the generated families")
    args = p.parse_args()
    n = args.n or (100 if args.quick else 500)
    res = Results("failure_modes", args.quick, args.threads)
    fams = families(n) + sample_files(args.samples)
    calibration(fams, res)
    disturbed_bumps(n, res, "pixel noise")
    disturbed_bumps(n, res, "texture")
    centroid_error(n, res)
    default = FLOORS[1][0]
    known = [(name, want) for name, want, _ in fams if want != "?"]
    right = min(res.figures[f"{name} | {default} | {want}"] for name, want in known)
    res.finish(args, f"at the default floor {default}, the worst generated family reads as expected in "
                     f"{right:.0f}% of its {n} images")


if __name__ == "__main__":
    main()
