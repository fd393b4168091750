"""Does watching slow training down? Real workers, with and without viewers on their event socket.

    .venv/bin/python bench/stream.py            # 3 alternating rounds of 200-step runs (~7 min idle)
    .venv/bin/python bench/stream.py --app      # also the real console attached, in tmux
    .venv/bin/python bench/stream.py --quick    # 1 round of 40-step runs

Each run is a real worker (``labconsole.runner.spawn``: its own process, writing events.jsonl
and serving the socket) training the quick preset for ``--steps`` steps (logging every 5 steps,
16-label evals only at the first and last step), while one of these watches it:
- headless: nobody;
- stuck client: a socket connected to the run's event socket that never reads a byte (the
  server must drop it, never wait for it);
- follow() viewer: a separate process iterating ``labconsole.stream.follow`` over the run,
  rendering nothing — the console's data path without its drawing;
- console (``--app``): the real ``labconsole`` app in a detached tmux pane (160x48), attached
  to the run with its "a" key, redrawing as events arrive.
Training speed is the median of the images/s the worker's own train events report; the ratio
to headless is taken per round (headless and each viewer run back to back, order alternating).
"""
from __future__ import annotations

import shutil
import socket
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
from labconsole.presets import load_preset  # noqa: E402
from labconsole.rundir import EVENTS, read_meta  # noqa: E402

QUICK = ROOT / "presets" / "quick.toml"
FOLLOWER = "import sys\nfrom labconsole.stream import follow\nn = sum(1 for _ in follow(sys.argv[1]))\n"


def run_once(args, runs_dir: Path, viewer: str) -> float:
    """Train one run with ``viewer`` watching; its training images/s (median of its train events)."""
    spec = load_preset(QUICK, [
        f"train.steps={args.steps}", "train.log_every=5", f"train.eval_every={args.steps}", "train.eval_at=[]",
        f"train.checkpoint_every={args.steps}", f"train.threads={args.threads}", "eval.n_samples=16",
    ]).runs[0]
    run_dir = runner.create_run(spec, "quick", runs_dir)
    proc = runner.spawn(run_dir)
    runner.wait_live(run_dir, proc)
    with watching(viewer, run_dir):
        proc.wait()
    speeds = [e.images_per_s for e in eventlog.read_events(run_dir / EVENTS) if isinstance(e, ev.Train)]
    if proc.returncode != 0 or len(speeds) < 2:
        sys.exit(f"stream: the worker of {run_dir} failed; see {run_dir / 'stderr.log'}")
    return median(speeds[1:])  # the first window holds the first steps' allocations


class watching:
    """Start ``viewer`` on the live run on enter; stop it on exit."""

    def __init__(self, viewer: str, run_dir: Path):
        self.viewer, self.run_dir = viewer, run_dir
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen | None = None
        self.session = f"bench-stream-{id(self)}"

    def __enter__(self):
        if self.viewer == "stuck client":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(read_meta(self.run_dir).socket)  # and never recv
        elif self.viewer == "follow() viewer":
            self.proc = subprocess.Popen([sys.executable, "-c", FOLLOWER, str(self.run_dir)], cwd=ROOT)
        elif self.viewer == "console":
            self._start_console()
        return self

    def _start_console(self) -> None:
        cmd = f"{sys.executable} -m labconsole.cli --runs-dir {self.run_dir.parent} --presets-dir {ROOT / 'presets'}"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.session, "-x", "160", "-y", "48", cmd], check=True)
        wait_screen(self.session, self.run_dir.name.split("-", 1)[1])  # the runs list shows "quick-<id>"
        subprocess.run(["tmux", "send-keys", "-t", self.session, "a"], check=True)
        wait_screen(self.session, self.run_dir.name)  # the header names the attached run in full

    def __exit__(self, *exc) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.proc is not None:
            self.proc.wait(timeout=30)  # follow() ends when the worker closes the socket
        if self.viewer == "console":
            subprocess.run(["tmux", "kill-session", "-t", self.session], check=False)


def wait_screen(session: str, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        if text in screen:
            return
        time.sleep(0.2)
    subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    sys.exit(f"stream: the console never showed {text!r} within {timeout:.0f} s")


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, help="training steps per run (default 200; quick 40)")
    p.add_argument("--rounds", type=int, help="alternating rounds (default 3; quick 1)")
    p.add_argument("--app", action="store_true", help="also the real console in tmux (needs tmux)")
    args = p.parse_args()
    args.steps = args.steps or (40 if args.quick else 200)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.app and shutil.which("tmux") is None:
        sys.exit("stream: --app needs tmux on PATH")
    res = Results("stream", args.quick, args.threads)
    viewers = ["headless", "stuck client", "follow() viewer"] + (["console"] if args.app else [])
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        runs = alternate({v: (lambda v=v: run_once(args, Path(tmp), v)) for v in viewers}, args.rounds)
    rows = []
    for viewer in viewers:
        ratio = median(a / b for a, b in zip(runs[viewer], runs["headless"]))
        res.add(f"{viewer.split()[0].split('(')[0]}_ips", median(runs[viewer]))
        res.add(f"{viewer.split()[0].split('(')[0]}_ratio", ratio)
        rows.append([viewer, median(runs[viewer]), spread(runs[viewer]), ratio])
    table(f"training with viewers (quick preset, {args.steps}-step worker runs, {args.threads} threads, "
          f"medians of {args.rounds} alternating rounds)", ["viewer", "images/s", "range", "x headless"], rows)
    worst = min(rows[1:], key=lambda r: r[3])
    res.finish(args, "; ".join(f"{r[0]} {r[3]:.2f}x" for r in rows[1:]) + f" of headless (worst: {worst[0]})")


if __name__ == "__main__":
    main()
