"""``labconsole``: the console (no arguments), a headless batch (``--batch``) or a report.

    labconsole [--runs-dir DIR] [--presets-dir DIR]
    labconsole --batch PRESET [--set KEY=VALUE]... [--runs-dir DIR] [--jobs N] [--gpus L] [--runs-per-gpu K] [--dry-run]
    labconsole --batch --resume RUNDIR|SWEEP [--jobs N]
    labconsole --batch PRESET --executor slurm|ray [--slurm-* ... | --ray-* ...] [--retries N]
    labconsole report RUN_OR_SWEEP... [--out DIR] [--no-figures]
    labconsole report presets/percolation.toml [--set KEY=VALUE]... [--out DIR]

Bad input prints one line naming what is wrong and what is allowed, and exits 2. The batch and
report paths never import Textual.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import labconsole

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        print(f"labconsole: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="labconsole",
        description="A terminal lab console for the bump-DDPM experiments of Liang, Liu & Fiete (2024). "
                    "Without --batch it opens the console; with --batch it runs a preset headless; "
                    "'labconsole report RUN_OR_SWEEP...' writes a report (see labconsole report --help).",
        epilog="examples:\n"
               "  labconsole\n"
               "  labconsole --batch presets/quick.toml\n"
               "  labconsole --batch presets/increments.toml --set train.steps=20000 --jobs 2\n"
               "  labconsole --batch --resume runs/20261128T120000Z-quick-3fa2c1\n"
               "  labconsole --batch --resume runs/sweeps/20261128T120000Z-increments-9c01d2 --jobs 2\n"
               "  labconsole report runs/sweeps/20261128T120000Z-increments-9c01d2\n"
               "exit codes (--batch): 0 completed, 1 a run failed, 2 bad input, 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("preset", nargs="?", help="a preset TOML file (with --batch)")
    p.add_argument("--batch", action="store_true", help="run headless: progress, summary, exit code")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=2000 (repeatable)")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run directories go (default: runs)")
    p.add_argument("--presets-dir", type=Path, default=None, help="the console's preset list (default: presets)")
    p.add_argument("--jobs", type=int, default=1, help="runs of a sweep trained at once (default: 1)")
    p.add_argument("--gpus", metavar="all|none|0,1,...",
                   help="GPUs to spread the runs over, one run per GPU at a time (default: every visible GPU; "
                        "none: the CPU); each worker sees its GPU as cuda:0")
    p.add_argument("--runs-per-gpu", type=int, default=1, metavar="K",
                   help="runs trained at once on each GPU (default: 1); with GPUs, --jobs is not used")
    p.add_argument("--dry-run", action="store_true", help="print the runs a preset would start, start none")
    p.add_argument("--no-cost", action="store_true",
                   help="skip the probe that says what the runs would cost on this machine (a dry run in a second)")
    p.add_argument("--no-figures", action="store_true",
                   help="the sweep's report at the end without figures: CSVs and README.txt (labconsole report "
                        "SWEEP draws them later)")
    p.add_argument("--resume", type=Path, metavar="RUNDIR|SWEEP",
                   help="continue a stopped or crashed run, or a sweep (runs/sweeps/<id>): its unfinished runs")
    _executor_arguments(p)
    p.add_argument("--version", action="version", version=f"labconsole {labconsole.__version__}")
    return p


def _executor_arguments(p: argparse.ArgumentParser) -> None:
    """Where the workers run (``labconsole.executors``); the remote ones are optional extras."""
    g = p.add_argument_group("executors (where the workers run)")
    g.add_argument("--executor", default="local", metavar="local|slurm|ray",
                   help="local: subprocesses here (default); slurm: one job array through submitit "
                        "(pip install 'labconsole[slurm]'); ray: one Ray task per run (pip install 'labconsole[ray]')")
    g.add_argument("--retries", type=int, default=None, metavar="N",
                   help="resume a crashed run (killed, its node lost) from its checkpoint up to N times "
                        "(default: 0 locally, 2 with slurm or ray)")
    g.add_argument("--slurm-partition", metavar="NAME", help="the SLURM partition (default: the cluster's)")
    g.add_argument("--slurm-time", type=int, metavar="MIN",
                   help="time limit of each job in minutes (default: 240); a run that needs more is requeued "
                        "from its checkpoint")
    g.add_argument("--slurm-gpus-per-run", type=int, metavar="N", help="GPUs per run (default: 1)")
    g.add_argument("--slurm-array-parallelism", type=int, metavar="N",
                   help="runs of the array running at once (default: all)")
    g.add_argument("--ray-address", metavar="ADDR",
                   help="the Ray cluster to join, e.g. 10.0.0.1:6379 (default: a local Ray started for the batch)")
    g.add_argument("--ray-gpus-per-run", type=float, metavar="F",
                   help="GPUs per run: 1/K packs K runs on a GPU (default: 1 where the cluster has GPUs, else 0)")
    g.add_argument("--ray-cpus-per-run", type=float, metavar="F", help="CPUs per run (default: 1)")


def executor_options(args: argparse.Namespace) -> dict:
    """The ``--slurm-*`` / ``--ray-*`` values given, by option name (e.g. ``slurm_time``)."""
    return {k: v for k, v in vars(args).items() if k.startswith(("slurm_", "ray_")) and v is not None}


def build_report_parser() -> argparse.ArgumentParser:
    """The parser of ``labconsole report`` (a subcommand: ``labconsole --batch ...`` stays as it is)."""
    p = _Parser(
        prog="labconsole report",
        description="Write a report of a sweep, or of runs given directly (grouped by the config keys that "
                    "differ): evals.csv, summary.csv, curves.csv and README.txt. Given a preset that needs no "
                    "training (kind = \"percolation\"), print its table and write percolation.csv, its figure "
                    "and README.txt.",
        epilog="examples:\n"
               "  labconsole report runs/sweeps/20261128T120000Z-increments-9c01d2\n"
               "  labconsole report runs/20261128T120000Z-quick-3fa2c1 --out report-quick\n"
               "  labconsole report presets/percolation.toml --set percolation.d=2 --out report-percolation\n"
               "exit codes: 0 written, 2 bad input",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_SWEEP",
                   help="a sweep dir, or run dirs, or one preset file of kind percolation")
    p.add_argument("--out", type=Path, default=None,
                   help="where the files go (default: <sweep dir>/report, ./report-<run id>, ./report-<preset>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="with a preset file: override one of its keys, e.g. --set percolation.d=2 (repeatable)")
    p.add_argument("--all-runs", action="store_true",
                   help="per-run figures for every run (default: each setting's best seed)")
    p.add_argument("--no-figures", action="store_true", help="the CSVs and README.txt only: no PNG / PDF figures")
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``labconsole`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:
        return _report(build_report_parser().parse_args(argv[1:]))
    args = build_parser().parse_args(argv)
    if args.batch:
        return _batch(args)
    batch_only = (args.preset, args.overrides, args.resume, args.dry_run, args.gpus, args.executor != "local",
                  args.no_cost, args.no_figures)
    if any(batch_only):
        print("labconsole: error: PRESET, --set, --resume, --gpus, --executor, --dry-run, --no-cost and "
              "--no-figures need --batch; without --batch labconsole opens the console", file=sys.stderr)
        return EXIT_BAD_INPUT
    from labconsole.app import make_app  # Textual only on this path

    presets_dir = args.presets_dir or _default_presets_dir()
    make_app(runs_dir=args.runs_dir, presets_dir=presets_dir).run()
    return 0


def _batch(args: argparse.Namespace) -> int:
    from labconsole.batch import BadInput, PresetError, resume_run, run_preset
    from labconsole.executors import ExecutorError, make

    try:
        if args.retries is not None and args.retries < 0:
            raise BadInput(f"--retries: expected 0 or more, got {args.retries}")
        how = dict(gpus=args.gpus, runs_per_gpu=args.runs_per_gpu, retries=args.retries, figures=not args.no_figures)
        if args.resume is not None:
            if args.preset or args.overrides:
                raise BadInput("--resume RUNDIR|SWEEP takes no PRESET or --set: a run resumes with its own config")
            return resume_run(args.resume, sys.stdout, jobs=args.jobs, executor=make(args.executor, executor_options(args)), **how)
        if not args.preset:
            raise BadInput("--batch needs a PRESET file (e.g. presets/quick.toml) or --resume RUNDIR")
        executor = None if args.dry_run else make(args.executor, executor_options(args))
        return run_preset(args.preset, args.overrides, args.runs_dir, args.jobs, args.dry_run, sys.stdout, executor=executor,
                          measure_cost=not args.no_cost, **how)
    except (BadInput, PresetError, ExecutorError) as exc:
        print(f"labconsole: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _report(args: argparse.Namespace) -> int:
    from labconsole.report import ReportError, main as report_main

    try:
        return report_main(args.paths, args.out, sys.stdout, all_runs=args.all_runs, overrides=args.overrides,
                           figures=not args.no_figures)
    except ReportError as exc:
        print(f"labconsole: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _default_presets_dir() -> Path:
    """``presets/`` in the working directory, else the one beside this package (a source checkout)."""
    here = Path("presets")
    return here if here.is_dir() else Path(labconsole.__file__).resolve().parents[1] / "presets"


if __name__ == "__main__":
    sys.exit(main())
