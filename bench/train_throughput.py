"""Training throughput: images/s of one optimisation step, ours vs diffusers at matched size.

    .venv/bin/python bench/train_throughput.py            # tiny, w16, w32, paper at batch 16 and 32
    .venv/bin/python bench/train_throughput.py --quick    # tiny and w16 at batch 16, a smoke run
    .venv/bin/python bench/train_throughput.py --sizes paper --batches 16 --rounds 9

A step is what ``model.train.train`` does per step: gather the batch from the resident dataset
tensor, draw t and eps, the MSE loss (``model.diffusion.loss``), backward, gradient clipping at
1.0, AdamW — the same step function and the same optimizer settings for both networks, so the
ratio measures the networks. Ours is built by ``model.train.build_model`` (channels_last);
diffusers' ``UNet2DModel`` is matched and conditioned as ``bench/matched.py`` explains, twice:
"tuned" (one attention head of the full width: the fastest shape on this CPU) and "as shipped"
(its default of 8 channels per head: what a user gets who sets only the widths).

Per (size, batch): a round times ``--steps`` steps of ours, of theirs and two fp32 GEMM
references — ``torch.mm`` of 2048 x 2048 matrices (MKL) and the same work as a 1x1 convolution
through oneDNN, the library our convolutions use — in alternation (order flipped every round);
the table shows medians over rounds. FLOP utilisation = counted FLOPs of a step (forward +
backward: convolutions, matmuls and attention, ``FlopCounterMode``; the optimizer's elementwise
work is not counted) x steps/s / the same round's ``torch.mm`` FLOP/s (the issue's yardstick) and
/ the better of the two references ("best"). On AMD CPUs MKL's sgemm runs well below oneDNN, so
utilisation of ``torch.mm`` can exceed 100%.
Peak memory: a fresh child process per (network, size, batch) reports its peak RSS during
three steps minus its RSS just before them (activations, gradients, AdamW state, workspace;
Linux's VmHWM, reset with /proc/self/clear_refs).

A second table checks the perf choices of the training loop (keep what pays), each against the
loop as ``model.train`` runs it (channels_last, fused AdamW, fp32): the other AdamW implementations
(foreach, torch's single-tensor CPU default), the contiguous memory format and bf16 autocast (the
opt-in ``train.precision = "bf16"``). ``--precision bf16`` runs the whole comparison under bf16
autocast, both networks alike.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count  # noqa: E402

from bench.common import (  # noqa: E402
    Results, alternate, matmul_flops, median, onednn_gemm_flops, parser, set_threads, spread, table, timed,
)
from bench.matched import NO_DIFFUSERS, SHIPPED_HEAD_DIM, DiffusersUNet, have_diffusers  # noqa: E402
from model.data import DataConfig, make_dataset  # noqa: E402
from model.diffusion import DiffusionConfig, Schedule, loss  # noqa: E402
from model.train import TrainConfig, autocast, build_model, fused_adamw  # noqa: E402
from model.unet import ModelConfig, count_parameters  # noqa: E402

CPU = torch.device("cpu")
aten = torch.ops.aten
# FlopCounterMode knows the CUDA attention kernels but not the CPU ones: count those the same way.
CPU_ATTENTION_FLOPS = {
    aten._scaled_dot_product_flash_attention_for_cpu: lambda q, k, v, *_, **__: sdpa_flop_count(q, k, v),
    aten._scaled_dot_product_flash_attention_for_cpu_backward:
        lambda g, q, k, v, *_, **__: sdpa_backward_flop_count(g, q, k, v),
}
TRAIN_ADAMW = "fused" if fused_adamw(CPU) else "single"  # the AdamW model.train uses on the CPU
DATA = DataConfig(dx=1.0, dy=1.0, sigma=1.0)  # 1,024 resident images: the batch gather is real


# --------------------------------------------------------------------------- one training step


class Stepper:
    """A network, its optimizer and a step function, as ``model.train`` runs them on the CPU."""

    def __init__(self, net: torch.nn.Module, batch: int, optimizer: str = "default", precision: str = "fp32"):
        self.net, self.batch, self.precision = net, batch, precision
        tc = TrainConfig(batch_size=batch)
        if optimizer == "default":
            optimizer = TRAIN_ADAMW
        # "single": torch's per-parameter loop, its CPU default when neither flag is given.
        flags = dict(foreach=optimizer == "foreach", fused=optimizer == "fused")
        self.opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, **flags)
        self.data = make_dataset(DATA, CPU)
        self.schedule = Schedule.from_config(DiffusionConfig(), CPU)
        self.gen = torch.Generator().manual_seed(0)

    def inputs(self):
        idx = torch.randint(0, len(self.data), (self.batch,), generator=self.gen)
        x0, mu = self.data.images[idx], self.data.mu[idx]
        t = torch.randint(0, self.schedule.T, (self.batch,), generator=self.gen)
        return x0, mu, t, torch.randn(x0.shape, generator=self.gen)

    def forward_backward(self) -> None:
        x0, mu, t, eps = self.inputs()
        with autocast(self.precision, CPU):  # as model.train runs train.precision
            value = loss(self.net, self.schedule, "eps", x0, mu, t, eps)
        value.backward()

    def step(self) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.forward_backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 1.0)
        self.opt.step()

    def images_per_s(self, steps: int) -> float:
        return steps * self.batch / timed(lambda: [self.step() for _ in range(steps)])

    def flops(self) -> int:
        """FLOPs of one forward + backward (conv, matmul, attention)."""
        with FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS) as counter:
            self.forward_backward()
        self.net.zero_grad(set_to_none=True)
        return counter.get_total_flops()


def build(which: str, size: str, layers: int = 2) -> torch.nn.Module:
    if which == "ours":
        return build_model(ModelConfig(size=size), seed=0, device=CPU)
    if which == "ours-contiguous":
        torch.manual_seed(0)
        return build_model(ModelConfig(size=size), seed=0, device=CPU).to(memory_format=torch.contiguous_format)
    torch.manual_seed(0)
    return DiffusersUNet(size, layers, SHIPPED_HEAD_DIM if which == "diffusers-shipped" else None)


# --------------------------------------------------------------------------- peak memory (child)


def memory_child(which: str, size: str, batch: int) -> None:
    """Run in a fresh process: print {"peak_mb": ...} for three steps of ``which`` at ``size``."""
    stepper = Stepper(build(which, size), batch)
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    for _ in range(3):
        stepper.step()
    print(json.dumps(dict(peak_mb=_status_mb("VmHWM") - before)))


def _status_mb(field: str) -> float:
    """A size from /proc/self/status. Not ru_maxrss: that one carries the parent's peak over exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status (peak memory needs Linux)")


def peak_memory(which: str, size: str, batch: int, threads: int) -> float:
    cmd = [sys.executable, __file__, "--memory-child", which, size, str(batch), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


# --------------------------------------------------------------------------- the measurements


def compare_networks(size: str, batch: int, args, res: Results) -> list:
    pr = args.precision
    ours = Stepper(build("ours", size), batch, precision=pr)
    theirs = Stepper(build("diffusers", size, args.diffusers_layers), batch, precision=pr)
    shipped = Stepper(build("diffusers-shipped", size, args.diffusers_layers), batch, precision=pr) \
        if args.shipped else None
    flops = {"ours": ours.flops(), "diffusers": theirs.flops()}  # the head count changes no FLOPs
    for s in (ours, theirs, shipped):
        if s is not None:
            s.step()  # warm-up: first-call allocations, kernel choice, AdamW state
    contenders = {
        "ours": lambda: ours.images_per_s(args.steps),
        "diffusers": lambda: theirs.images_per_s(args.steps),
        "gemm": lambda: (matmul_flops(), onednn_gemm_flops()),
    }
    if shipped is not None:
        contenders["shipped"] = lambda: shipped.images_per_s(args.steps)
    runs = alternate(contenders, args.rounds)
    mm = [g[0] for g in runs["gemm"]]
    best = [max(g) for g in runs["gemm"]]
    util = {k: median(ips / batch * flops[k] / ref for ips, ref in zip(runs[k], mm)) for k in flops}
    util_best = {k: median(ips / batch * flops[k] / ref for ips, ref in zip(runs[k], best)) for k in flops}
    ratio = median(a / b for a, b in zip(runs["ours"], runs["diffusers"]))
    ratio_shipped = median(a / b for a, b in zip(runs["ours"], runs["shipped"])) if shipped else float("nan")
    mem = {k: peak_memory(k, size, batch, args.threads) for k in flops} if not args.no_memory else {}
    key = f"{size}_b{batch}"
    res.add(f"{key}_ours_ips", median(runs["ours"]))
    res.add(f"{key}_diffusers_ips", median(runs["diffusers"]))
    res.add(f"{key}_ratio", ratio)
    if shipped is not None:
        res.add(f"{key}_diffusers_shipped_ips", median(runs["shipped"]))
        res.add(f"{key}_ratio_shipped", ratio_shipped)
    res.add(f"{key}_ours_util", util["ours"])
    res.add(f"{key}_diffusers_util", util["diffusers"])
    res.add(f"{key}_ours_util_best_gemm", util_best["ours"])
    res.add(f"{key}_matmul_gflops", median(mm) / 1e9)
    res.add(f"{key}_best_gemm_gflops", median(best) / 1e9)
    for k, v in mem.items():
        res.add(f"{key}_{k}_peak_mb", v)
    print(f"  {size} b{batch}: ours {median(runs['ours']):.1f}, diffusers {median(runs['diffusers']):.1f}"
          + (f", as shipped {median(runs['shipped']):.1f}" if shipped else "") + " images/s", flush=True)
    return [
        size, batch, f"{count_parameters(ours.net) / 1e6:.2f}M / {count_parameters(theirs.net) / 1e6:.2f}M",
        median(runs["ours"]), spread(runs["ours"]), median(runs["diffusers"]), spread(runs["diffusers"]), ratio,
        median(runs["shipped"]) if shipped else float("nan"), ratio_shipped,
        f"{flops['ours'] / batch / 1e9:.2f} / {flops['diffusers'] / batch / 1e9:.2f}",
        f"{median(mm) / 1e9:.0f} / {median(best) / 1e9:.0f}", f"{util['ours']:.0%} / {util['diffusers']:.0%}",
        f"{util_best['ours']:.0%}",
        f"{mem['ours']:.0f} / {mem['diffusers']:.0f}" if mem else "-",
    ]


def perf_checks(size: str, batch: int, args, res: Results) -> list[list]:
    """The loop's choices, each against its alternatives, alternating: keep what pays."""
    variants = {"as train() runs": Stepper(build("ours", size), batch)}
    for adamw in ("fused", "foreach", "single"):
        if adamw != TRAIN_ADAMW:
            variants[f"{adamw} AdamW"] = Stepper(build("ours", size), batch, adamw)
    variants["contiguous format"] = Stepper(build("ours-contiguous", size), batch)
    variants["bf16 autocast (train.precision=bf16)"] = Stepper(build("ours", size), batch, precision="bf16")
    for s in variants.values():
        s.step()
    runs = alternate({k: (lambda s=s: s.images_per_s(args.steps)) for k, s in variants.items()}, args.rounds)
    base = runs.pop("as train() runs")
    rows = [["as train() runs (channels_last, " + TRAIN_ADAMW + " AdamW)", size, batch, median(base), 1.0]]
    for name, values in runs.items():
        gain = median(a / b for a, b in zip(values, base))
        res.add(f"check_{size}_b{batch}_{name.split()[0]}_vs_train", gain)
        rows.append([name, size, batch, median(values), gain])
    return rows


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--sizes", nargs="+", help="named sizes (default: tiny w16 w32 paper; quick: tiny w16)")
    p.add_argument("--batches", nargs="+", type=int, help="batch sizes (default: 16 32; quick: 16)")
    p.add_argument("--rounds", type=int, help="alternating rounds per measurement (default 5; quick 3)")
    p.add_argument("--steps", type=int, help="training steps per timed run (default 3; quick 1)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--no-checks", action="store_true", help="skip the AdamW / memory-format checks")
    p.add_argument("--checks-only", action="store_true", help="only the AdamW / memory-format checks")
    p.add_argument("--diffusers-layers", type=int, default=2, choices=(1, 2),
                   help="diffusers layers_per_block (widths re-matched; default 2, its own default)")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="numerics of every network's forward (bf16: autocast, as train.precision=bf16)")
    p.add_argument("--no-shipped", dest="shipped", action="store_false",
                   help=f"skip diffusers as shipped (attention_head_dim={SHIPPED_HEAD_DIM}, its default)")
    p.add_argument("--memory-child", nargs=3, metavar=("NET", "SIZE", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    set_threads(args.threads)
    if args.memory_child:
        which, size, batch = args.memory_child
        return memory_child(which, size, int(batch))
    if not have_diffusers():
        sys.exit(f"train_throughput: {NO_DIFFUSERS}")
    args.sizes = args.sizes or (["tiny", "w16"] if args.quick else ["tiny", "w16", "w32", "paper"])
    args.batches = args.batches or ([16] if args.quick else [16, 32])
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.steps = args.steps or (1 if args.quick else 3)
    res = Results("train_throughput", args.quick, args.threads)

    if args.checks_only:
        checks = [r for size in args.sizes for r in perf_checks(size, args.batches[-1], args, res)]
        table("perf checks of the training loop (ours, images/s, alternating; x = vs as train() runs)",
              ["variant", "size", "batch", "images/s", "x"], checks)
        return res.finish(args, "perf checks only")
    rows = [compare_networks(size, batch, args, res) for size in args.sizes for batch in args.batches]
    table(f"training step, images/s (medians of {args.rounds} alternating rounds of {args.steps} steps, "
          f"{args.threads} threads, {args.precision})",
          ["size", "batch", "params ours/diff", "ours", "ours range", "diffusers", "diff range", "ours/diff",
           "diff shipped", "ours/shipped", "GFLOP/img o/d", "GFLOP/s mm/best", "util/mm o/d", "ours util/best", "peak MB o/d"], rows)
    if not args.no_checks:
        check_size = "tiny" if args.quick else "w16"
        checks = [r for size in dict.fromkeys([check_size, args.sizes[-1]]) for r in perf_checks(size, 32, args, res)]
        table("perf checks of the training loop (ours, batch 32, images/s, alternating; x = vs as train() runs)",
              ["variant", "size", "batch", "images/s", "x"], checks)

    ratios, shipped = [r[7] for r in rows], [r[9] for r in rows]
    last = rows[-1]
    res.finish(args, f"ours/diffusers tuned {min(ratios):.2f}x..{max(ratios):.2f}x"
                     + (f", as shipped {min(shipped):.2f}x..{max(shipped):.2f}x" if args.shipped else "")
                     + f" (target >= 2x); {last[0]} b{last[1]}: FLOP utilisation ours/diffusers {last[12]} of "
                     f"torch.mm (target >= 60% at paper), ours {last[13]} of the best GEMM")


if __name__ == "__main__":
    main()
