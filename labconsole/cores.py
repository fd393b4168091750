"""The CPU threads of a new run on this box: the cores shared among every live run of its runs
directory, whoever started them (issue 15).

A console run started while a batch trains, or two console runs, would otherwise each take torch's
default (every core): oversubscribed torch threads wait on each other at every op, and on the
2-core dev box a w16 step ran 10-40x slower (docs/benchmarks.md). So a run whose config leaves
``train.threads`` at 0 gets ``cores // (live runs here + runs starting now)``, at least 1. A live
run keeps the threads it started with (torch sizes its pool once; docs/benchmarks.md).

Torch-free: the console and the batch import this.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from labconsole.presets import RunSpec
from labconsole.rundir import live_here


def threads_for(runs_dir: str | Path, starting: int = 1, cores: int | None = None) -> int:
    """Threads for each of ``starting`` new runs beside the live ones of ``runs_dir``; 0 (torch's
    default, its count of physical cores) for a run alone on the box."""
    sharing = len(live_here(runs_dir)) + max(1, starting)
    if sharing <= 1:
        return 0
    return max(1, (cores or os.cpu_count() or 1) // sharing)


def share(spec: RunSpec, runs_dir: str | Path, starting: int = 1, cores: int | None = None) -> RunSpec:
    """``spec`` with its share of the cores as ``train.threads``, unless it sets threads itself
    or runs alone."""
    threads = 0 if spec.config.train.threads > 0 else threads_for(runs_dir, starting, cores)
    if threads == 0:
        return spec
    train = dataclasses.replace(spec.config.train, threads=threads)
    return dataclasses.replace(spec, config=dataclasses.replace(spec.config, train=train))
