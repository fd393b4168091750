"""``labconsole``: the console (no arguments) or a headless batch (``--batch``).

    labconsole [--runs-dir DIR] [--presets-dir DIR]
    labconsole --batch PRESET [--set KEY=VALUE]... [--runs-dir DIR] [--jobs N] [--dry-run]
    labconsole --batch --resume RUNDIR

Bad input prints one line naming what is wrong and what is allowed, and exits 2. The batch
path never imports Textual.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import labconsole

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not argparse's usage block
        print(f"labconsole: error: {message} (see labconsole --help)", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="labconsole",
        description="A terminal lab console for the bump-DDPM experiments of Liang, Liu & Fiete (2024). "
                    "Without --batch it opens the console; with --batch it runs a preset headless.",
        epilog="examples:\n"
               "  labconsole\n"
               "  labconsole --batch presets/quick.toml\n"
               "  labconsole --batch presets/increments.toml --set train.steps=20000 --jobs 2\n"
               "  labconsole --batch --resume runs/20261128T120000Z-quick-3fa2c1\n"
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
    p.add_argument("--dry-run", action="store_true", help="print the runs a preset would start, start none")
    p.add_argument("--resume", type=Path, metavar="RUNDIR", help="continue a stopped or crashed run")
    p.add_argument("--version", action="version", version=f"labconsole {labconsole.__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batch:
        return _batch(args)
    if args.preset or args.overrides or args.resume or args.dry_run:
        print("labconsole: error: PRESET, --set, --resume and --dry-run need --batch; "
              "without --batch labconsole opens the console", file=sys.stderr)
        return EXIT_BAD_INPUT
    from labconsole.app import make_app  # Textual only on this path

    presets_dir = args.presets_dir or _default_presets_dir()
    make_app(runs_dir=args.runs_dir, presets_dir=presets_dir).run()
    return 0


def _batch(args: argparse.Namespace) -> int:
    from labconsole.batch import BadInput, PresetError, resume_run, run_preset

    try:
        if args.resume is not None:
            if args.preset or args.overrides:
                raise BadInput("--resume RUNDIR takes no PRESET or --set: a run resumes with its own config")
            return resume_run(args.resume)
        if not args.preset:
            raise BadInput("--batch needs a PRESET file (e.g. presets/quick.toml) or --resume RUNDIR")
        return run_preset(args.preset, args.overrides, args.runs_dir, args.jobs, args.dry_run)
    except (BadInput, PresetError) as exc:
        print(f"labconsole: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _default_presets_dir() -> Path:
    """``presets/`` in the working directory, else the one beside this package (a source checkout)."""
    here = Path("presets")
    return here if here.is_dir() else Path(labconsole.__file__).resolve().parents[1] / "presets"


if __name__ == "__main__":
    sys.exit(main())
