"""Headless reports: ``labconsole report RUN_OR_SWEEP... [--out DIR]`` (DESIGN §7).

A small pipeline, each step usable alone::

    data = collect(paths)            # one sweep (its manifest), or run dirs as an ad-hoc group
    files = write_csvs(data, out)    # evals.csv, summary.csv, curves.csv
    files += write_figures(data, out)  # PNG / PDF: by labconsole.figures, when it is installed
    write_notes(data, out, ...)      # README.txt: what is here, how to read it, what was left out

``write_report`` runs them all. Several run dirs given directly are grouped by the config keys
whose values differ between them (the seed apart); they must come from one preset.

A preset file that needs no training (``kind = "percolation"``) is reported from its table
instead: ``preset_report`` prints it and writes percolation.csv, its figure and README.txt.

Bad input raises ``ReportError`` (one line; the CLI exits 2). What a report cannot use — a run
never started, a run without evals — is left out and said, in stdout and in README.txt; a run
cut short is kept with the evals it has, and said too.

No Textual, no torch; matplotlib only inside labconsole.figures, imported lazily here.
"""
from __future__ import annotations

import csv
import importlib
import importlib.util
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, TextIO

import labconsole
from labconsole.aggregate import (CURVE_METRICS, Member, SettingAggregate, StepsTo, aggregate, describe,
                                  metric_names, number_fields)
from labconsole.presets import flatten
from labconsole.rundir import CONFIG, read_meta, write_atomic
from labconsole.runview import RunView, read_run
from labconsole.sweep import Setting, Sweep, SweepError, is_sweep, load, read_views

FIGURES_MODULE = "labconsole.figures"  # write_figures(data, out) -> (paths, notes); needs matplotlib (an extra)
FIGURES_HOW = "pip install 'labconsole[report]' (from a checkout: pip install -e '.[report]')"
EXECUTION_KEYS = ("train.threads", "train.device")  # where a run ran, not what it is: never a grouping key


class ReportError(ValueError):
    """A report that cannot be made; its text is the one line the CLI prints."""


@dataclass(frozen=True)
class ReportData:
    """What a report is made of: the group (a sweep's manifest, or runs given directly), the
    runs' views, the aggregates per setting, and the notes on what was left out and why."""

    source: str  # "sweep <id>" or "runs"
    preset: str
    title: str
    swept: tuple[str, ...]  # the config paths that tell settings apart (seed excluded)
    grid: tuple[Setting, ...]
    members: tuple[Member, ...]  # in report order; a member's view is None when never created
    run_dirs: tuple[Path | None, ...]  # one per member
    aggregates: tuple[SettingAggregate, ...]  # one per setting of ``grid``
    notes: tuple[str, ...]  # what was left out or is unfinished, and why
    default_out: Path
    sweep: Sweep | None = None

    @property
    def sweep_id(self) -> str:
        """The sweep's id, "" for runs given directly."""
        return self.sweep.manifest.id if self.sweep is not None else ""


# ---------------------------------------------------------------------------------------------
# collect


def collect(paths: Iterable[str | Path]) -> ReportData:
    """Read one sweep dir (or its sweep.json), or one or more run dirs, into a ``ReportData``.

    Raises:
        ReportError: no path, a missing path, a dir that is neither a run nor a sweep, a sweep
            given with other paths, runs of different presets, nothing with an eval.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ReportError("report: expected at least one RUN or SWEEP directory")
    sweeps, runs = [], []
    for path in paths:
        if not path.exists():
            raise ReportError(f"report: {path}: no such file or directory")
        if is_sweep(path):
            sweeps.append(path)
        elif (path / CONFIG).is_file():
            runs.append(path)
        else:
            raise ReportError(f"report: {path}: neither a run directory (no {CONFIG}) nor a sweep (no sweep.json); "
                              f"give a sweep dir (<runs dir>/sweeps/<id>) or run dirs")
    if sweeps and len(paths) > 1:
        raise ReportError(f"report: {sweeps[0]} is a sweep; give one sweep alone, or run directories "
                          f"(got {len(sweeps)} sweep(s) and {len(runs)} run(s))")
    return _from_sweep(sweeps[0]) if sweeps else _from_runs(runs)


def _from_sweep(path: Path) -> ReportData:
    try:
        sweep = load(path)
    except SweepError as exc:
        raise ReportError(f"report: {exc}") from None
    m = sweep.manifest
    views = read_views(sweep)
    members = tuple(Member(r.setting, r.seed, r.run_dir, v, r.label) for r, v in zip(m.runs, views))
    if not any(v is not None and v.evals for v in views):
        raise ReportError(f"report: {sweep.dir}: no run of the sweep has an eval yet; nothing to report")
    notes = [n for mem in members if (n := _note(mem))]
    return ReportData(f"sweep {m.id}", m.preset, m.title, m.swept, m.grid, members,
                      tuple(sweep.run_path(i) for i in range(len(m.runs))), tuple(aggregate(m.grid, members)),
                      tuple(notes), sweep.report_dir, sweep)


def _note(member: Member) -> str:
    """Why a run is missing from, or incomplete in, the report ("" when it is whole)."""
    name = member.label or member.run_id or "the run"
    view = member.view
    if view is None:
        return f"{name}: never started (no run dir): left out"
    if not view.evals:
        return f"{name} ({member.run_id}): {view.status}, no eval yet: left out"
    if view.status != "completed":
        total = f" of {view.total_steps:,}" if view.total_steps else ""
        return (f"{name} ({member.run_id}): {view.status} at step {view.step:,}{total}: "
                f"kept with its evals up to step {view.evals[-1].step:,}")
    return ""


def _from_runs(paths: list[Path]) -> ReportData:
    unique = list(dict.fromkeys(p.resolve() for p in paths))  # a run given twice counts once
    runs = [_read_run_dir(p) for p in unique]
    presets = {}
    for path, _, _, preset in runs:
        presets.setdefault(preset, []).append(path.name)
    if len(presets) > 1:
        listed = "; ".join(f"{k or '?'}: {', '.join(v)}" for k, v in presets.items())
        raise ReportError(f"report: the runs come from different presets ({listed}); report one preset at a time")
    kept = [r for r in runs if r[1].evals]
    if not kept:
        which = str(paths[0]) if len(paths) == 1 else f"none of the {len(unique)} runs"
        raise ReportError(f"report: {which}: no evals yet; nothing to report")
    notes = [f"{p.name}: {v.status}, no eval yet: left out" for p, v, _, _ in runs if not v.evals]
    swept = _differing([flat for _, _, flat, _ in kept])
    grid: dict[str, Setting] = {}
    members = []
    for path, view, flat, _ in kept:
        values = {k: flat.get(k) for k in swept}
        label = _label(values)
        grid.setdefault(label, Setting(label, values))
        member = Member(label, int(flat.get("train.seed", 0)), path.name, view, _read_label(path) or label)
        members.append(member)
        notes += [n for n in [_note(member)] if n]
    first = kept[0][0].name
    out = Path(f"report-{first}" + (f"-and-{len(kept) - 1}-more" if len(kept) > 1 else ""))
    return ReportData("runs", next(iter(presets)), "", tuple(swept), tuple(grid.values()), tuple(members),
                      tuple(p for p, *_ in kept), tuple(aggregate(list(grid.values()), members)), tuple(notes), out)


def _read_run_dir(path: Path) -> tuple[Path, RunView, dict[str, Any], str]:
    """(path, view, flat config, preset) of a run dir given directly."""
    from labconsole.runconfig import config_to_dict, load_config

    try:
        flat = flatten(config_to_dict(load_config(path / CONFIG)))
    except (OSError, ValueError) as exc:
        raise ReportError(f"report: {path}: not a readable run directory ({exc})") from None
    view = read_run(path)
    return path, view, flat, view.preset or _meta_preset(path)


def _meta_preset(path: Path) -> str:
    try:
        return read_meta(path).preset
    except (FileNotFoundError, ValueError):
        return ""


def _read_label(path: Path) -> str:
    """The run's label from its meta.json ("" when unknown)."""
    try:
        return read_meta(path).label
    except (FileNotFoundError, ValueError):
        return ""


def _differing(flats: list[dict[str, Any]]) -> list[str]:
    """Config paths whose values differ between the runs, in config order; seed and execution apart."""
    keys = list(dict.fromkeys(k for f in flats for k in f))
    skip = ("train.seed", *EXECUTION_KEYS)
    return [k for k in keys if k not in skip and len({json.dumps(f.get(k)) for f in flats}) > 1]


def _label(values: dict[str, Any]) -> str:
    """``sigma=1.0 dx=0.5``: last path parts, the full path where two share one."""
    last = [k.rsplit(".", 1)[-1] for k in values]
    return " ".join(f"{k if last.count(n) > 1 else n}={_cell(v)}" for (k, v), n in zip(values.items(), last))


# ---------------------------------------------------------------------------------------------
# write


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return json.dumps(value)
    return str(value)


def _write_csv(path: Path, header: list[str], rows: Iterable[list[Any]]) -> int:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    n = 0
    for row in rows:
        writer.writerow([_cell(v) for v in row])
        n += 1
    write_atomic(path, buf.getvalue(), fsync=False)  # atomic: a reader never sees half a table
    return n


EVAL_TEXT = ("sampler", "capture", "reader", "phase_reason")  # the eval's words, after its numbers


REGION_NUMBERS = ("accuracy", "accuracy_x", "accuracy_y", "n", "ceiling")  # the columns of each held-out region


def evals_rows(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    """evals.csv: one row per run and eval step (tidy), swept keys as their own columns; then, per
    held-out region of any run, ``region[<name>].accuracy`` / ``_x`` / ``_y`` / ``.n`` / ``.ceiling``
    (empty where a run has no such region, and the ceiling in evals written before it), and ``pca_ratios``, the top-15 explained-variance ratios as a JSON list."""
    numbers = [f for f in number_fields() if f not in ("step", "segment")]
    evals = [(m, values, e) for m, values in _members_with_values(data)
             for e in (m.view.evals if m.view is not None else ())]
    regions = list(dict.fromkeys(name for _, _, e in evals for name in (e.regions or {})))  # first-seen order
    region_columns = [f"region[{name}].{k}" for name in regions for k in REGION_NUMBERS]
    header = ["sweep", "setting", "seed", "run_id", *data.swept, "step", "phase", "segment", *numbers,
              *region_columns, "pca_ratios", *EVAL_TEXT]
    rows = []
    for m, values, e in evals:
        cells = [(e.regions or {}).get(name, {}).get(k) for name in regions for k in REGION_NUMBERS]
        rows.append([data.sweep_id, m.setting, m.seed, m.run_id, *values, e.step, e.phase, e.segment,
                     *(getattr(e, f) for f in numbers), *cells, e.pca_ratios, *(getattr(e, f) for f in EVAL_TEXT)])
    return header, rows


def _members_with_values(data: ReportData):
    values = {s.label: [s.values.get(k) for k in data.swept] for s in data.grid}
    return [(m, values[m.setting]) for m in data.members]


STEP_STATS = (("first_B", "first_b"), ("first_C", "first_c"), ("C_held", "c_held"), ("accurate_from", "acc_held"))
SPREAD = ("mean", "min", "max", "std")


def summary_rows(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    """summary.csv: one row per setting — its swept values, seeds, steps to B / C (reached
    spread, reached and censored counts, the censoring steps), the best seed, and the spread of
    every terminal number."""
    metrics = ["step", *metric_names()]
    header = ["setting", *data.swept, "n_seeds", "n_evaluated", "seeds"]
    for name, _ in STEP_STATS:
        header += [f"{name}_{s}" for s in SPREAD] + [f"{name}_reached", f"{name}_censored", f"{name}_censored_by"]
    header += ["best_seed", "best_run", "best_accuracy"]
    header += [f"terminal_{m}_{s}" for m in metrics for s in SPREAD]
    rows = []
    for agg in data.aggregates:
        row = [agg.setting.label, *(agg.setting.values.get(k) for k in data.swept), len(agg.members),
               agg.n_evaluated, " ".join(str(m.seed) for m in agg.members)]
        for _, attr in STEP_STATS:
            row += _steps_cells(getattr(agg, attr))
        best = agg.best
        row += [best.seed, best.run_id, best.accuracy] if best else [None, None, None]
        for metric in metrics:
            spread = agg.terminal.get(metric)
            row += [getattr(spread, s) for s in SPREAD] if spread else [None] * len(SPREAD)
        rows.append(row)
    return header, rows


def _steps_cells(st: StepsTo) -> list[Any]:
    r = st.reached
    spread = [r.mean, r.min, r.max, r.std] if r else [None] * 4
    return spread + [st.n_reached, len(st.censored), ";".join(str(c) for c in st.censored)]


def curves_rows(data: ReportData) -> tuple[list[str], list[list[Any]]]:
    """curves.csv: per setting, metric and eval step, the mean over seeds and its min-max band."""
    header = ["setting", *data.swept, "metric", "step", "n", "mean", "min", "max"]
    rows = []
    for agg in data.aggregates:
        values = [agg.setting.values.get(k) for k in data.swept]
        for metric in CURVE_METRICS:
            c = agg.curves.get(metric)
            for i in range(len(c.steps) if c else 0):
                rows.append([agg.setting.label, *values, metric, c.steps[i], c.n[i], c.mean[i], c.lo[i], c.hi[i]])
    return header, rows


def write_csvs(data: ReportData, out: str | Path) -> list[Path]:
    """Write evals.csv, summary.csv and curves.csv into ``out`` (made if needed); returns their paths."""
    out = _out_dir(out)
    files = []
    for name, make in (("evals.csv", evals_rows), ("summary.csv", summary_rows), ("curves.csv", curves_rows)):
        header, rows = make(data)
        _write_csv(out / name, header, rows)
        files.append(out / name)
    return files


def _out_dir(out: str | Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReportError(f"report: --out {out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_figures(data: ReportData, out: str | Path, *, all_runs: bool = False) -> tuple[list[Path], list[str]]:
    """The figures (PNG / PDF) by ``labconsole.figures.write_figures(data, out)`` when that module
    is installed; returns (paths, notes). matplotlib is imported there, never by this module.
    ``all_runs``: per-run figures for every run, not only each setting's best seed."""
    if importlib.util.find_spec(FIGURES_MODULE) is None:
        return [], [f"figures: none ({FIGURES_MODULE} is not part of this labconsole)"]
    try:
        module = importlib.import_module(FIGURES_MODULE)  # lazy: matplotlib loads only on this line
    except ImportError as exc:
        return [], [f"figures: none ({exc}); for PNG / PDF figures: {FIGURES_HOW}"]
    paths, notes = module.write_figures(data, _out_dir(out), all_runs=all_runs)
    return list(paths), list(notes)


README = """\
files
  evals.csv    one row per run and eval step: sweep, setting, seed, run id, the swept keys, step,
               phase, every number of the eval (accuracy, ceilings, R², OOD, blob fractions, PCA
               top-4 share / participation ratio / n90, ...), region[<name>].* per held-out region
               (accuracy, x, y, n, ceiling), pca_ratios (the top-15 PCA variance ratios of layer 4)
  summary.csv  one row per setting over its seeds: steps to phase B / C, the best seed, and
               mean / min / max / std of every number of each run's latest eval (terminal_*)
  curves.csv   per setting, metric and eval step: mean over seeds with its min-max band, n seeds
reading
  first_B / first_C: the first eval at phase B or beyond / at C; C_held: the first eval from which
  every later one is C; accurate_from: the first eval from which every later one has accuracy >=
  eval.phase_accuracy_frac x its ceiling (C's accuracy half alone, without one UMAP fit's noise).
  A run that has not got there is censored, written "> S": not reached by
  its last eval S. Mean / min / max / std are over the runs that reached it; *_censored counts the
  others, never dropped. std is over seeds with ddof 0. Curves use the union of the runs' eval
  steps: each point is over the runs evaluated at that step (n); nothing is interpolated.
  The best seed is the best terminal accuracy (paper App. A.6).
"""


def write_notes(data: ReportData, out: str | Path, files: list[Path], notes: list[str]) -> Path:
    """README.txt: the source, the files, how to read them, and what was left out or unfinished."""
    out = _out_dir(out)
    when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    n_eval = sum(a.n_evaluated for a in data.aggregates)
    head = [f"labconsole report: {data.source}, preset {data.preset}" + (f" ({data.title})" if data.title else ""),
            f"made {when} by labconsole {labconsole.__version__}",
            f"{len(data.grid)} setting(s), {len(data.members)} run(s), {n_eval} with evals; "
            f"swept: {', '.join(data.swept) or 'nothing (one setting)'}",
            "written: " + ", ".join(p.name for p in files), ""]
    tail = ["", "notes (left out, unfinished, not made)"] + [f"  - {n}" for n in notes] if notes else ["", "notes: none"]
    path = out / "README.txt"
    write_atomic(path, "\n".join(head) + "\n" + README + "\n".join(tail) + "\n", fsync=False)
    return path


def write_report(data: ReportData, out: str | Path | None = None, *, figures: bool = True,
                 all_runs: bool = False) -> tuple[list[Path], list[str]]:
    """CSVs, figures (when available) and README.txt into ``out`` (default ``data.default_out``).

    Returns:
        (files written, notes: the data's own, then the figures').
    """
    out = Path(out) if out is not None else data.default_out
    files = write_csvs(data, out)
    notes = list(data.notes)
    if figures:
        made, fig_notes = write_figures(data, out, all_runs=all_runs)
        files += made
        notes += fig_notes
    else:
        notes.append("figures: not drawn (--no-figures); labconsole report on the same runs draws them")
    files.append(write_notes(data, out, files, notes))
    return files, notes


def print_report(data: ReportData, files: list[Path], notes: list[str], out: TextIO) -> None:
    """What the CLI and the batch print: the files, a line per setting, and the notes."""
    print(f"report of {data.source} ({data.preset}): {len(data.grid)} setting(s), {len(data.members)} run(s)",
          file=out)
    for agg in data.aggregates:
        print(f"  {describe(agg)}", file=out)
    top = files[0].parent  # per-run figures lie in runs/<run id>/: named by their path from the report dir
    print(f"written to {top}/: " + ", ".join(str(p.relative_to(top)) if p.is_relative_to(top) else p.name
                                             for p in files), file=out)
    for note in notes:
        print(f"  note: {note}", file=out)


def main(paths: list[str], out: str | None, stdout: TextIO, *, all_runs: bool = False,
         overrides: Iterable[str] = (), figures: bool = True) -> int:
    """``labconsole report PATH... [--out DIR]``: collect, write, print; returns 0. One preset file
    (``--set`` overrides allowed) goes to ``preset_report``. ``figures`` False (``--no-figures``):
    the CSVs and README.txt only.

    Raises:
        ReportError: bad input (see ``collect``, ``preset_report``).
    """
    if len(paths) == 1 and Path(paths[0]).suffix == ".toml":
        return preset_report(Path(paths[0]), list(overrides), out, stdout)
    if overrides:
        raise ReportError("report: --set applies to a preset file (kind = \"percolation\"), not to runs or sweeps")
    data = collect(paths)
    files, notes = write_report(data, out, all_runs=all_runs, figures=figures)
    print_report(data, files, notes, stdout)
    return 0


def preset_report(path: Path, overrides: list[str], out: str | Path | None, stdout: TextIO) -> int:
    """``labconsole report PRESET.toml [--set K=V]... [--out DIR]`` for a preset that needs no
    training (``kind = "percolation"``): its table printed, then percolation.csv, its figure and
    README.txt written into ``out`` (default ``./report-<preset name>``); returns 0.

    Raises:
        ReportError: the preset does not load, is of another kind, or asks for too large a table.
    """
    from labconsole import percolation
    from labconsole.batch import make_console
    from labconsole.presets import PresetError, load_preset

    try:
        preset = load_preset(path, overrides)
    except PresetError as exc:
        raise ReportError(f"report: {exc}") from None
    if preset.kind != "percolation":
        raise ReportError(f"report: {path}: kind \"{preset.kind}\"; report takes a percolation preset, a sweep dir "
                          f"or run dirs (labconsole --batch {path} runs this one, or prints its table)")
    try:
        table = percolation.percolation_table(preset.percolation)
    except ValueError as exc:
        raise ReportError(f"report: {path}: {exc}") from None
    make_console(stdout).print(percolation.rich_table(table))
    files, notes = percolation.write_files(table, _out_dir(out or f"report-{preset.name}"), str(path))
    print(f"written to {files[0].parent}/: " + ", ".join(p.name for p in files), file=stdout)
    for note in notes:
        print(f"  note: {note}", file=stdout)
    return 0


__all__ = ["ReportData", "ReportError", "collect", "main", "preset_report", "print_report", "write_csvs",
           "write_figures", "write_notes", "write_report"]
