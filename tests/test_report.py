"""A real tiny sweep (2 settings x 2 seeds), interrupted by Ctrl-C and resumed as a whole, then
reported: aggregates against a computation by hand from the events files, a censored setting, the
CSVs read back, runs grouped ad hoc, and the report's bad input.

One sweep is shared by the whole module (about a minute on 2 cores). Its second setting sets
eval.phase_r2_min = 1.0, which no UMAP R² reaches: phase C is censored there by construction.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import signal
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from labconsole import report, runner
from labconsole import sweep as sweeps
from labconsole.aggregate import Censored, Member, Spread, aggregate, curve, held_from, metric_names, steps_to
from labconsole.events import Eval
from labconsole.runview import replay
from labconsole.cli import main
from labconsole.presets import load_preset
from labconsole.rundir import pid_alive, read_meta
from runs_helpers import UMAP_EVAL, PRESETS, labconsole, popen_labconsole, set_args, tiny, wait_for
from test_app_helpers import make_eval

SETS = tiny(UMAP_EVAL, "eval.phase_single_min=0.0", "eval.phase_accuracy_frac=0.0",
            "sweep.data.sigma,eval.phase_r2_min=[[1.0,0.0],[2.0,1.0]]", "sweep.seeds=[0,1]", seeds=False)
OPEN, CENSORED = "sigma=1.0 phase_r2_min=0.0", "sigma=2.0 phase_r2_min=1.0"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="signals to a process group")


# -- aggregation on crafted runs: the cases a tiny real sweep may not show ---------------------


def view_of(*evals: tuple[int, float, str]):
    return replay([make_eval(step, acc, phase) for step, acc, phase in evals])


def test_steps_to_c_keep_censored_runs_beside_the_reached_ones():
    views = [view_of((0, 0.1, "A"), (100, 0.5, "B"), (200, 0.8, "C")),
             view_of((0, 0.1, "A"), (100, 0.7, "C"), (200, 0.6, "B"), (300, 0.8, "C")),  # flaps
             view_of((0, 0.1, "A"), (100, 0.2, "B"), (900, 0.3, "B")),
             None]  # never started: no data, not censored
    first = steps_to(views, "C")
    assert first.per_run == (200, 100, Censored(900), None) and first.n_reached == 2
    assert first.reached == Spread(150.0, 100.0, 200.0, 50.0, 2)
    assert first.describe() == "150 ± 50 [100-200], 2 of 4; 1 censored (> 900)"
    assert steps_to(views, "C", held=True).per_run == (200, 300, Censored(900), None)
    assert held_from(views[1], "B") == 100 and steps_to(views, "B").per_run == (100, 100, 100, None)


def test_curves_align_on_the_union_of_eval_steps_and_skip_nan():
    a = view_of((0, 0.0, "A"), (100, 0.4, "B"), (200, 0.8, "C"))
    b = view_of((0, 0.2, "A"), (200, float("nan"), "B"), (300, 0.9, "C"))  # no eval at 100; NaN at 200
    c = curve([a, b], "accuracy")
    assert c.steps == (0, 100, 200, 300) and c.n == (2, 1, 1, 1)
    assert c.mean == pytest.approx((0.1, 0.4, 0.8, 0.9)) and c.lo == (0.0, 0.4, 0.8, 0.9) and c.hi == (0.2, 0.4, 0.8, 0.9)


def test_the_best_seed_is_the_best_terminal_accuracy_and_every_eval_number_is_aggregated():
    grid = [sweeps.Setting("s", {})]
    members = [Member("s", seed, f"r{seed}", view_of((0, 0.1, "A"), (100, acc, "C")))
               for seed, acc in ((0, 0.5), (1, 0.9), (2, 0.9))]
    (agg,) = aggregate(grid, members)
    assert (agg.best.seed, agg.best.accuracy) == (1, 0.9)  # the first of equals
    assert set(agg.terminal) == {"step", *(m for m in metric_names() if getattr(make_eval(0, 0.0, "A"), m) is not None)}

    @dataclasses.dataclass(frozen=True)
    class Richer(Eval):  # a failure-mode field added to the event later joins by itself
        wrong_place: float | None = None

    assert metric_names(Richer)[-1] == "wrong_place"
    with pytest.raises(ValueError, match="grid lacks"):
        aggregate(grid, [Member("t", 0)])


# -- the real sweep ------------------------------------------------------------------------------


def lines_of(run_dir: Path) -> list[dict]:
    """The events of a run as plain JSON objects: the hand computation reads nothing else."""
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def evals_by_hand(run_dir: Path) -> list[dict]:
    """Evals in step order; a resumed segment drops what its predecessor did after the checkpoint."""
    kept: dict[int, dict] = {}
    for e in lines_of(run_dir):
        if e["type"] == "run_started" and e["segment"] > 0:
            kept = {s: v for s, v in kept.items() if s <= e["start_step"]}
        elif e["type"] == "eval":
            kept[e["step"]] = e
    return [kept[s] for s in sorted(kept)]


def finished(run_dir: Path) -> str:
    ends = [e["status"] for e in lines_of(run_dir) if e["type"] == "run_finished"]
    return ends[-1] if ends else ""


def kill_workers(runs: Path) -> None:
    for meta_file in runs.rglob("meta.json"):
        meta = read_meta(meta_file.parent)
        if meta.pid > 0 and pid_alive(meta.pid, meta.pid_start):
            os.killpg(meta.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The sweep run with --jobs 1, Ctrl-C once the second run started, then --resume SWEEP --jobs 2."""
    runs = tmp_path_factory.mktemp("sweep")
    proc = popen_labconsole("--batch", str(PRESETS / "quick.toml"), *set_args(SETS), "--runs-dir", str(runs),
                            "--jobs", "1", "--no-figures", cwd=runs)
    try:
        path = wait_for(lambda: next((runs / "sweeps").glob("*/sweep.json"), None), what="the manifest").parent

        def second_run_started() -> bool:
            # Its worker now stops gracefully on a signal; its step-0 eval takes seconds: the
            # signal lands before its first step ends, which is where training polls for a stop.
            second = sweeps.load(path).run_path(1)
            return second is not None and any(e["type"] == "run_started" for e in lines_of(second))

        wait_for(second_run_started, timeout=180, what="the second run to start")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        made = sweeps.load(path)
        states = [finished(made.run_path(i)) if made.run_path(i) else "planned" for i in range(4)]
        before = SimpleNamespace(code=proc.returncode, out=out + err, sweep=made, states=states,
                                 readme=(path / "report" / "README.txt").read_text(),
                                 first_events=(sweeps.load(path).run_path(0) / "events.jsonl").read_bytes())
        after = labconsole("--batch", "--resume", str(path), "--jobs", "2", "--no-figures", cwd=runs)
        yield SimpleNamespace(runs=runs, path=path, before=before, after=after, sweep=sweeps.load(path))
    finally:
        if proc.poll() is None:
            proc.kill()
        kill_workers(runs)


def test_ctrl_c_stops_the_sweep_and_reports_what_it_has(sweep):
    b = sweep.before
    assert b.code == 130, b.out
    assert b.states[0] == "completed" and "stopped" in b.states and b.states[-1] == "planned", b.states
    assert f"resume the sweep with: labconsole --batch --resume {sweep.path}" in b.out
    assert "never started (no run dir): left out" in b.readme and "stopped at step" in b.readme


def test_resume_skips_completed_runs_resumes_stopped_ones_and_starts_the_rest(sweep):
    assert sweep.after.returncode == 0, sweep.after.stdout + sweep.after.stderr
    m = sweep.sweep.manifest
    assert all(r.run_dir for r in m.runs) and sweeps.statuses(sweeps.read_views(sweep.sweep)) == ["completed"] * 4
    assert (sweep.sweep.run_path(0) / "events.jsonl").read_bytes() == sweep.before.first_events  # skipped
    for i, run in enumerate(m.runs):
        starts = [(e["segment"], e["start_step"]) for e in lines_of(sweep.sweep.run_path(i)) if e["type"] == "run_started"]
        was = sweep.before.states[i]
        if was == "stopped":
            assert len(starts) == 2 and starts[1][0] == 1 and starts[1][1] > 0  # from its checkpoint
        else:
            assert starts == [(0, 0)], (was, starts)
        assert [e["step"] for e in evals_by_hand(sweep.sweep.run_path(i))] == [0, 6, 12]
    assert "report: " in sweep.after.stdout and "never started" not in (sweep.path / "report" / "README.txt").read_text()


def by_hand(sweep) -> dict[str, dict]:
    """Per setting, from the events files alone: terminal accuracies, first C, best seed, curves."""
    out: dict[str, dict] = {}
    for i, run in enumerate(sweep.sweep.manifest.runs):
        evals = evals_by_hand(sweep.sweep.run_path(i))
        first_c = next((e["step"] for e in evals if e["phase"] == "C"), Censored(evals[-1]["step"]))
        s = out.setdefault(run.setting, {"acc": [], "c": [], "seeds": [], "curve": {}})
        s["acc"].append(evals[-1]["accuracy"])
        s["c"].append(first_c)
        s["seeds"].append(run.seed)
        for e in evals:
            s["curve"].setdefault(e["step"], []).append(e["r2_mean"])
    return out


def test_aggregates_equal_a_computation_by_hand_from_the_events_files(sweep):
    data = report.collect([sweep.path])
    hand = by_hand(sweep)
    assert [a.setting.label for a in data.aggregates] == [OPEN, CENSORED]
    for agg in data.aggregates:
        h = hand[agg.setting.label]
        acc = agg.terminal["accuracy"]
        assert (acc.mean, acc.min, acc.max) == pytest.approx((statistics.fmean(h["acc"]), min(h["acc"]), max(h["acc"])))
        assert acc.std == pytest.approx(statistics.pstdev(h["acc"])) and acc.n == 2
        assert agg.first_c.per_run == tuple(h["c"])
        best = max(range(2), key=lambda k: h["acc"][k])  # the first of equals, as max() keeps
        assert agg.best.seed == h["seeds"][best]
        r2 = agg.curves["r2_mean"]
        assert r2.steps == tuple(sorted(h["curve"])) and r2.n == (2, 2, 2)
        assert r2.mean == pytest.approx([statistics.fmean(h["curve"][s]) for s in r2.steps])
        assert r2.lo == pytest.approx([min(h["curve"][s]) for s in r2.steps])
        assert r2.hi == pytest.approx([max(h["curve"][s]) for s in r2.steps])


def test_a_setting_that_never_reaches_c_is_censored_not_dropped(sweep):
    censored = report.collect([sweep.path]).aggregates[1]
    assert censored.first_c.per_run == (Censored(12), Censored(12)) and censored.first_c.reached is None
    assert censored.c_held.censored == (Censored(12), Censored(12))
    assert censored.first_c.describe() == "not reached (> 12, > 12)"
    assert "first C: not reached (> 12, > 12)" in sweep.after.stdout  # the batch's per-setting line


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_csvs_read_back_with_the_expected_rows_and_columns(sweep):
    out = sweep.path / "report"
    evals, summary, curves = (read_csv(out / f) for f in ("evals.csv", "summary.csv", "curves.csv"))
    hand = by_hand(sweep)
    assert len(evals) == 4 * 3 and {r["sweep"] for r in evals} == {sweep.sweep.manifest.id}
    for col in ("setting", "seed", "run_id", "data.sigma", "eval.phase_r2_min", "step", "phase", "accuracy",
                "accuracy_x", "accuracy_y", "r2_x", "r2_y", "r2_mean", "accuracy_ood", "blobs_0", "blobs_many"):
        assert col in evals[0], col
    first = evals_by_hand(sweep.sweep.run_path(0))[0]
    row = next(r for r in evals if r["run_id"] == sweep.sweep.manifest.runs[0].run_dir and r["step"] == "0")
    assert float(row["r2_mean"]) == first["r2_mean"] and row["phase"] == first["phase"] and row["data.sigma"] == "1.0"
    assert [r["setting"] for r in summary] == [OPEN, CENSORED]
    for r in summary:
        h = hand[r["setting"]]
        assert float(r["terminal_accuracy_mean"]) == pytest.approx(statistics.fmean(h["acc"]))
        assert r["n_seeds"] == "2" and r["seeds"] == "0 1"
        n_cens = sum(isinstance(c, Censored) for c in h["c"])
        assert int(r["first_C_censored"]) == n_cens and int(r["first_C_reached"]) == 2 - n_cens
    assert summary[1]["first_C_censored_by"] == "> 12;> 12" and summary[1]["first_C_mean"] == ""
    assert {r["metric"] for r in curves} >= {"accuracy", "accuracy_x", "accuracy_y", "r2_x", "r2_y", "r2_mean"}
    assert len([r for r in curves if r["metric"] == "accuracy"]) == 2 * 3  # settings x eval steps


def test_runs_given_directly_are_grouped_by_the_keys_that_differ(sweep, tmp_path):
    m = sweep.sweep.manifest
    one, three = (str(sweep.sweep.run_path(i)) for i in (0, 2))
    result = labconsole("report", one, three, "--no-figures", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / f"report-{m.runs[0].run_dir}-and-1-more"
    # --no-figures: the CSVs and README.txt, nothing drawn, and the README says how to get them
    assert sorted(p.name for p in out.iterdir()) == ["README.txt", "curves.csv", "evals.csv", "summary.csv"]
    assert "figures: not drawn (--no-figures)" in (out / "README.txt").read_text()
    summary = read_csv(out / "summary.csv")
    assert [(r["setting"], r["data.sigma"], r["eval.phase_r2_min"]) for r in summary] == [
        (OPEN, "1.0", "0.0"), (CENSORED, "2.0", "1.0")]
    assert str(out) in result.stdout or out.name in result.stdout
    assert main(["report", one, "--out", str(tmp_path / "single"), "--no-figures"]) == 0
    assert len(read_csv(tmp_path / "single" / "evals.csv")) == 3


def test_bad_input_gives_one_line_and_exit_2(sweep, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    spec = load_preset(PRESETS / "quick.toml", tiny()).runs[0]
    unstarted = runner.create_run(spec, "quick", tmp_path / "runs")
    other = tmp_path / "other-run"
    shutil.copytree(sweep.sweep.run_path(0), other)
    text = (other / "events.jsonl").read_text().replace('"preset":"quick"', '"preset":"hole"')
    (other / "events.jsonl").write_text(text)
    cases = [
        ([str(tmp_path / "missing")], "no such file or directory"),
        ([str(tmp_path / "empty")], "neither a run directory"),
        ([str(unstarted)], "no evals yet"),
        ([str(sweep.sweep.run_path(0)), str(other)], "different presets"),
        ([str(sweep.path), str(sweep.sweep.run_path(0))], "give one sweep alone"),
        ([str(sweep.path), "--out", str(tmp_path / "file")], "not a directory"),
    ]
    for argv, named in cases:
        assert main(["report", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], (argv, err)
