"""The console process never imports torch or umap, and opens in about a second (issue 5)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "umap", "numba", "sklearn", "cv2")

PROBE = textwrap.dedent("""
    import asyncio, json, sys, time
    t0 = time.perf_counter()
    sys.path.insert(0, {tests!r})
    from pathlib import Path
    from labconsole.app import make_app
    from test_app_helpers import wait_for, write_run

    runs = Path({runs!r})
    run_dir = write_run(runs, evals=3)
    t_build = time.perf_counter()
    app = make_app(runs, Path({presets!r}))

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            t_open = time.perf_counter() - t_build
            await wait_for(pilot, lambda: app.sidebar.presets and app.sidebar.runs, timeout=60, what="lists")
            t_lists = time.perf_counter() - t_build
            app.monitor.attach(run_dir)
            monitor = app.monitor
            await wait_for(pilot, lambda: monitor.samples is not None and monitor.view.status == "completed",
                           timeout=30, what="replay")
            heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
            print(json.dumps(dict(open=t_open, lists=t_lists, heavy=heavy, presets=len(app.sidebar.presets))))

    asyncio.run(main())
""")


def test_the_console_never_imports_torch_or_umap_and_opens_fast(tmp_path):
    """Builds the app in a fresh interpreter, lists the repo's presets and a run, attaches to the
    run (history, samples), then checks sys.modules."""
    script = PROBE.format(tests=str(REPO / "tests"), runs=str(tmp_path / "runs"), presets=str(REPO / "presets"),
                          heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["presets"] > 0
    assert result["heavy"] == [], f"the console process imported {result['heavy']}"
    # How fast it opens is a benchmark's business (bench/console_open.py), not a test's.
