"""One full evaluation, split by stage, and its share of the quick preset's wall time.

    .venv/bin/python bench/eval_cost.py                   # N = 500 and N = 100, 3 repeats
    .venv/bin/python bench/eval_cost.py --checkpoint runs/<id>   # a trained model's images
    .venv/bin/python bench/eval_cost.py --quick           # N = 100, 1 repeat

The real ``labconsole.evaluate.Evaluator`` runs on the quick preset's config (w16 network,
T = 200, x0-prediction, its DDIM steps, capture at the last step) with ``eval.n_samples`` = N; each
stage is timed by wrapping the function the Evaluator calls (an instrument of this bench, the
code that runs is unchanged): sampling (``sample``; the layer-4 capture is read from the sampler's
own forward at ``capture_t``, so it costs nothing apart — with ``eval.capture = "no_label"`` its one
extra forward counts as sampling), label prediction (``readout.Readout.read``: ``predict_centres`` for
bumps), accuracy + failure modes + phase (``Readout.score``, ``failure_modes``, ``label_eval``), UMAP + R² (``manifold_r2``: UMAP-3D, PCA-3D and the
shuffled control, times ``eval.umap_seeds`` fits; in a hole run also the fit on all rows and
``transfer_r2``), the PCA spectrum of layer 4 (``pca_spectrum``), the ceiling (once per run, in the
Evaluator's constructor), and the npz save the worker does (``labconsole.samples.write_samples``).

The first eval of a process also loads UMAP's compiled code (the numba cache; ~7 s the very first
time on a machine): it is reported apart ("cold"), the table shows medians of the later ones.
Without ``--checkpoint`` the network is untrained: its noisy images make label prediction
somewhat slower than a trained model's (a pessimistic reading of that stage).

Share of wall time: the quick preset evaluates every ``train.eval_every`` steps; the training
time of that many steps comes from the images/s the real ``model.train.train`` loop reports
(``--train-steps`` steps at the preset's batch). share = eval / (eval + training between evals).
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import labconsole.evaluate as evaluate  # noqa: E402
import labconsole.readout as readout  # noqa: E402
from bench.common import ROOT, Results, load_trained, median, parser, set_threads, table  # noqa: E402
from labconsole.config import RunConfig  # noqa: E402
from labconsole.presets import load_preset  # noqa: E402
from labconsole.samples import write_samples  # noqa: E402
from model.train import TrainProgress, build_model, train  # noqa: E402

CPU = torch.device("cpu")
STAGES = ("sampling", "label prediction", "accuracy, blobs, phase", "UMAP + R2", "PCA spectrum",
          "npz save", "ceiling (once per run)")
# The Evaluator's collaborators, by the name it calls them under -> the stage they belong to; the
# reading by data kind lives in labconsole.readout (its reader and scorers, its Readout.ceiling).
WRAPPED = {"sample": "sampling", "read": "label prediction",
           "score": "accuracy, blobs, phase", "failure_modes": "accuracy, blobs, phase",
           "label_eval": "accuracy, blobs, phase", "manifold_r2": "UMAP + R2", "transfer_r2": "UMAP + R2",
           "pca_spectrum": "PCA spectrum", "ceiling": "ceiling (once per run)"}
HOME = {"read": readout.Readout, "score": readout.Readout, "ceiling": readout.Readout}  # else labconsole.evaluate


class StageClock:
    """Seconds per stage, accumulated by wrappers around the Evaluator's collaborators."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.ceiling_depth = 0  # ceiling() calls predict_centres and accuracy: count those as ceiling

    @contextlib.contextmanager
    def installed(self):
        real = {name: getattr(HOME.get(name, evaluate), name) for name in WRAPPED}
        for name, fn in real.items():
            setattr(HOME.get(name, evaluate), name, self._wrap(name, fn))
        try:
            yield self
        finally:
            for name, fn in real.items():
                setattr(HOME.get(name, evaluate), name, fn)

    def _wrap(self, name: str, fn):
        def timed_call(*a, **kw):
            inner = self.ceiling_depth > 0 and name != "ceiling"
            self.ceiling_depth += name == "ceiling"
            start = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.ceiling_depth -= name == "ceiling"
                if not inner:
                    self.seconds[WRAPPED[name]] += time.perf_counter() - start
        return timed_call

    def split(self) -> dict[str, float]:
        return dict(self.seconds)


def one_eval(cfg: RunConfig, net, step: int) -> dict[str, float]:
    """Build an Evaluator and run it once, as the worker does (incl. the npz save); seconds per stage."""
    clock = StageClock()
    with clock.installed():
        evaluator = evaluate.Evaluator(cfg, CPU)
        result = evaluator(step, net)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_samples(tmp, step, result.samples)
    seconds = clock.split()
    seconds["npz save"] = time.perf_counter() - start
    seconds["total"] = sum(seconds.values())
    seconds["Evaluator (its own clock)"] = result.eval_seconds
    return seconds


def model_for(cfg: RunConfig, checkpoint: str | None):
    """The preset's config and an untrained network, or a trained one with its config (the eval
    settings kept from ``cfg``)."""
    if checkpoint is None:
        return cfg, build_model(cfg.model, 0, CPU), 0
    trained_cfg, net, step = load_trained(checkpoint)
    return dataclasses.replace(trained_cfg, eval=cfg.eval), net, step


def training_images_per_s(cfg: RunConfig, steps: int) -> float:
    """The images/s the real training loop reports over ``steps`` steps (median of its log events)."""
    tc = dataclasses.replace(cfg.train, steps=steps, log_every=max(steps // 4, 1), eval_at=(), threads=0)
    speeds: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        train(dataclasses.replace(cfg, train=tc), checkpoint_dir=Path(tmp),
              on_event=lambda e: speeds.append(e.images_per_s) if isinstance(e, TrainProgress) else None)
    return median(speeds[1:] or speeds)  # the first window holds the first steps' allocations


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--checkpoint", help="a trained run dir or checkpoint (default: an untrained network)")
    p.add_argument("--n", type=int, nargs="+", help="eval sizes (default 500 100; quick 100)")
    p.add_argument("--repeats", type=int, help="evals per size after the cold one (default 3; quick 1)")
    p.add_argument("--train-steps", type=int, help="training steps timed for the cadence (default 60; quick 20)")
    args = p.parse_args()
    set_threads(args.threads)
    args.n = args.n or ([100] if args.quick else [500, 100])
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.train_steps = args.train_steps or (20 if args.quick else 60)
    res = Results("eval_cost", args.quick, args.threads)
    base = load_preset(ROOT / "presets" / "quick.toml").runs[0].config

    cfg, net, step = model_for(base, args.checkpoint)
    cold = None
    rows, totals = [], {}
    for n in args.n:
        cfg_n = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, n_samples=n))
        if cold is None:
            cold = one_eval(cfg_n, net, step)  # loads UMAP's code: the first eval of every process
        runs = [one_eval(cfg_n, net, step) for _ in range(args.repeats)]
        stage = {k: median(r[k] for r in runs) for k in runs[0]}
        totals[n] = stage["total"] - stage["ceiling (once per run)"]  # per eval, the ceiling excluded
        for k, v in stage.items():
            res.add(f"n{n}_{k.split()[0].replace(',', '').lower()}_s", v)
        rows.append((n, stage))
    header = ["stage"] + [f"N={n} s" for n, _ in rows] + [f"N={n} %" for n, _ in rows]
    body = []
    for k in (*STAGES, "total", "Evaluator (its own clock)"):
        body.append([k] + [s.get(k, 0.0) for _, s in rows] +
                    [f"{s.get(k, 0.0) / s['total']:.0%}" if k in STAGES else "" for _, s in rows])
    sampler = f"DDIM-{cfg.eval.ddim_steps}" if cfg.eval.sampler == "ddim" else f"DDPM-{cfg.diffusion.T}"
    table(f"one evaluation by stage (w16, {sampler}, step {step}; medians of {args.repeats}; "
          f"first eval of the process: {cold['total']:.1f} s, of which UMAP {cold['UMAP + R2']:.1f} s)", header, body)

    ips = training_images_per_s(cfg, args.train_steps)
    tc = cfg.train
    between = tc.eval_every * tc.batch_size / ips
    share_rows = []
    for n, per_eval in totals.items():
        share = per_eval / (per_eval + between)
        res.add(f"n{n}_share", share)
        share_rows.append([n, per_eval, tc.eval_every, between, share])
    res.add("train_images_per_s", ips)
    table(f"share of the quick preset's wall time (training {ips:.0f} images/s at batch {tc.batch_size}, "
          f"eval every {tc.eval_every} steps)", ["N", "eval s", "steps between", "training s between", "eval share"],
          share_rows)
    # The headline: the preset's own N when it was measured.
    first = next((r for r in share_rows if r[0] == base.eval.n_samples), share_rows[0])
    res.finish(args, f"one eval of N={first[0]} takes {first[1]:.1f} s = {first[4]:.1%} of the quick preset's "
                     f"wall time at its cadence (target < 10%)")


if __name__ == "__main__":
    main()
