"""Shared plumbing of the bench scripts: arguments, fair timing, tables, baselines.

Fair under load: a shared machine's speed drifts, so the things being compared are timed in
alternation (A, B, A, B, ...) and each is summarised by its median; a ratio is then taken of two
medians measured over the same minutes. Every script prints one table per measurement and ends
with one summary line; ``--save FILE`` writes its figures as JSON, ``--compare FILE`` prints them
beside a saved run's.

Not a package API: scripts run as ``.venv/bin/python bench/<name>.py``; each first puts the repo
root on ``sys.path`` so ``bench`` / ``model`` / ``metrics`` / ``labconsole`` import from the checkout.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- arguments


def parser(doc: str | None) -> argparse.ArgumentParser:
    """The common flags: --quick, --threads, --save, --compare."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a fast smoke run (few sizes, few repeats)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default: 2)")
    p.add_argument("--save", type=Path, metavar="FILE", help="write this run's figures to FILE (JSON)")
    p.add_argument("--compare", type=Path, metavar="FILE", help="print this run's figures beside FILE's")
    return p


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


# --------------------------------------------------------------------------- trained models


def load_trained(path: str | Path):
    """(RunConfig, network with the EMA weights the evaluations read, step) of a checkpoint file,
    or of the latest checkpoint of a run dir / checkpoints dir. Exits with one line if there is none."""
    import torch

    from labconsole.runconfig import config_from_dict
    from model.checkpoint import latest_checkpoint, load_checkpoint
    from model.train import build_model

    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
        if found is None:
            sys.exit(f"error: no checkpoint under {path}; expected a run dir of labconsole or a checkpoint file")
        path = found
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"], str(path))
    net = build_model(cfg.model, 0, torch.device("cpu"))
    net.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
    return cfg, net, int(state["step"])


# --------------------------------------------------------------------------- timing


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(contenders: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Call each contender once per round, in turn (order flipped every round, so neither always
    runs right after the other); each call returns its own measurement. Returns the lists."""
    names = list(contenders)
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            out[name].append(contenders[name]())
    return out


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> str:
    """'min..max' of a list, for the table: how noisy the medians are."""
    return f"{min(values):.3g}..{max(values):.3g}" if values else ""


def matmul_flops(n: int = 2048, reps: int = 3) -> float:
    """The machine's fp32 matmul FLOP/s right now: best of ``reps`` (n x n) @ (n x n) ``torch.mm``."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up: first call allocates and picks the kernel
    best = min(timed(lambda: torch.mm(a, b)) for _ in range(reps))
    return 2 * n**3 / best


def onednn_gemm_flops(reps: int = 3) -> float:
    """fp32 GEMM FLOP/s through oneDNN, the library our convolutions run on: a 1x1 convolution
    (65,536 x 512 @ 512 x 512, channels_last). On some CPUs (AMD with MKL) it beats ``torch.mm``."""
    import torch
    import torch.nn.functional as F

    x = torch.randn(64, 512, 32, 32).to(memory_format=torch.channels_last)
    w = torch.randn(512, 512, 1, 1).to(memory_format=torch.channels_last)
    F.conv2d(x, w)
    best = min(timed(lambda: F.conv2d(x, w)) for _ in range(reps))
    return 2 * 64 * 1024 * 512 * 512 / best


def load_note() -> str:
    """'' on an idle machine, else a note with the 1-minute load average vs the cores."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    return f"under load: load average {load:.1f} on {cores} cores" if load > 0.5 * cores else ""


# --------------------------------------------------------------------------- output


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    """Print a plain aligned table (readable in a log file and in docs/benchmarks.md)."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    sys.stdout.flush()  # a table appears as soon as it is measured, also through a pipe


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


class Results:
    """The figures of one script run: flat ``key -> number``, plus what machine and mode."""

    def __init__(self, script: str, quick: bool, threads: int):
        import torch

        self.figures: dict[str, float] = {}
        self.meta = dict(
            script=script, quick=quick, threads=threads, torch=str(torch.__version__),
            python=platform.python_version(), host=platform.node(), cpus=os.cpu_count(),
            load_start=round(os.getloadavg()[0], 2), date=time.strftime("%Y-%m-%d %H:%M:%S"),
        )

    def add(self, key: str, value: float) -> None:
        self.figures[key] = float(value)

    def finish(self, args: argparse.Namespace, summary: str) -> None:
        """Compare, save, then print the one-line summary (always the last line)."""
        self.meta["load_end"] = round(os.getloadavg()[0], 2)
        if args.compare:
            self.compare(args.compare)
        if args.save:
            args.save.write_text(json.dumps(dict(meta=self.meta, figures=self.figures), indent=1) + "\n")
            print(f"\nsaved {len(self.figures)} figures to {args.save}")
        note = load_note()
        print(f"\nSUMMARY {self.meta['script']}: {summary}" + (f" [{note}]" if note else ""))

    def compare(self, path: Path) -> None:
        saved = json.loads(Path(path).read_text())
        base, meta = saved["figures"], saved["meta"]
        rows = []
        for key, now in self.figures.items():
            then = base.get(key)
            change = now / then if then not in (None, 0) else float("nan")
            rows.append([key, then if then is not None else float("nan"), now, change])
        table(f"compared with {path} ({meta.get('date')}, load {meta.get('load_start')}, quick={meta.get('quick')})",
              ["figure", "baseline", "now", "now/baseline"], rows)
