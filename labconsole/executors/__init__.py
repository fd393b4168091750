"""Where a run's worker runs: the batch's executor seam (issue 15).

One run is one command — ``python -m labconsole.worker RUN_DIR [--resume]`` — launched somewhere,
its run directory on a filesystem the batch (and the console, and the report) can read: they
follow the run by its events file and ``meta.json`` as today, whatever launched it.

- ``local`` (``labconsole.executors.local``): a detached subprocess on this box, as always; the
  batch spreads runs over GPU slots or shares the cores (``--jobs``).
- ``slurm`` (``labconsole.executors.slurm``, extra ``labconsole[slurm]``): a sweep is one job
  array through submitit; preemption and time limits checkpoint and requeue.
- ``ray`` (``labconsole.executors.ray``, extra ``labconsole[ray]``): each run a Ray task; a task
  lost with its node is retried and resumes from its checkpoint.

Remote jobs and tasks run ``labconsole.executors.task.run_worker``: the worker in the foreground,
stopped with a checkpoint when its job or task is stopped, never outliving it. Nothing of Ray or
submitit is imported unless that executor is asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

NAMES = ("local", "slurm", "ray")


class ExecutorError(ValueError):
    """An executor that cannot be used as asked (one line; the CLI exits 2)."""


@dataclass(frozen=True)
class Launch:
    """One worker to start: a fresh run, or (``resume``) the next segment of one."""

    run_dir: Path
    resume: bool = False
    gpu: str | None = None  # local: the GPU its worker sees as cuda:0 (CUDA_VISIBLE_DEVICES)


class Handle(Protocol):
    """A launched worker, however it was launched."""

    where: str  # e.g. "pid 4242", "slurm job 1234_0", "ray task 7f3a..."

    def poll(self) -> int | None:
        """None while the worker (its job, its task) lives; then its exit code."""

    def stop(self) -> None:
        """Ask the worker to checkpoint and stop (SIGTERM locally, scancel, ray.cancel)."""


class Executor(Protocol):
    """Launches workers; the batch follows their run dirs."""

    name: str
    # True: every run is launched at once and the executor's scheduler queues them (SLURM, Ray);
    # False: the batch launches --jobs (or GPU slots) at a time (local).
    queues: bool
    retries: int  # default --retries: a crashed run is resumed from its checkpoint this many times

    def launch(self, launches: list[Launch]) -> list[Handle]:
        """Start these workers (SLURM: one job array); one handle each, in order."""

    def close(self) -> None:
        """Release what the executor holds (a Ray connection); the workers are not stopped."""


def missing_extra(module: str, extra: str) -> ExecutorError:
    """The one line for an executor whose optional package is not installed."""
    return ExecutorError(f"--executor {extra}: the {module} package is not installed; "
                         f"install it with: pip install 'labconsole[{extra}]'")


def make(name: str, options: dict[str, Any] | None = None) -> Executor:
    """The executor called ``name`` (one of ``NAMES``) with its ``--slurm-*`` / ``--ray-*`` options.

    Raises:
        ExecutorError: an unknown name, an option of another executor, or a missing extra.
    """
    options = {k: v for k, v in (options or {}).items() if v is not None}
    if name not in NAMES:
        raise ExecutorError(f"--executor: expected one of {', '.join(NAMES)}, got {name!r}")
    foreign = sorted(k for k in options if not k.startswith(f"{name}_"))
    if foreign:
        flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise ExecutorError(f"{flags}: only with --executor {foreign[0].split('_')[0]} (this batch uses {name})")
    if name == "local":
        from labconsole.executors.local import LocalExecutor

        return LocalExecutor()
    if name == "slurm":
        from labconsole.executors.slurm import SlurmExecutor  # imports submitit, or says how to install it

        return SlurmExecutor(**{k.removeprefix("slurm_"): v for k, v in options.items()})
    from labconsole.executors.ray import RayExecutor  # imports ray, or says how to install it

    return RayExecutor(**{k.removeprefix("ray_"): v for k, v in options.items()})
