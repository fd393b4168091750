"""Does the console's sweep view slow training? A sweep's 4 runs trained at once, watched or not.

    .venv/bin/python bench/sweep_view.py            # 3 alternating rounds of 4 x 150-step runs
    .venv/bin/python bench/sweep_view.py --quick    # 1 round of 4 x 40-step runs

Each round and watcher records a sweep of the quick preset with 4 seeds (``labconsole.sweep``, as
``labconsole --batch`` does), creates its 4 run dirs, starts the watcher, then trains the 4 runs at
once as real workers (``runner.spawn``; ``--threads`` is shared among them, each at least one: 4
trainers on this box's 2 cores, so any CPU a watcher takes is CPU a trainer loses). Watchers:
- headless: nobody;
- follower: a process polling ``SweepFollower`` once a second, as the view's thread worker does
  (every run's events file read incrementally, folded, re-aggregated), drawing nothing;
- console: the real ``labconsole`` in a detached tmux pane (160x48) with the sweep open (key w):
  the settings table live, the steps-to-C figure and the curves redrawn as evals land.
Each run evaluates at its first, middle and last step (16 labels), so the view has evals to draw.
Training speed of a sweep: the median over its runs of each run's median train-event images/s
(those leave out eval and checkpoint time); the ratio to headless is taken per round (order
alternating). Target: the console at >= 0.95x headless. Beside it, the watcher's own CPU time
over the training in % of one core (/proc): a figure the box's load does not blur.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Results, alternate, median, parser, spread, table  # noqa: E402
from labconsole import eventlog  # noqa: E402
from labconsole import events as ev  # noqa: E402
from labconsole import runner  # noqa: E402
from labconsole import sweep as sweeps  # noqa: E402
from labconsole.presets import load_preset  # noqa: E402
from labconsole.rundir import EVENTS  # noqa: E402

QUICK = ROOT / "presets" / "quick.toml"
RUNS = 4
WATCHERS = ("headless", "follower", "console")
FOLLOWER = """import sys, time
from labconsole.app.backend import SweepFollower
from labconsole.runview import FINAL
follower = SweepFollower(sys.argv[1])
while not all(s in FINAL for s in follower.poll().statuses):
    time.sleep(1.0)
"""


def overrides(steps: int, threads: int) -> list[str]:
    return [f"train.steps={steps}", "train.log_every=5", f"train.eval_every={max(1, steps // 2)}", "train.eval_at=[]",
            f"train.checkpoint_every={steps}", f"train.threads={threads}", "eval.n_samples=16",
            f"sweep.seeds={list(range(RUNS))}"]


def run_sweep(args, runs_dir: Path, watcher: str) -> tuple[float, float]:
    """Record a 4-run sweep, start ``watcher``, train the runs at once; their images/s (median),
    and the watcher's CPU time over the training, in % of one core (0 for headless)."""
    sets = overrides(args.steps, max(1, args.threads // RUNS))
    preset = load_preset(QUICK, sets)
    sweep = sweeps.create(preset, sets, runs_dir)
    dirs = []
    for i, spec in enumerate(preset.runs):
        dirs.append(runner.create_run(spec, preset.name, runs_dir))
        sweep.record(i, dirs[-1])
    with Watching(watcher, sweep.dir) as watching:
        cpu0, t0 = watching.cpu_seconds(), time.monotonic()
        procs = [runner.spawn(d) for d in dirs]
        for proc in procs:
            proc.wait()
        cpu_share = 100 * (watching.cpu_seconds() - cpu0) / (time.monotonic() - t0)
    speeds = []
    for run_dir, proc in zip(dirs, procs):
        ips = [e.images_per_s for e in eventlog.read_events(run_dir / EVENTS) if isinstance(e, ev.Train)]
        if proc.returncode != 0 or len(ips) < 2:
            sys.exit(f"sweep_view: the worker of {run_dir} failed; see {run_dir / 'stderr.log'}")
        speeds.append(median(ips[1:]))  # the first window holds the first steps' allocations
    return median(speeds), cpu_share


class Watching:
    """Start ``watcher`` on the sweep on enter (ready before any worker starts); stop it on exit."""

    def __init__(self, watcher: str, sweep_dir: Path):
        self.watcher, self.sweep_dir = watcher, sweep_dir
        self.proc: subprocess.Popen | None = None
        self.session = f"bench-sweep-view-{id(self)}"
        self.pid = 0  # the watcher's process (the console: the pane's python)

    def __enter__(self):
        if self.watcher == "follower":
            self.proc = subprocess.Popen([sys.executable, "-c", FOLLOWER, str(self.sweep_dir)], cwd=ROOT)
            self.pid = self.proc.pid
        elif self.watcher == "console":
            runs_dir = self.sweep_dir.parent.parent
            cmd = f"exec {sys.executable} -m labconsole.cli --runs-dir {runs_dir} --presets-dir {ROOT / 'presets'}"
            subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "160", "-y", "48", cmd],
                           check=True, cwd=ROOT)
            self.wait_screen(f"quick · {RUNS} runs")  # the sidebar lists the sweep
            subprocess.run(["tmux", "send-keys", "-t", self.session, "w"], check=True)
            self.wait_screen("seeds ✓/●/all")  # the sweep view's table
            pane = subprocess.run(["tmux", "display-message", "-p", "-t", self.session, "#{pane_pid}"],
                                  capture_output=True, text=True, check=True)
            self.pid = int(pane.stdout.strip())
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the watcher's process has used so far (0 without one)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ValueError, IndexError):
            return 0.0  # headless, or the process is gone
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            self.proc.wait(timeout=60)  # the follower ends once every run is over
        if self.watcher == "console":
            subprocess.run(["tmux", "kill-session", "-t", self.session], check=False)

    def wait_screen(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", self.session],
                                    capture_output=True, text=True).stdout
            if text in screen:
                return
            time.sleep(0.2)
        subprocess.run(["tmux", "kill-session", "-t", self.session], check=False)
        sys.exit(f"sweep_view: the console never showed {text!r} within {timeout:.0f} s")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, help="training steps per run (default 150; quick 40)")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 3; quick 1)")
    args = p.parse_args()
    args.steps = args.steps or (40 if args.quick else 150)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if shutil.which("tmux") is None:
        sys.exit("sweep_view: needs tmux on PATH (the console runs in a tmux pane)")
    res = Results("sweep_view", args.quick, args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-view-") as tmp:
        runs = alternate({w: (lambda w=w: run_sweep(args, Path(tmp), w)) for w in WATCHERS}, args.rounds)
    rows = []
    for watcher in WATCHERS:
        ips, cpu = [r[0] for r in runs[watcher]], [r[1] for r in runs[watcher]]
        ratio = median(a / b[0] for a, b in zip(ips, runs["headless"]))
        res.add(f"{watcher}_ips", median(ips))
        res.add(f"{watcher}_ratio", ratio)
        res.add(f"{watcher}_cpu_pct", median(cpu))
        rows.append([watcher, median(ips), spread(ips), ratio, median(cpu)])
    table(f"training {RUNS} runs of a sweep at once, watched or not (quick preset, {args.steps}-step runs, "
          f"{max(1, args.threads // RUNS)} thread(s) each, medians of {args.rounds} alternating rounds)", ["watcher", "images/s per run", "range",
                                                                          "x headless", "watcher CPU %"], rows)
    res.finish(args, f"follower {rows[1][3]:.2f}x, console sweep view {rows[2][3]:.2f}x of headless "
                     f"(target >= 0.95x); the console used {rows[2][4]:.1f}% of a core")


if __name__ == "__main__":
    main()
