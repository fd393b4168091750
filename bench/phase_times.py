"""Summarise finished runs for the quick-preset search: speed, when each phase was reached, where
the run ended. Reads only ``events.jsonl``, so it works on any run directory.

    python bench/phase_times.py runs/<id> [runs/<id> ...]

Prints a markdown table (one row per run): images/s (median of the train events), the first step
and wall-clock minutes (from the run_started event) in phase B and in phase C, the final accuracy
against its ceiling and the final mean R² against its step-0 baseline.
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labconsole import eventlog  # noqa: E402
from labconsole import events as ev  # noqa: E402


def summarise(run_dir: Path) -> dict:
    events = eventlog.read_events(run_dir / "events.jsonl")
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    evals = [e for e in events if isinstance(e, ev.Eval)]
    speeds = [e.images_per_s for e in events if isinstance(e, ev.Train)]
    first = {p: next((e for e in evals if e.phase == p), None) for p in ("B", "C")}
    cfg = started.config
    return dict(
        run=run_dir.name, prediction=cfg["diffusion"]["prediction"], coord=cfg["model"]["coord_channels"],
        sigma=cfg["data"]["sigma"], dx=cfg["data"]["dx"], margin=cfg["data"]["margin"], seed=cfg["train"]["seed"],
        device=started.device, ips=statistics.median(speeds) if speeds else float("nan"),
        **{f"{p}_step": (e.step if e else None) for p, e in first.items()},
        **{f"{p}_min": ((e.time - started.time) / 60 if e else None) for p, e in first.items()},
        end_step=evals[-1].step, acc=evals[-1].accuracy, ceiling=evals[-1].ceiling,
        r2=evals[-1].r2_mean, r2_0=evals[0].r2_mean,
    )


def _at(step, minutes) -> str:
    return "never" if step is None else f"{minutes:.1f} min (step {step})"


def main(paths: list[str]) -> None:
    print("| setting | seed | device | images/s | phase B at | phase C at | end: accuracy / ceiling | end: R² (step 0) |")
    print("|---|---|---|---|---|---|---|---|")
    for path in paths:
        s = summarise(Path(path))
        setting = f"{s['prediction']}, sigma {s['sigma']:g}, dx {s['dx']:g}" + (f", margin {s['margin']:g}" if s["margin"] else "") + (", coord channels" if s["coord"] else "")
        print(f"| {setting} | {s['seed']} | {s['device']} | {s['ips']:.0f} | {_at(s['B_step'], s['B_min'])} | "
              f"{_at(s['C_step'], s['C_min'])} | {s['acc']:.2f} / {s['ceiling']:.2f} at step {s['end_step']} | "
              f"{s['r2']:.2f} ({s['r2_0']:.2f}) |")


if __name__ == "__main__":
    main(sys.argv[1:])
