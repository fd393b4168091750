"""Time to phase C: how long the CPU demo takes to show the paper's phases, as a user runs it.

    .venv/bin/python bench/time_to_c.py                  # presets/quick.toml, seeds 0 1 2 (~10 min idle)
    .venv/bin/python bench/time_to_c.py --seeds 0 --set train.threads=1
    .venv/bin/python bench/time_to_c.py --quick          # 120 steps, seed 0: a smoke run (no phase C)

Runs ``labconsole --batch PRESET --runs-dir <tmp> --set train.seed=N [--set ...]`` once per seed,
one after another, and reads the run's ``events.jsonl``: the wall time from launching the command
to the first eval event in phase B, the first in phase C (each eval event is written when that
eval has finished) and the run_finished event, plus the worker's start-up (launch to
run_started) and the step at which each phase first showed.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Results, median, parser, table  # noqa: E402
from labconsole import eventlog  # noqa: E402
from labconsole import events as ev  # noqa: E402
from labconsole.rundir import EVENTS  # noqa: E402

LABCONSOLE = Path(sys.executable).with_name("labconsole")


def run_seed(preset: Path, seed: int, overrides: list[str], runs_dir: Path) -> dict:
    """One batch run; seconds from launch to start, phase B, phase C and the end (None: never)."""
    sets = [a for o in [f"train.seed={seed}", *overrides] for a in ("--set", o)]
    cmd = [str(LABCONSOLE), "--batch", str(preset), "--runs-dir", str(runs_dir), *sets]
    launched = time.time()  # event times are unix seconds
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"time_to_c: {' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    run_dir = max((p for p in runs_dir.iterdir() if p.name != "sweeps"), key=lambda p: p.stat().st_mtime)
    events = eventlog.read_events(run_dir / EVENTS)
    started = next(e for e in events if isinstance(e, ev.RunStarted))
    evals = [e for e in events if isinstance(e, ev.Eval)]
    finished = next(e for e in events if isinstance(e, ev.RunFinished))
    first = {p: next((e for e in evals if e.phase == p), None) for p in ("B", "C")}
    return dict(
        seed=seed, start=started.time - launched,
        **{p: (e.time - launched if e else None) for p, e in first.items()},
        **{f"{p}_step": (e.step if e else None) for p, e in first.items()},
        end=finished.time - launched, steps=finished.step, device=started.device,
        accuracy=evals[-1].accuracy, ceiling=evals[-1].ceiling, r2=evals[-1].r2_mean,
        eval_s=median(e.eval_seconds for e in evals),
    )


def _at(seconds: float | None, step: int | None) -> str:
    return "never" if seconds is None else f"{seconds / 60:.1f} min (step {step})"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--preset", type=Path, default=ROOT / "presets" / "quick.toml")
    p.add_argument("--seeds", type=int, nargs="+", help="train.seed values, run one after another (default 0 1 2)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="more overrides for every run (as labconsole --set)")
    args = p.parse_args()
    args.seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    if args.quick:
        args.overrides = ["train.steps=120", "train.eval_at=[50]", "train.eval_every=60", *args.overrides]
    if not LABCONSOLE.exists():
        sys.exit(f"time_to_c: no {LABCONSOLE}; install the project: .venv/bin/pip install -e .")
    res = Results("time_to_c", args.quick, args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-time-to-c-") as tmp:
        found = [run_seed(args.preset, seed, args.overrides, Path(tmp)) for seed in args.seeds]
    rows = []
    for f in found:
        rows.append([f["seed"], f["device"], f"{f['start']:.1f} s", _at(f["B"], f["B_step"]), _at(f["C"], f["C_step"]),
                     f"{f['end'] / 60:.1f} min (step {f['steps']})", f"{f['accuracy']:.2f} / {f['ceiling']:.2f}",
                     f["r2"], f["eval_s"]])
        for key in ("start", "B", "C", "end"):
            if f[key] is not None:
                res.add(f"seed{f['seed']}_{key}_s", f[key])
    table(f"{args.preset.name}: wall time from launching labconsole --batch" +
          (f" (--set {' '.join(args.overrides)})" if args.overrides else ""),
          ["seed", "device", "worker up", "phase B", "phase C", "end", "acc / ceiling", "R2", "eval s"], rows)
    reached = [f["C"] for f in found if f["C"] is not None]
    summary = (f"phase C after {median(reached) / 60:.1f} min (median of {len(reached)}/{len(found)} seeds)"
               if reached else f"phase C not reached by any of {len(found)} seeds")
    res.finish(args, f"{summary}; runs end after {median(f['end'] for f in found) / 60:.1f} min")


if __name__ == "__main__":
    main()
