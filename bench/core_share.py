"""Two runs started from the console, one after the other: training speed with and without the
cores shared among the live runs of the runs directory (``labconsole.cores``, issue 15).

    .venv/bin/python bench/core_share.py                 # quick preset, 60 s windows, 2 rounds (~6 min)
    .venv/bin/python bench/core_share.py --window 20 --rounds 1

Each round starts run A through the console's backend (``Backend.start``, as the run form does),
waits until it trains, starts run B the same way, and reads both runs' images/s from their Train
events over the next ``--window`` seconds. *before*: each run takes every core (the preset's
``train.threads = 0``, pinned to ``os.cpu_count()``: what a console run did before the cores were
shared); *after*: ``Backend.start`` as it is (each worker takes its share of the cores and counts
again every ``cores.RECOUNT_S``: A starts alone on torch's default and gives up cores once B lives;
the window starts when A says so). The two are run in alternation (before, after, after, before,
...); the table gives the medians.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, alternate, load_note, median, parser, table  # noqa: E402
from labconsole import cores, eventlog, runner  # noqa: E402
from labconsole import events as ev  # noqa: E402
from labconsole.app.backend import Backend  # noqa: E402
from labconsole.presets import load_preset  # noqa: E402
from labconsole.rundir import pid_alive, read_meta  # noqa: E402


def images_per_s(run_dir: Path, since: float) -> float:
    """Median images/s of the run's Train events written after ``since`` (unix s); 0 if none."""
    rates = [e.images_per_s for e in eventlog.read_events(run_dir / "events.jsonl")
             if isinstance(e, ev.Train) and e.time >= since and e.images_per_s]
    return median(rates) if rates else 0.0


def trains(run_dir: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = run_dir / "events.jsonl"
        if path.exists() and any(isinstance(e, ev.Train) for e in eventlog.read_events(path)):
            return
        time.sleep(0.5)
    sys.exit(f"core_share: {run_dir.name} did not train within {timeout:.0f} s")


def recounted(run_dir: Path, timeout: float = 3 * cores.RECOUNT_S) -> None:
    """Wait until the run has moved its threads to its share ("CPU threads a -> b"); on a box where
    its share is what it had alone there is no such line: go on after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(isinstance(e, ev.Log) and e.message.startswith("CPU threads")
               for e in eventlog.read_events(run_dir / "events.jsonl")):
            return
        time.sleep(0.5)


def pair(shared: bool, window: float, work: Path) -> tuple[float, float]:
    """Start A, then B beside it; their images/s over ``window`` seconds once both train."""
    spec = load_preset(ROOT / "presets" / "quick.toml", ["train.steps=100000", "train.eval_every=100000",
                                                          # a Train event every step: an oversubscribed
                                                          # step takes seconds, and a window must see some
                                                          "train.eval_at=[]", "train.log_every=1"]).runs[0]
    if not shared:  # every run on every core, as before: the old start path
        train = dataclasses.replace(spec.config.train, threads=os.cpu_count() or 1)
        spec = dataclasses.replace(spec, config=dataclasses.replace(spec.config, train=train))
    runs = Path(tempfile.mkdtemp(prefix="shared-" if shared else "unshared-", dir=work))
    backend, started = Backend(), []
    start = backend.start if shared else (lambda s, p, r: runner.start(s, p, r))
    try:
        started.append(start(spec, "quick", runs))
        trains(started[0])
        started.append(start(spec, "quick", runs))
        trains(started[1])
        if shared:
            recounted(started[0])
        since = time.time()
        time.sleep(window)
        return images_per_s(started[0], since), images_per_s(started[1], since)
    finally:
        for run_dir in started:
            runner.stop(run_dir)
        for run_dir in started:
            gone(run_dir)


def gone(run_dir: Path, timeout: float = 300) -> None:
    """Wait until the stopped worker of ``run_dir`` has checkpointed and exited: a run oversubscribed
    10-40x takes minutes over its final checkpoint, and the next pair (or the temporary dir's
    removal) must not start beside it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = read_meta(run_dir)
        if not pid_alive(meta.pid, meta.pid_start):
            return
        time.sleep(0.5)
    sys.exit(f"core_share: {run_dir.name} did not stop within {timeout:.0f} s")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--window", type=float, default=60.0, help="seconds both runs are timed (default: 60)")
    p.add_argument("--rounds", type=int, default=2, help="pairs per variant, alternating (default: 2)")
    args = p.parse_args()
    if not args.window > 0 or args.rounds < 1:
        p.error(f"--window must be > 0 seconds and --rounds >= 1; got {args.window:g} and {args.rounds}")
    # A SIGTERM (timeout, kill) unwinds like Ctrl-C, so pair()'s finally stops the workers it
    # started: they lead their own sessions and would train on after the bench.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-core-share-") as tmp:
        got = {"before": [], "after": []}

        def timed(name: str) -> float:
            got[name].append(pair(name == "after", args.window, Path(tmp)))
            print(f"{name}: run A {got[name][-1][0]:.0f}, run B {got[name][-1][1]:.0f} images/s", flush=True)
            return 0.0

        alternate({"before": lambda: timed("before"), "after": lambda: timed("after")}, args.rounds)
    rows = []
    for name, pairs in got.items():
        a, b = median(x for x, _ in pairs), median(y for _, y in pairs)
        rows.append([name, f"{a:.0f}", f"{b:.0f}", f"{a + b:.0f}"])
    note = load_note()
    table(f"two console runs of the quick preset, images/s over {args.window:.0f} s, medians of {args.rounds}"
          + (f" [{note}]" if note else ""), ["cores", "run A", "run B", "both"], rows)
    before, after = (float(r[3]) for r in rows)
    print(f"\nSUMMARY core_share: both runs together {after:.0f} images/s shared vs {before:.0f} unshared "
          f"({after / before:.2f}x)" if before else "\nSUMMARY core_share: no Train events in the window")


if __name__ == "__main__":
    main()
