"""The report's figures (issue 13), as PNG and PDF: what ``labconsole.report`` calls when
matplotlib is installed (``pip install 'labconsole[report]'``).

    <out>/steps-to-c.*        increments / sigma: steps to phase C against the swept value (Fig. 4, 8)
    <out>/imbalance.*         dx != dy: acc_x against acc_y, R² x against R² y over steps (Fig. 5)
    <out>/id-vs-ood.*         holes: in-distribution against in-hole accuracy over steps (Fig. 9)
    <out>/curves.*            any sweep: accuracy, R² (and PCA PR) per setting, mean with its min-max seed band
    <out>/runs/<run id>/      per run: curves.*, samples.* (as the paper's Fig. 3), umap.*, pca.*,
                              persistence.* and .csv (runs whose samples keep PC scores; the topology extra),
                              regions.* (runs with held-out regions: their samples, a row per region)

Per-run figures are drawn for the best seed of each setting (App. A.6) unless ``all_runs``:
three figures a run are most of a report's cost (bench/report_cost.py).

Drawn on matplotlib's Agg canvas through the object API, never pyplot (``figures.base``); fonts
embedded as TrueType (``pdf.fonttype = 42``); one column 3.4 in or two columns 7 in wide.
matplotlib is imported by this package alone (tests/test_layers.py): the console and the worker
never load it.
"""
from __future__ import annotations

from pathlib import Path

from labconsole.figures.base import save, style
from labconsole.figures.run import RunFigures, grid_columns, mosaic, phase_change_evals
from labconsole.figures.sweep import (StepsDrawn, curves_figure, imbalance_figure, imbalanced, ood_figure,
                                      steps_axis, steps_figure)

SWEEP_FIGURES = (("steps-to-c", steps_figure), ("imbalance", imbalance_figure), ("id-vs-ood", ood_figure),
                 ("curves", curves_figure))


def write_figures(data, out: str | Path, *, all_runs: bool = False) -> tuple[list[Path], list[str]]:
    """Draw every figure that applies to ``data`` (a ``report.ReportData``) into ``out``.

    Args:
        data: the report's runs and aggregates.
        out: the report dir; per-run figures go to ``out/runs/<run id>/``.
        all_runs: per-run figures for every run with evals, not only each setting's best seed.
    Returns:
        (the PNG and PDF files written, notes on what was not drawn and why).
    """
    out = Path(out)
    files: list[Path] = []
    notes: list[str] = []
    with style():
        for name, make in SWEEP_FIGURES:
            made = make(data)
            if made is not None:
                files += save(made[0] if isinstance(made, tuple) else made, out / name)
        chosen = chosen_runs(data, all_runs)
        painter = RunFigures() if chosen else None
        for member, run_dir in chosen:
            run_files, run_notes = painter.write(member.view, run_dir, out / "runs" / member.run_id)
            files += run_files
            notes += run_notes
        if painter is not None and painter.no_topology:
            notes.append(painter.no_topology)
    left_out = sum(1 for m in data.members if m.view is not None and m.view.evals) - len(chosen)
    if left_out > 0:
        notes.append(f"figures: per-run figures of each setting's best seed only ({len(chosen)} run(s); "
                     f"{left_out} other(s) not drawn); every run's: labconsole report --all-runs")
    return files, notes


def chosen_runs(data, all_runs: bool = False) -> list[tuple]:
    """(member, run dir) of the runs that get their own figures: with evals, best seeds or all."""
    best = {a.best.run_id for a in data.aggregates if a.best is not None}
    return [(m, d) for m, d in zip(data.members, data.run_dirs)
            if d is not None and m.view is not None and m.view.evals and (all_runs or m.run_id in best)]


__all__ = ["RunFigures", "StepsDrawn", "chosen_runs", "curves_figure", "grid_columns", "imbalance_figure",
           "imbalanced", "mosaic", "ood_figure", "phase_change_evals", "save", "steps_axis", "steps_figure",
           "style", "write_figures"]
