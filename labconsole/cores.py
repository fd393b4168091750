"""The CPU threads of a run on this box: the cores shared among every live run of its runs
directory, whoever started them (issue 15).

A console run started while a batch trains, or two console runs, would otherwise each take torch's
default (every core): oversubscribed torch threads wait on each other at every op, and on the
2-core dev box a w16 step ran 10-40x slower (docs/benchmarks.md). So a worker started on this box
(``SHARE_ENV``: the console's, a local batch's; not a SLURM job or Ray task, whose scheduler gives
it cores of its own) whose config leaves ``train.threads`` at 0 trains on ``cores // live runs``
threads, at least 1, and torch's default when alone. It counts again every ``RECOUNT_S`` seconds
(``CoreShare``): a run that started alone gives up cores when a second arrives, and takes them back
when it is alone again. torch honours ``set_num_threads`` between ops, both ways: two console runs
of the quick preset trained at 113 images/s together sharing, 33 each on every core
(bench/core_share.py, docs/benchmarks.md).

Torch-free: the console and the batch import this; the worker hands ``CoreShare`` torch's setter.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

from labconsole.rundir import live_here

SHARE_ENV = "LABCONSOLE_SHARE_CORES"  # set by runner.spawn for a worker detached on this box
RECOUNT_S = 10.0  # how often a sharing worker counts the live runs again: a read of each meta.json


def box_cores() -> int:
    """The cores this process may run on (its CPU affinity: a cgroup's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def share_of(sharing: int, cores: int | None = None) -> int:
    """Each of ``sharing`` runs' threads on ``cores`` (this box's): 0 when one runs alone."""
    return 0 if sharing <= 1 else max(1, (cores or box_cores()) // sharing)


class CoreShare:
    """A live worker's share of the cores, counted again at most every ``RECOUNT_S`` seconds.

    ``set_threads`` is torch.set_num_threads; call ``update`` from the thread that trains (OpenMP's
    thread count is per calling thread). ``alone``: the threads to take when no other run lives.
    """

    def __init__(self, runs_dir: str | Path, alone: int, set_threads: Callable[[int], None],
                 cores: int | None = None, every: float = RECOUNT_S):
        self.runs_dir, self.alone, self.cores, self.every = Path(runs_dir), alone, cores, every
        self.set_threads = set_threads
        self.live = len(live_here(self.runs_dir))
        self.threads = self.share()
        self.next = time.monotonic() + every

    def share(self) -> int:
        """Threads for one of ``self.live`` runs: never more than alone (an OMP_NUM_THREADS the
        user set stays a ceiling)."""
        return min(self.alone, share_of(self.live, self.cores) or self.alone)

    def update(self) -> str:
        """Count again when due; on a change set the threads and return a line saying so, else ""."""
        if time.monotonic() < self.next:
            return ""
        self.next = time.monotonic() + self.every
        self.live = len(live_here(self.runs_dir))
        threads = self.share()
        if threads == self.threads:
            return ""
        old, self.threads = self.threads, threads
        self.set_threads(threads)
        return (f"CPU threads {old} -> {threads}: {self.live} live run(s) of {self.runs_dir.name}/ share "
                f"{self.cores or box_cores()} cores")
