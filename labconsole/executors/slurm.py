"""The SLURM executor: a sweep's runs as one job array through submitit (extra ``labconsole[slurm]``).

Each array task runs ``RunJob``: the run's worker in the foreground (``task.run_worker``), its run
dir on the cluster's shared filesystem, where the batch follows it as it follows a local run.

- Time limit or preemption: SLURM sends the job submitit's signal (USR2, ``--signal``) before it
  kills it; ``RunJob.checkpoint`` stops the worker with a checkpoint and submitit requeues the job,
  whose worker then resumes from that checkpoint in a new segment (``task.should_resume``).
- A stop (the batch's Ctrl-C): ``scancel`` — SIGTERM, no requeue; the job stops its worker with a
  checkpoint, and the run ends "stopped", resumable with ``labconsole --batch --resume``.
- A worker killed or lost with its node ends its job; the batch sees the run "crashed" and resumes
  it in a new job, up to ``--retries`` times (default 2).

Beside each run, ``slurm.json`` names its latest job and log files; submitit's own files (pickles,
logs) go to ``<runs dir>/.slurm/<job id>/`` — a dot dir, so run listings skip it.

``LABCONSOLE_SLURM_CLUSTER=local`` (a test hook; ``cluster="local"``): submitit's local executor
instead of SLURM — each job a local process, no real array, no scheduler — so the tests run on a
machine without SLURM (like the one this was written on).
"""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from labconsole.executors import ExecutorError, Launch, missing_extra, task
from labconsole.rundir import LIVE, effective_status, pid_alive, read_meta, write_atomic

try:
    import submitit
    from submitit.helpers import Checkpointable, DelayedSubmission
except ImportError:
    raise missing_extra("submitit", "slurm") from None

CLUSTER_ENV = "LABCONSOLE_SLURM_CLUSTER"  # test hook: "local" = submitit's local executor, no SLURM
JOB_FILE = "slurm.json"  # beside each run: its latest job id and log paths
SUBMITIT_DIR = ".slurm"  # under the runs dir: submitit's pickles and logs, one folder per job
SIGNAL_DELAY_S = 180  # USR2 this long before the time limit: the worker's last step, eval and checkpoint
CHECKPOINT_WAIT_S = SIGNAL_DELAY_S - 30  # a worker slower than this to checkpoint is left to the kill
MAX_REQUEUES = 100  # time-limit requeues of one job: a long run is many segments of --slurm-time each
FORCED_CHECK_S = 30.0  # at most one forced sacct a while: a cancelled job has no result file to see


class RunJob(Checkpointable):
    """The body of one array task: the worker of ``run_dir`` to its end; its exit code."""

    def __call__(self, run_dir: str) -> int:
        """Run the worker (it resumes when one ran before: a requeued or retried job)."""
        if read_meta(Path(run_dir)).status == "completed":  # a requeue that raced the run's last step
            return 0
        return task.run_worker(run_dir)

    def checkpoint(self, run_dir: str) -> DelayedSubmission | None:
        """submitit's preemption / time-limit hook (a signal handler, while ``__call__`` waits):
        stop the worker with a checkpoint, then hand submitit the same call to requeue — which
        resumes. A run that is over is not requeued (None: submitit ends the job instead)."""
        stop_own_worker(Path(run_dir))
        if read_meta(Path(run_dir)).status in ("completed", "failed"):
            return None
        return DelayedSubmission(self, run_dir)


def stop_own_worker(run_dir: Path, timeout: float = CHECKPOINT_WAIT_S) -> None:
    """SIGTERM this process's worker and wait until it has exited (its checkpoint written).

    Called from a signal handler while ``run_worker`` waits on the worker: ``Popen.wait`` would
    deadlock on its lock, so the worker's end is read from /proc (a zombie has exited)."""
    pid = _own_worker(run_dir)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.2)


def _own_worker(run_dir: Path) -> int | None:
    """The pid of this job's worker: its one child process (Linux /proc); elsewhere meta.json's
    pid, if live (a worker still starting has not written it yet)."""
    me = str(os.getpid())
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_bytes().rsplit(b")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if fields[1].decode() == me and fields[0] not in (b"Z", b"X"):  # fields 3 (state), 4 (ppid)
                return int(stat.parent.name)
        return None
    meta = read_meta(run_dir)
    return meta.pid if pid_alive(meta.pid, meta.pid_start) else None


class SlurmHandle:
    """One run's job (an array task): done when the job is, with the worker's exit code."""

    _last_forced = 0.0  # shared: one forced sacct refreshes every job of the batch

    def __init__(self, job: submitit.Job, run_dir: Path, local: bool):
        self.job, self.run_dir, self.local = job, run_dir, local
        self.where = f"slurm job {job.job_id}"
        self._code: int | None = None

    def poll(self) -> int | None:
        """None while the job lives (pending, running, requeued) — or while the run's worker, on
        this host, is still checkpointing after its job ended; then 0 if the worker ended 0, else
        non-zero (the batch reads the run dir for crashed, stopped or failed)."""
        if self._code is None and self.job.done(force_check=self._force_check()) and not self._worker_lives_here():
            self._code = self._exit_code()
        return self._code

    def stop(self) -> None:
        """scancel: SIGTERM to the job, whose body stops its worker with a checkpoint; no requeue
        (that takes submitit's USR2). Locally, SIGTERM to the job's controller, which forwards it:
        submitit's ``LocalJob.cancel`` sends SIGINT and SIGKILLs the job a second later."""
        if self._code is not None:
            return
        if self.local:
            process = getattr(self.job, "_process", None)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
            return
        self.job.cancel(check=False)

    def _exit_code(self) -> int:
        if not self.job.paths.result_pickle.exists():  # cancelled, killed, or it raised
            return 1
        try:
            code = self.job.result()
        except Exception:  # noqa: BLE001 - any failure of the job body: the run dir tells the rest
            return 1
        return code if isinstance(code, int) else 1

    def _force_check(self) -> bool:
        """Force a sacct query when the worker is not running (a cancelled or failed job writes no
        result file, and submitit's own checks thin out to one per 10 minutes), once a while."""
        if self.local or self._worker_live() or time.monotonic() - SlurmHandle._last_forced < FORCED_CHECK_S:
            return False
        SlurmHandle._last_forced = time.monotonic()
        return True

    def _worker_live(self) -> bool:
        try:
            return effective_status(read_meta(self.run_dir)) in LIVE
        except (OSError, ValueError):
            return False

    def _worker_lives_here(self) -> bool:
        """A worker on this host that outlived its job (it checkpoints on its parent's death).
        On another host only its heartbeat could tell, a minute late: a job's end is trusted there."""
        try:
            meta = read_meta(self.run_dir)
        except (OSError, ValueError):
            return False
        return meta.on_this_host() and pid_alive(meta.pid, meta.pid_start)


class SlurmExecutor:
    """Runs through SLURM (submitit): all the runs of a launch as one job array."""

    name = "slurm"
    queues = True  # SLURM queues every run (--slurm-array-parallelism caps how many run at once)
    retries = 2  # a run whose worker was killed or whose node was lost is resumed twice

    def __init__(self, partition: str | None = None, time: int = 240, gpus_per_run: int = 1,
                 array_parallelism: int | None = None, cluster: str | None = None, cpus_per_run: int = 4):
        """``time`` in minutes per job (a longer run is requeued from its checkpoint); ``cluster``
        "slurm" (default), or "local" (a test hook, also set by LABCONSOLE_SLURM_CLUSTER).

        Raises:
            ExecutorError: a bad value, or no SLURM on this machine.
        """
        self.cluster = cluster or os.environ.get(CLUSTER_ENV) or "slurm"
        _check(self.cluster, time, gpus_per_run, array_parallelism, cpus_per_run)
        self.partition, self.time, self.gpus_per_run = partition, time, gpus_per_run
        self.array_parallelism, self.cpus_per_run = array_parallelism, cpus_per_run
        self._executors: dict[Path, submitit.AutoExecutor] = {}

    def launch(self, launches: list[Launch]) -> list[SlurmHandle]:
        """Submit every launch as one job array (the run dir decides fresh or resumed); record each
        job in its run's ``slurm.json``."""
        if not launches:
            return []
        run_dirs = [Path(l.run_dir).absolute() for l in launches]
        executor = self._executor(run_dirs[0].parent / SUBMITIT_DIR)
        with executor.batch():
            jobs = [executor.submit(RunJob(), str(run_dir)) for run_dir in run_dirs]
        for index, (run_dir, job) in enumerate(zip(run_dirs, jobs)):
            _record(run_dir, job, index, len(jobs))
        return [SlurmHandle(job, run_dir, self.cluster == "local") for run_dir, job in zip(run_dirs, jobs)]

    def close(self) -> None:
        """Nothing held: the jobs go on in SLURM's queue (the batch stops them on Ctrl-C)."""

    def _executor(self, folder: Path) -> submitit.AutoExecutor:
        """submitit's executor for jobs of this runs dir, made once."""
        if folder not in self._executors:
            ex = submitit.AutoExecutor(folder / "%j", cluster=self.cluster, slurm_max_num_timeout=MAX_REQUEUES,
                                       local_max_num_timeout=MAX_REQUEUES)
            params = dict(timeout_min=self.time, cpus_per_task=self.cpus_per_run, name="labconsole")
            if self.gpus_per_run > 0:  # 0 would hide every GPU locally, and is not a valid --gpus-per-node
                params["gpus_per_node"] = self.gpus_per_run
            if self.cluster == "slurm":  # only SLURM takes these (the local executor rejects them)
                params.update(slurm_partition=self.partition, slurm_array_parallelism=self.array_parallelism,
                              slurm_signal_delay_s=SIGNAL_DELAY_S)
            ex.update_parameters(**params)
            self._executors[folder] = ex
        return self._executors[folder]


def _check(cluster: str, time: int, gpus_per_run: int, array_parallelism: int | None, cpus_per_run: int) -> None:
    if cluster not in ("slurm", "local"):
        raise ExecutorError(f"{CLUSTER_ENV}: expected slurm or local, got {cluster!r}")
    if time < 1:
        raise ExecutorError(f"--slurm-time: expected minutes >= 1, got {time}")
    if gpus_per_run < 0:
        raise ExecutorError(f"--slurm-gpus-per-run: expected 0 or more, got {gpus_per_run}")
    if array_parallelism is not None and array_parallelism < 1:
        raise ExecutorError(f"--slurm-array-parallelism: expected 1 or more, got {array_parallelism}")
    if cpus_per_run < 1:
        raise ExecutorError(f"cpus per run: expected 1 or more, got {cpus_per_run}")
    if cluster == "slurm" and submitit.SlurmExecutor.affinity() <= 0:
        raise ExecutorError("--executor slurm: no SLURM here (srun not found); run the batch on a node of the "
                            "cluster (a login node), where sbatch and srun are")


def _record(run_dir: Path, job: submitit.Job, index: int, size: int) -> None:
    """``slurm.json``: the run's latest job and its logs, and the jobs before it (requeues keep an id)."""
    path = run_dir / JOB_FILE
    try:
        earlier = json.loads(path.read_text())
        before = [*earlier.get("earlier_jobs", []), earlier["job_id"]]
    except (OSError, ValueError, KeyError, TypeError):
        before = []
    data = {"job_id": str(job.job_id), "stdout": str(job.paths.stdout), "stderr": str(job.paths.stderr),
            "array": {"job_id": str(job.job_id).split("_")[0], "index": index, "size": size},
            "submitted": time.time(), "earlier_jobs": before}
    write_atomic(path, json.dumps(data, indent=2) + "\n")
