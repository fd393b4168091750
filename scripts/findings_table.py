"""The numbers of docs/findings.md, from a sweep's report (``labconsole report SWEEP --out DIR``).

    python scripts/findings_table.py docs/findings/increments-mini [--frac 0.8]

Prints two markdown tables: per setting (from summary.csv) the steps to "accurate" (accuracy >=
frac x ceiling, held to the end), to phase C first and held, and the terminal numbers as mean
[min-max] over seeds; and per run (from evals.csv) the axes apart — the first step from which
acc_x (acc_y) holds at >= frac x its ceiling, and the Pearson correlation of R²_x and R²_y over the
run's evals (the paper's Fig. 5 reading: x and y learned together or apart).
"""
from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path


def _f(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def steps_cell(row: dict, name: str) -> str:
    """e.g. ``600 [450-750] 3/3`` or ``600 2/3, > 900 x1`` or ``> 900 x3``."""
    n = int(float(row[f"{name}_reached"] or 0)) + int(float(row[f"{name}_censored"] or 0))
    reached = int(float(row[f"{name}_reached"] or 0))
    cens = row[f"{name}_censored_by"]
    text = ""
    if reached:
        lo, hi, mean = _f(row[f"{name}_min"]), _f(row[f"{name}_max"]), _f(row[f"{name}_mean"])
        text = f"{mean:.0f}" + (f" [{lo:.0f}-{hi:.0f}]" if lo != hi else "") + f" {reached}/{n}"
    if cens:
        parts = cens.split(";")
        text += (", " if text else "") + f"{parts[0]} x{len(parts)}"
    return text or "-"


def spread_cell(row: dict, metric: str) -> str:
    mean, lo, hi = (_f(row.get(f"terminal_{metric}_{s}", "")) for s in ("mean", "min", "max"))
    if mean is None:
        return "-"
    return f"{mean:.2f} [{lo:.2f}-{hi:.2f}]"


def setting_table(report: Path) -> list[str]:
    rows = list(csv.DictReader(open(report / "summary.csv", newline="")))
    ood = any(_f(r.get("terminal_accuracy_ood_mean", "")) is not None for r in rows)
    head = ["setting", "seeds", "accurate from", "first C", "C held from", "accuracy / ceiling", "acc_x", "acc_y",
            "R² (UMAP)", "R² (PCA)"] + (["OOD accuracy / ceiling", "R² OOD"] if ood else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        acc = spread_cell(r, "accuracy")
        ceil = _f(r.get("terminal_ceiling_mean", ""))
        cells = [r["setting"] or "(the preset)", r["seeds"], steps_cell(r, "accurate_from"), steps_cell(r, "first_C"),
                 steps_cell(r, "C_held"), f"{acc} / {ceil:.2f}" if ceil is not None else acc,
                 spread_cell(r, "accuracy_x"), spread_cell(r, "accuracy_y"), spread_cell(r, "r2_mean"),
                 spread_cell(r, "r2_pca_mean")]
        if ood:
            ceil_ood = _f(r.get("terminal_ceiling_ood_mean", ""))
            cells += [f"{spread_cell(r, 'accuracy_ood')} / {ceil_ood:.2f}" if ceil_ood is not None else "-",
                      spread_cell(r, "r2_ood")]
        out.append("| " + " | ".join(cells) + " |")
    return out


def held(evals: list[dict], value: str, ceiling: str, frac: float) -> str:
    start = None
    for e in evals:
        v, c = _f(e[value]), _f(e[ceiling])
        ok = v is not None and c is not None and c > 0 and v >= frac * c - 1e-12
        start = (e["step"] if start is None else start) if ok else None
    return start if start is not None else f"> {evals[-1]['step']}"


def run_table(report: Path, frac: float) -> list[str]:
    evals = list(csv.DictReader(open(report / "evals.csv", newline="")))
    runs: dict[str, list[dict]] = {}
    for e in evals:
        runs.setdefault(e["run_id"], []).append(e)
    head = ["setting", "seed", "acc_x accurate from", "acc_y accurate from", "corr(R²_x, R²_y) over evals",
            "end: acc_x / acc_y", "end: R²_x / R²_y"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for run_id, es in runs.items():
        es.sort(key=lambda e: int(e["step"]))
        pairs = [(_f(e["r2_x"]), _f(e["r2_y"])) for e in es]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        corr = statistics.correlation(*zip(*pairs)) if len(pairs) > 2 else float("nan")
        last = es[-1]
        out.append("| " + " | ".join([
            es[0]["setting"] or "(the preset)", es[0]["seed"], str(held(es, "accuracy_x", "ceiling_x", frac)),
            str(held(es, "accuracy_y", "ceiling_y", frac)), f"{corr:.2f}",
            f"{float(last['accuracy_x']):.2f} / {float(last['accuracy_y']):.2f}",
            f"{float(last['r2_x']):.2f} / {float(last['r2_y']):.2f}"]) + " |")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", type=Path, help="a report directory (summary.csv, evals.csv)")
    p.add_argument("--frac", type=float, default=0.8, help="'accurate': accuracy >= frac x ceiling (default 0.8)")
    p.add_argument("--runs", action="store_true", help="also the per-run table of the axes apart")
    args = p.parse_args()
    print("\n".join(setting_table(args.report)))
    if args.runs:
        print()
        print("\n".join(run_table(args.report, args.frac)))


if __name__ == "__main__":
    main()
