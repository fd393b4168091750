"""What layer-4 R² measures: the same eval read with and without the label encoding.

For an untrained model (step 0) and, given ``--checkpoint``, a trained one, runs the full
evaluation of a preset twice — capturing layer 4 with the label (``eval.capture = "block"``,
the paper's reading) and with the label encoding zeroed (``"no_label"``: what the image
pathway alone carries) — and prints accuracy, UMAP / PCA R², the shuffled control and the
blob fractions side by side. See docs/r2-baseline.md.

    python bench/r2_capture.py presets/quick.toml [--checkpoint runs/<id>/checkpoints/step-0001200.pt]
        [--set eval.n_samples=500] ...
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load_trained  # noqa: E402
from labconsole.evaluate import Evaluator  # noqa: E402
from labconsole.presets import load_preset  # noqa: E402
from model.train import build_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("preset")
    ap.add_argument("--checkpoint", type=Path, help="a trained checkpoint of the same config")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_preset(args.preset, args.overrides).runs[0].config
    models = {"step 0 (untrained)": build_model(cfg.model, cfg.train.seed, torch.device("cpu"))}
    if args.checkpoint:
        _, trained, step = load_trained(args.checkpoint)
        models[f"step {step} (trained)"] = trained
    table = Table(title=f"layer-4 R² with and without the label encoding — {Path(args.preset).name}, "
                        f"N = {cfg.eval.n_samples}, {cfg.eval.sampler}")
    for col in ("model", "capture", "single", "accuracy", "UMAP R² x / y / mean", "PCA R²", "shuffled R²"):
        table.add_column(col)
    for name, model in models.items():
        for capture in ("block", "no_label"):
            run_cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, capture=capture))
            f = Evaluator(run_cfg, torch.device("cpu"))(0, model).numbers()
            table.add_row(name, capture, f"{f['blobs_1']:.2f}", f"{f['accuracy']:.2f} / {f['ceiling']:.2f}",
                          f"{f['r2_x']:.2f} / {f['r2_y']:.2f} / {f['r2_mean']:.2f}", f"{f['r2_pca_mean']:.2f}",
                          f"{f['r2_shuffled']:.3f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
