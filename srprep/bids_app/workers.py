"""Pydra worker subclasses (module level: worker classes are pickled with their jobs).

Neither is an attrs class on purpose: attrs' generated ``__getstate__`` would pickle the
event loop ("cannot pickle '_contextvars.Context'").
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import json
import logging
import multiprocessing
import os
import resource
import sys
import time
from pathlib import Path

from pydra.workers import cf, slurm

log = logging.getLogger("srprep.engine")

#: loggers whose levels the spawned processes copy from the parent
_LOGGERS = ("srprep", "pydra", "bids")
#: the parent's log format, in a spawned process
_FORMAT = "%(asctime)s %(levelname)s %(message)s"


def logging_setup() -> dict:
    """The parent's logging, in a form a spawned process can re-create: the level of the
    root and of srprep's loggers, the console (stderr) and the log files (the
    participant log), and their format."""
    root = logging.getLogger()
    files, console, fmt = [], False, None
    for handler in root.handlers:
        if getattr(handler, "srprep_participant", None):
            continue          # a participant's own log: jobs are routed to it (log_routes)
        if isinstance(handler, logging.FileHandler):
            files.append(handler.baseFilename)
        elif type(handler) is logging.StreamHandler and handler.stream in (sys.stderr,
                                                                          sys.stdout):
            console = True
        else:
            continue
        fmt = fmt or (handler.formatter._fmt if handler.formatter else None)
    return {"levels": {name: logging.getLogger(name or None).getEffectiveLevel()
                       for name in ("",) + _LOGGERS},
            "files": files, "console": console,
            "format": fmt or "%(asctime)s %(levelname)s %(message)s"}


def _init_worker_logging(setup: dict) -> None:
    """Spawned-process initializer: log like the parent, so that long steps (a UniRes
    fit's iterations, training epochs) reach the terminal and the participant log with
    the default worker too (a spawned process starts with no handlers at all)."""
    global _FORMAT
    _FORMAT = setup["format"]
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter(setup["format"], datefmt="%H:%M:%S")
    handlers = [logging.FileHandler(f, delay=True) for f in setup["files"]]
    if setup["console"]:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    for name, level in setup["levels"].items():
        logging.getLogger(name or None).setLevel(level)


class SpawnWorker(cf.Worker):
    """Pydra's concurrent-futures worker with *spawned* processes.

    Forked children deadlock when the parent has used torch or another OpenMP runtime (a
    Python API user, a test session) and cannot use CUDA once the parent initialised it;
    spawned children start clean.
    """

    _plugin_name = "srprep-cf"

    def __init__(self, n_procs: int = 1, mem_gb: float = 0.0, **kwargs):
        super().__init__(n_procs=n_procs, **kwargs)
        #: cache-root prefix -> log file: a job under that root also logs there (the
        #: dataset graph runs many participants' jobs in one pool)
        self.log_routes: dict[str, str] = {}
        #: ``--mem``: jobs start only while their estimates fit in it (0: no limit)
        self.mem_gb = float(mem_gb or 0.0)
        self._reset_memory()
        self.pool.shutdown(wait=False)   # processes are created lazily: nothing is lost
        self.pool = self._spawn_pool()

    def _reset_memory(self) -> None:
        self.mem_in_use, self.mem_peak, self._cond = 0.0, 0.0, None
        self._running, self._solo, self._solo_waiting = 0, False, 0

    async def _run_on_pool(self, job, rerun: bool):
        """Pydra's ``cf`` run, except that a pool broken by a killed process (the kernel's
        OOM killer, a segfault) is replaced: the job that was running fails, the other
        participants' jobs go on."""
        import cloudpickle

        pool = self.pool
        try:
            return await self.loop.run_in_executor(pool, self.uncloudpickle_and_run,
                                                   cloudpickle.dumps(job), rerun)
        except concurrent.futures.process.BrokenProcessPool:
            if self.pool is pool:
                log.warning("a worker process died while running %s (killed, e.g. out of "
                            "memory); starting a new pool", job.name)
                self.pool = self._spawn_pool()
            raise

    async def run(self, job, rerun: bool = False):
        """Run a job on the pool once its memory estimate fits in ``--mem`` beside the
        jobs already running (a job larger than the whole budget runs alone).

        A process killed mid-job (the OOM killer, a segfault) breaks the whole pool and
        every job running or queued in it; each of those runs once more *on its own*, so
        that only the job that kills its process again fails and the other participants'
        jobs go on."""
        need = self._memory_need(job) if self.mem_gb else 0.0
        try:
            return await self._admitted(job, rerun, need, solo=False)
        except concurrent.futures.process.BrokenProcessPool:
            log.warning("%s was in the pool when a worker process died; running it again "
                        "on its own", job.name)
            with contextlib.suppress(OSError):   # its process is gone: the lock is stale
                Path(job.lockfile).unlink()
            return await self._admitted(job, rerun, need, solo=True)

    def _memory_need(self, job) -> float:
        from srprep.tasks.compose import job_memory_gb

        try:
            need = job_memory_gb(job.task)
        except Exception as exc:   # an estimate must never fail the job
            log.debug("%s: no memory estimate (%s)", job.name, exc)
            return 0.0
        if need > self.mem_gb:
            log.warning("%s needs about %.1f GB, more than --mem %.1f GB: it runs alone",
                        job.name, need, self.mem_gb)
        return need

    def _admits(self, need: float, solo: bool) -> bool:
        if solo:
            return not self._running and not self._solo
        if self._solo or self._solo_waiting:
            return False
        return (not self.mem_gb or not self.mem_in_use
                or self.mem_in_use + need <= self.mem_gb)

    async def _admitted(self, job, rerun: bool, need: float, solo: bool):
        if self._cond is None:
            self._cond = asyncio.Condition()
        async with self._cond:
            if not self._admits(need, solo) and self.mem_gb and not solo:
                log.info("%s waits for memory: needs %.1f GB, %.1f of %.1f GB in use",
                         job.name, need, self.mem_in_use, self.mem_gb)
            self._solo_waiting += solo
            await self._cond.wait_for(lambda: self._admits(need, solo))
            self._solo_waiting -= solo
            self._solo = solo
            self._running += 1
            self.mem_in_use += need
            self.mem_peak = max(self.mem_peak, self.mem_in_use)
        try:
            return await self._run_on_pool(job, rerun)
        finally:
            async with self._cond:
                self._running -= 1
                self.mem_in_use -= need
                if solo:
                    self._solo = False
                self._cond.notify_all()

    def _spawn_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        return concurrent.futures.ProcessPoolExecutor(
            self.n_procs, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker_logging, initargs=(logging_setup(),))

    def __getstate__(self):   # the base keeps attrs fields only
        return {**super().__getstate__(), "log_routes": self.log_routes,
                "mem_gb": self.mem_gb}

    def __setstate__(self, state):
        super().__setstate__(state)
        self._reset_memory()
        self.pool = self._spawn_pool()

    @classmethod
    def uncloudpickle_and_run(cls, job_pkl: bytes, rerun: bool):
        """Run a job in the worker process and record what it cost (:class:`measured`)."""
        import cloudpickle

        job = cloudpickle.loads(job_pkl)
        routes = getattr(getattr(job.submitter, "worker", None), "log_routes", None) or {}
        with measured(job), _routed_log(routes, str(job.cache_dir)):
            return job.run(rerun=rerun)


class _routed_log:
    """While a job runs, also log to the file of the longest cache-root prefix of its
    cache folder (its participant's log)."""

    def __init__(self, routes: dict[str, str], cache_dir: str):
        matches = [root for root in routes if cache_dir.startswith(root.rstrip("/") + "/")]
        self.file = routes[max(matches, key=len)] if matches else None
        self.handler = None

    def __enter__(self):
        if self.file:
            self.handler = logging.FileHandler(self.file, delay=True)
            self.handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
            logging.getLogger().addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
        return False


#: per-task resource record, in the task's cache folder
USAGE_FILE = "_srprep_usage.json"


def _peak_rss_gb() -> float:
    """The process's peak resident memory (VmHWM), GB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2   # kB on Linux


class measured:
    """Record a job's wall time, CPU time (all threads) and peak resident memory in its
    cache folder (:data:`USAGE_FILE`), when it really runs (not when its result is
    reused).  The peak is per task: Linux lets a process reset its high-water mark
    (``/proc/self/clear_refs``); where it cannot, the process's peak so far is kept and
    the record says so."""

    def __init__(self, job):
        self.job = job

    def __enter__(self):
        folder = Path(self.job.cache_dir)
        self.cached = (folder / "_result.pklz").exists()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.per_task = True
        except OSError:
            self.per_task = False
        self.start, self.cpu = time.monotonic(), time.process_time()
        return self

    def __exit__(self, *exc):
        folder = Path(self.job.cache_dir)
        if self.cached or not folder.is_dir():
            return False
        record = {"task": self.job.name, "type": type(self.job.task).__name__,
                  "seconds": round(time.monotonic() - self.start, 2),
                  "cpu_seconds": round(time.process_time() - self.cpu, 2),
                  "peak_rss_gb": round(_peak_rss_gb(), 3), "peak_is_per_task": self.per_task,
                  "pid": os.getpid(), "ok": exc[0] is None}
        try:
            (folder / USAGE_FILE).write_text(json.dumps(record))
        except OSError:   # a record must never fail the task
            pass
        return False


def measured_load_and_run(job_pkl, rerun: bool = False):
    """Pydra's ``load_and_run`` (what a SLURM job executes) inside :class:`measured`."""
    from pydra.engine.job import load_and_run, load_job

    job_pkl = Path(job_pkl)
    try:
        job = load_job(job_pkl=job_pkl)
    except Exception:   # Pydra records the error itself
        return load_and_run(job_pkl, rerun=rerun)
    with measured(job):
        return load_and_run(job_pkl, rerun=rerun)


def collect_usage(cache_root: Path, since: float) -> list[dict]:
    """The resource records of the tasks that ran in ``cache_root`` after ``since``
    (``time.time()``), in the order they finished."""
    found = []
    for path in Path(cache_root).glob(f"*/{USAGE_FILE}"):
        try:
            mtime = path.stat().st_mtime
            if mtime >= since:
                found.append((mtime, json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return [record for _, record in sorted(found, key=lambda item: item[0])]


class _SlurmJob(slurm.Worker):
    """Stock SLURM worker whose job-status check also works without accounting.

    Pydra asks ``sacct`` for the exit state, which fails on clusters without
    ``slurmdbd`` ("accounting storage is disabled"); ``scontrol show job`` answers from
    the controller's memory (kept for ``MinJobAge`` seconds) and is used instead.
    """

    _plugin_name = "slurm"

    def _prepare_runscripts(self, job, interpreter="/bin/sh", rerun=False):
        """Pydra's batch script, running the job through :func:`measured_load_and_run`
        so that SLURM steps leave the same resource records as local ones."""
        script_dir, batchscript = super()._prepare_runscripts(job, interpreter, rerun)
        text = batchscript.read_text()
        measured_call = ("from srprep.bids_app.workers import measured_load_and_run; "
                         "measured_load_and_run(")
        batchscript.write_text(text.replace(
            "from pydra.engine.job import load_and_run; load_and_run(", measured_call))
        return script_dir, batchscript

    async def _verify_exit_code(self, jobid):
        from pydra.workers import base

        _, stdout, _ = await base.read_and_display_async(
            "sacct", "-n", "-X", "-j", jobid, "-o", "JobID,State,ExitCode", hide_display=True)
        if stdout.strip() and self._sacct_re.search(stdout):
            return await super()._verify_exit_code(jobid)
        _, stdout, _ = await base.read_and_display_async(
            "scontrol", "show", "job", "-o", jobid, hide_display=True)
        fields = dict(item.split("=", 1) for item in stdout.split() if "=" in item)
        state, exit_code = fields.get("JobState", ""), fields.get("ExitCode", "0:0")
        if not state:
            raise RuntimeError(f"SLURM job {jobid}: no information from sacct or scontrol")
        if state in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED"):
            return False
        if state in ("CANCELLED", "TIMEOUT", "PREEMPTED"):
            return state
        if state == "COMPLETED" and exit_code.split(":")[0] == "0":
            return True
        error_file = self.error.get(jobid)
        lines = [ln for ln in _read(error_file).splitlines() if ln.strip()]
        raise RuntimeError(f"SLURM job {jobid} {state} (exit {exit_code}): "
                           f"{lines[-1] if lines else 'no error output'}")


def _read(path) -> str:
    try:
        with open(path) as fh:
            return fh.read()
    except (OSError, TypeError):
        return ""


class PerNodeSlurmWorker(slurm.Worker):
    """SLURM worker with per-node ``sbatch`` arguments (e.g. ``--gres=gpu:1`` for inference
    nodes only).

    Each job is submitted through a one-off worker carrying the extra arguments, so
    concurrent jobs never share mutable state (mutating ``self.sbatch_args`` inside the
    async ``run`` would race).  The arguments of every submission are appended to
    ``<cache_root>/sbatch-args.tsv`` (node name, arguments) for auditing.
    """

    _plugin_name = "srprep-slurm"

    def __init__(self, per_node_args: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.per_node_args = dict(per_node_args or {})

    async def run(self, job, rerun: bool = False):
        args = f"{self.sbatch_args} {self.per_node_args.get(job.name, '')}".strip()
        with open(job.cache_root / "sbatch-args.tsv", "a") as log:
            log.write(f"{job.name}\t{args}\n")
        one_off = _SlurmJob(sbatch_args=args, poll_delay=self.poll_delay)
        one_off.loop = self.loop
        return await one_off.run(job, rerun=rerun)
