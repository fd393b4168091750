"""The Ray executor: each run one Ray task (``--executor ray``, extra ``labconsole[ray]``).

A run's task runs ``labconsole.executors.task.run_worker``: the worker attached to the task's
process, in the foreground. Ray places the task by its resources (``--ray-cpus-per-run``,
``--ray-gpus-per-run``: 1/K packs K runs on a GPU) and queues what does not fit. For a task with
GPUs Ray sets ``CUDA_VISIBLE_DEVICES``; the worker inherits it (its ``cuda:0``) and records it in
meta.json. Ray sets ``OMP_NUM_THREADS`` to the task's CPUs (at least 1): torch's threads in a run
whose train.threads is 0.

- A worker that dies (killed, out of memory) ends its task with its exit code: the batch sees the
  run crashed and resumes it, up to ``--retries`` times (default 2).
- A task whose own process dies (its node lost) is resubmitted by Ray (``max_task_retries``); the
  new task resumes the run from its checkpoint by itself (``task.should_resume``). Its worker, if
  its node lives on, got SIGTERM when the task's process died and checkpointed first (it leads its
  own process group, so Ray's SIGKILL of the task's group 200 ms later does not reach it).
- ``stop()`` stops a worker on this host directly (SIGTERM: checkpoint, "stopped"), and is
  otherwise ``ray.cancel`` (not forced): a KeyboardInterrupt in the task, which stops the worker
  with a checkpoint (``task.run_worker``) before the task ends; a repeated stop forces the cancel.

Without ``--ray-address`` the batch starts a local Ray on this box for its own runs and shuts it
down at the end. With one it joins that cluster: labconsole must be installed on every node
(``pip install 'labconsole[ray]'``, the same version) and the runs directory must be on a
filesystem every node sees at the same absolute path. Either way Ray's tasks belong to the batch
(their driver): they end with it, so the batch must live until its runs are over.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator

import labconsole
from labconsole import runner
from labconsole.executors import ExecutorError, Launch, missing_extra

try:
    import ray  # the real Ray (an absolute import), not this module
except ImportError:  # an optional extra: RayExecutor says how to install it
    ray = None

OBJECT_STORE_BYTES = 128 << 20  # a local Ray's object store: tasks return an exit code, nothing more
# Ray (2.60 here) runs each task process in its own process group and, when that process dies,
# sends the group SIGTERM and SIGKILL 200 ms later. The attached worker leads a group of its own
# (runner.spawn) and gets SIGTERM on that death anyway (PR_SET_PDEATHSIG); the local Ray started
# here also leaves the group alone, belt and braces (a value set in the environment wins). A task
# process that exits (a forced ray.cancel) also SIGKILLs its direct children unless
# kill_child_processes_on_worker_exit is off: the worker would die without its checkpoint (seen in
# the Ray stop test on a loaded box); off, its parent's death reaches it as SIGTERM. On a cluster
# this is its operator's setting (README, executors).
_LOCAL_RAY_ENV = {"RAY_process_group_cleanup_enabled": "0", "RAY_kill_child_processes_on_worker_exit": "0"}


def _task(run_dir: str, cpu_only: bool) -> int:
    """The body of a run's task, on the node Ray chose: the run's worker to its end (its exit code).

    ``cpu_only`` (no GPU asked for): the worker sees no GPU. Ray sets ``CUDA_VISIBLE_DEVICES`` only
    for a task with GPUs; without it, a CPU run on a GPU node would train on GPU 0 unaccounted."""
    from labconsole.executors import task

    if not cpu_only:
        return task.run_worker(run_dir)
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the worker inherits it (runner.spawn copies os.environ)
    try:
        return task.run_worker(run_dir)
    finally:  # this Ray worker process may run other tasks of the batch
        if before is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


class RayHandle:
    """A run's Ray task."""

    def __init__(self, ref: Any, run_dir: Path):
        self.ref, self.run_dir = ref, run_dir
        self.where = f"ray task {ref.task_id().hex()[:12]}"
        self.code: int | None = None
        self.error = ""  # why the task failed, when it did (cancelled, its process lost too often)
        self.stops = 0  # stop requests so far: the first is a plain ray.cancel, a repeat a forced one

    def poll(self) -> int | None:
        """None while the task is queued or runs (or is retried by Ray); then the worker's exit code,
        or 1 when the task itself failed."""
        if self.code is None and ray.wait([self.ref], timeout=0)[0]:
            try:
                value = ray.get(self.ref)
                self.code = value if isinstance(value, int) else 1
            except ray.exceptions.RayError as exc:  # TaskCancelledError, WorkerCrashedError, ...
                self.error, self.code = _first_line(exc), 1
        return self.code

    def stop(self) -> None:
        """``ray.cancel``, not forced: the task stops its worker with a checkpoint; a queued task
        never starts. A repeated request (a second Ctrl-C, or the batch's resend when the first
        went unanswered) forces it: Ray kills the task's process, and its attached worker still
        checkpoints on its parent's death (PR_SET_PDEATHSIG SIGTERM) — a non-forced cancel is an
        interrupt of the task's main thread, and one was seen to go unanswered on a loaded box.
        So a first request for a worker on this host (a local Ray, or the batch's own node) stops
        the worker directly, as the local executor does, and the task ends when it does."""
        if self.poll() is None:
            self.stops += 1
            if self.stops == 1 and runner.stop(self.run_dir):
                return  # its worker is on this host: SIGTERM, checkpoint, "stopped"; its task ends with 0
            ray.cancel(self.ref, force=self.stops > 1)


class RayExecutor:
    """Each run one Ray task on a local Ray or a cluster; a crashed run is resumed twice by default."""

    name = "ray"
    queues = True  # every run launched at once: Ray queues the tasks by their resources
    retries = 2

    def __init__(self, address: str | None = None, gpus_per_run: float | None = None, cpus_per_run: float = 1.0,
                 max_task_retries: int = 2):
        """Join the Ray at ``address`` (None: start a local one); ``gpus_per_run`` None: 1 where the
        cluster has GPUs, else 0.

        Raises:
            ExecutorError: Ray not installed, an address it cannot join, resources that no run could get.
        """
        if ray is None:
            raise missing_extra("ray", "ray")
        _check_resources(gpus_per_run, cpus_per_run)
        self.started = _connect(address)  # close() shuts down only a Ray this executor started or joined
        total = ray.cluster_resources()
        if gpus_per_run is None:
            gpus_per_run = 1.0 if total.get("GPU", 0) > 0 else 0.0
        if address is None and self.started:  # a local Ray cannot grow: a run it cannot place waits forever
            self._check_fits(total, gpus_per_run, cpus_per_run)
        self.gpus_per_run, self.cpus_per_run = float(gpus_per_run), float(cpus_per_run)
        self.max_task_retries = max_task_retries
        self._remote = ray.remote(_task)

    def launch(self, launches: list[Launch]) -> list[RayHandle]:
        """One task per run, queued at once. A task resumes its run when a worker ran there before,
        so ``Launch.resume`` needs no flag; ``Launch.gpu`` is the local executor's (Ray assigns GPUs)."""
        run_dirs = [Path(launch.run_dir).absolute() for launch in launches]  # a task's working directory is Ray's
        return [RayHandle(self._submit(run_dir), run_dir) for run_dir in run_dirs]

    def _submit(self, run_dir: Path) -> Any:
        return self._remote.options(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
            max_retries=self.max_task_retries, retry_exceptions=False,  # Ray retries a lost task process only
            name=f"labconsole {run_dir.name}",
        ).remote(str(run_dir), self.gpus_per_run == 0)  # absolute: a task's working directory is Ray's

    def close(self) -> None:
        """Shut down the Ray this executor started or joined (a Ray the program holds stays); its
        tasks end with it, so the batch calls this once its runs are over."""
        if self.started and ray.is_initialized():
            ray.shutdown()
            self.started = False

    def _check_fits(self, total: dict[str, float], gpus: float, cpus: float) -> None:
        have = {"GPU": total.get("GPU", 0.0), "CPU": total.get("CPU", 0.0)}
        for what, need, flag in (("GPU", gpus, "--ray-gpus-per-run"), ("CPU", cpus, "--ray-cpus-per-run")):
            if need > have[what]:
                self.close()
                raise ExecutorError(f"{flag} {need:g}: the local Ray has {have[what]:g} {what}s; "
                                    f"no run could start (join a cluster with --ray-address)")


def _check_resources(gpus_per_run: float | None, cpus_per_run: float) -> None:
    """Ray's rules for a task's resources, said before Ray starts: a GPU share above 1 is whole."""
    if gpus_per_run is not None and (gpus_per_run < 0 or gpus_per_run > 1 and gpus_per_run != int(gpus_per_run)):
        raise ExecutorError(f"--ray-gpus-per-run: expected 0, a share of one GPU (0.5 packs 2 runs on a GPU) "
                            f"or a whole number of GPUs, got {gpus_per_run:g}")
    if cpus_per_run < 0:
        raise ExecutorError(f"--ray-cpus-per-run: expected 0 or more, got {cpus_per_run:g}")


def _connect(address: str | None) -> bool:
    """Join ``address`` or start a local Ray; True when this call initialised Ray in this process."""
    if ray.is_initialized():  # a program that holds its own Ray (the tests): its tasks go there
        return False
    quiet: dict[str, Any] = dict(logging_level=logging.ERROR, log_to_driver=False)  # workers log to their run dirs
    try:
        if address:
            ray.init(address=address, **quiet)
            return True
        start_local_ray(**quiet)
        return True
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"--ray-address {address}: cannot join that Ray" if address else "--executor ray: cannot start a local Ray"
        raise ExecutorError(f"{where}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    """An exception as one line: its type and the first line of its text."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def start_local_ray(num_cpus: int | None = None, **init: Any) -> None:
    """Start a Ray on this box for labconsole's runs, as ``RayExecutor`` does without an address:
    ``num_cpus`` (default: every core) shared by the runs, no dashboard, a small object store, and
    the environment of ``_local_environ``. ``init`` goes to ``ray.init`` (the tests give ``num_gpus``
    to stand in for GPUs)."""
    with _environ(_local_environ()):
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                 object_store_memory=OBJECT_STORE_BYTES, **init)


def _local_environ() -> dict[str, str]:
    """What a local Ray's processes inherit: ``_LOCAL_RAY_ENV`` (unless set already) and a
    PYTHONPATH that imports this very labconsole, installed or not (as ``runner.spawn``). Inherited,
    not a runtime_env: Ray's pre-started workers then take the first tasks (a runtime_env would
    start new ones, seconds later)."""
    root = str(Path(labconsole.__file__).resolve().parents[1])
    values = {k: v for k, v in _LOCAL_RAY_ENV.items() if k not in os.environ}
    values["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return values


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """``values`` in this process's environment while Ray starts (its processes inherit them), then
    the environment as it was."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
