"""How fast the console opens: a fresh interpreter builds the app, lists presets and runs, replays a run.

    .venv/bin/python bench/console_open.py            # 5 fresh processes
    .venv/bin/python bench/console_open.py --quick    # 2

Each round is a new Python process (what a user pays on every ``labconsole``): import the app,
open it headless at 120x40 (Textual's test driver), wait until the presets of this checkout and
one finished run are listed, then attach to that run and wait until its history and samples are
drawn. Prints the median of each stage. (This used to be a timed assertion in
tests/test_app_imports.py; timings belong here.)
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, Results, median, parser, spread, table  # noqa: E402

PROBE = textwrap.dedent("""
    import asyncio, json, sys, time
    t0 = time.perf_counter()
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from labconsole.app import make_app
    from test_app_helpers import wait_for, write_run

    runs = Path({runs!r})
    run_dir = write_run(runs, evals=3)
    t_import = time.perf_counter() - t0
    app = make_app(runs, Path({presets!r}))

    async def main():
        start = time.perf_counter()
        async with app.run_test(size=(120, 40)) as pilot:
            t_open = time.perf_counter() - start
            await wait_for(pilot, lambda: app.sidebar.presets and app.sidebar.runs, timeout=60, what="lists")
            t_lists = time.perf_counter() - start
            app.monitor.attach(run_dir)
            await wait_for(pilot, lambda: app.monitor.samples is not None and app.monitor.view.status == "completed",
                           timeout=60, what="replay")
            t_replay = time.perf_counter() - start
            print(json.dumps(dict(imports=t_import, open=t_open, lists=t_lists, replay=t_replay)))

    asyncio.run(main())
""")

STAGES = ("imports", "open", "lists", "replay")


def one_round(tmp: Path, k: int) -> dict[str, float]:
    """One fresh process; seconds of each stage."""
    script = PROBE.format(tests=str(ROOT / "tests"), runs=str(tmp / f"runs{k}"), presets=str(ROOT / "presets"))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"console_open: the probe failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, help="fresh processes (default 5; quick 2)")
    args = p.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    res = Results("console_open", args.quick, args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-console-open-") as tmp:
        found = [one_round(Path(tmp), k) for k in range(rounds)]
    rows = []
    for stage in STAGES:
        values = [f[stage] for f in found]
        res.add(f"{stage}_s", median(values))
        rows.append([stage, f"{median(values):.2f} s", spread(values)])
    table(f"console start-up, {rounds} fresh processes (seconds from the process start / from opening)",
          ["stage", "median", "spread"], rows)
    res.finish(args, f"console open in {median(f['open'] for f in found):.2f} s, "
                     f"run replayed {median(f['replay'] for f in found):.2f} s after opening")


if __name__ == "__main__":
    main()
