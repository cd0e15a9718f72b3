"""The one module that talks to Pydra's Submitter and workers.

Pydra 1.0a12 rough edges handled here (see the pipeline brief):

* **Resume** -- after a failed or killed run, re-submitting reports failure although
  the failed node re-ran fine.  :func:`purge_incomplete` deletes cache entries with an
  ``_error.pklz`` or without a ``_result.pklz`` (and stale ``*.lock`` files) before
  every submission; finished nodes are reused, missing ones re-run, and the submission
  succeeds at once.  Safe because each participant has its own cache root.
* **Home directory** -- Pydra's hash cache lives under ``~/.cache``; an unwritable HOME
  (containers) breaks every task, so ``PYDRA_HASH_CACHE`` points into the work dir.
* **Telemetry** -- ``NO_ET=1`` avoids the version-check request on offline nodes.
* **Errors** -- the debug worker raises, ``cf`` returns ``errored``; both leave
  ``_error.pklz`` files that :func:`collect_failures` turns into one line per node.
* **Fork safety** -- the ``cf`` worker forks; a child deadlocks if the parent used
  torch/OpenMP and cannot use CUDA if the parent initialised it.  :func:`make_worker`
  returns a ``cf`` worker with spawned processes instead.
* **SLURM** -- the stock worker has one global ``sbatch_args``; ``PerNodeSlurmWorker``
  (:mod:`.workers`) adds per-node arguments (GPU requests for inference nodes only).
"""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("srprep.engine")

WORKERS = ("cf", "debug", "slurm")


@dataclass
class TaskFailure:
    """A failed Pydra node: where, why (one line) and the full traceback."""

    node: str
    task: str
    message: str
    traceback: str
    crash_file: Path

    def one_line(self) -> str:
        return f"{self.node} ({self.task}): {self.message}"


@dataclass
class Outcome:
    """Result of :func:`run`."""

    ok: bool
    outputs: Any = None
    failures: list[TaskFailure] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""
    #: per-task wall/CPU time and peak memory of the tasks that ran (default worker)
    usage: list[dict] = field(default_factory=list)


def configure_environment(work_dir: Path, omp_nthreads: int = 1) -> None:
    """Set the process environment every worker inherits (call once, before submitting)."""
    cache = work_dir / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    defaults = {
        "NO_ET": "1",
        "PYDRA_HASH_CACHE": str(cache / "pydra-hashes"),
        "MPLBACKEND": "Agg",
    }
    home_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    if not _writable(home_cache):   # containers: matplotlib's font cache in the work dir
        defaults["MPLCONFIGDIR"] = str(cache / "matplotlib")   # (else it is rebuilt, ~2 s
        #                              per process, in every fresh work dir: kept per user)
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    threads = str(max(1, int(omp_nthreads)))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[key] = threads


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def purge_incomplete(cache_root: Path) -> int:
    """Delete failed/unfinished cache entries and stale locks; return how many entries.

    Only safe when no other process uses ``cache_root`` (one cache root per
    participant, and the output-directory lock, guarantee that).
    """
    if not cache_root.is_dir():
        return 0
    n = 0
    for entry in cache_root.iterdir():
        if entry.is_dir() and (entry / "_job.pklz").exists() and (
            (entry / "_error.pklz").exists() or not (entry / "_result.pklz").exists()
        ):
            shutil.rmtree(entry, ignore_errors=True)
            n += 1
    for lock in cache_root.glob("*.lock"):
        with contextlib.suppress(OSError):
            lock.unlink()
    return n


def make_worker(name: str, *, n_procs: int = 1, sbatch_args: str = "",
                per_node_args: dict[str, str] | None = None, poll_delay: float = 1.0,
                mem_gb: float = 0.0):
    """Worker name or instance plus kwargs for :class:`pydra.engine.submitter.Submitter`
    (``mem_gb``: the default worker starts a job only while the estimates of the running
    jobs and its own fit in it; SLURM has its own ``--mem``)."""
    if name == "debug":
        return "debug", {}
    if name == "cf":
        from .workers import SpawnWorker

        return SpawnWorker(n_procs=max(1, int(n_procs)), mem_gb=mem_gb), {}
    if name == "slurm":
        if "--error" in sbatch_args:  # crashes the 1.0a12 slurm worker
            raise ValueError("--error is not supported in sbatch arguments (Pydra bug)")
        from .workers import PerNodeSlurmWorker

        return PerNodeSlurmWorker(per_node_args=per_node_args, sbatch_args=sbatch_args,
                                  poll_delay=poll_delay), {}
    raise ValueError(f"unknown worker {name!r}; choose from {', '.join(WORKERS)}")


def run(task, cache_root: Path, *, worker: str = "cf", n_procs: int = 1,
        sbatch_args: str = "", per_node_args: dict[str, str] | None = None,
        mem_gb: float = 0.0) -> Outcome:
    """Submit ``task`` (a task or workflow, possibly split) with resume support."""
    from pydra.engine.submitter import Submitter

    from .workers import collect_usage

    cache_root.mkdir(parents=True, exist_ok=True)
    purged = purge_incomplete(cache_root)
    if purged:
        log.info("resuming: removed %d unfinished cache entries in %s", purged, cache_root)
    plugin, kwargs = make_worker(worker, n_procs=n_procs, sbatch_args=sbatch_args,
                                 per_node_args=per_node_args, mem_gb=mem_gb)
    start, started_at = time.monotonic(), time.time() - 1.0
    try:
        with Submitter(worker=plugin, cache_root=cache_root, **kwargs) as sub:
            result = sub(task)
        error = "workflow failed" if result.errored else None
    except Exception as exc:  # the debug worker raises the task's own exception
        result, error = None, _last_line(exc)
    elapsed = time.monotonic() - start
    usage = collect_usage(cache_root, started_at)
    if error is None:
        return Outcome(True, outputs=result.outputs, seconds=elapsed, usage=usage)
    failures = collect_failures(cache_root)
    return Outcome(False, failures=failures, seconds=elapsed, usage=usage,
                   error=failures[0].one_line() if failures else error)


def run_graph(units: dict[str, tuple[Any, Path]], run_root: Path, *, worker: str = "cf",
              n_procs: int = 1, sbatch_args: str = "",
              per_node_args: dict[str, str] | None = None,
              on_done=None, log_routes: dict[str, str] | None = None,
              mem_gb: float = 0.0) -> dict[str, Outcome]:
    """Submit many independent tasks as **one** Pydra workflow, so that the worker sees
    every job of a dataset at once (``units``: name -> (task, cache root)).

    Each unit's jobs live in the unit's own cache root (resume, purge and failure
    attribution stay per unit, exactly as :func:`run`); the dataset workflow and the
    unit wrappers live in ``run_root``.  ``on_done(name, outcome)`` is called, in a
    background thread of this process, as each unit finishes -- export while the rest
    runs; it may return ``(function, args)``, a follow-up (a report) that then runs on
    the worker's process pool.  A failing unit does not stop the others.
    ``log_routes`` (cache-root prefix -> log file) lets the spawned workers write each
    job's log lines to its own log.
    Returns every unit's :class:`Outcome` (a unit that never finished: failed, with the
    reason)."""
    for _, root in units.values():
        Path(root).mkdir(parents=True, exist_ok=True)
        purged = purge_incomplete(Path(root))
        if purged:
            log.info("resuming: removed %d unfinished cache entries in %s", purged, root)
    run_root.mkdir(parents=True, exist_ok=True)
    plugin, kwargs = make_worker(worker, n_procs=n_procs, sbatch_args=sbatch_args,
                                 per_node_args=per_node_args, mem_gb=mem_gb)
    if log_routes and hasattr(plugin, "log_routes"):
        plugin.log_routes = dict(log_routes)
    names = list(units)
    wrapped = {name: _unit_task(task) for name, (task, _) in units.items()}
    dataset = _dataset_task(names, wrapped)
    outcomes: dict[str, Outcome] = {}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="srprep-export") as finisher:
        def finished(name: str, outcome: Outcome) -> None:
            outcomes[name] = outcome
            if on_done is not None:
                return finisher.submit(_guarded, on_done, name, outcome)
            return None

        submitter = _routing_submitter()(
            worker=plugin, cache_root=run_root, roots={n: Path(r) for n, (_, r) in
                                                       units.items()},
            on_finished=finished, **kwargs)
        error = ""
        try:
            with submitter as sub:
                sub(dataset)
        except Exception as exc:  # the graph itself broke (a unit's error is per unit)
            error = _last_line(exc)
        for name in names:        # units the graph never finished
            if name not in outcomes:
                failures = collect_failures(units[name][1])
                future = finished(name, Outcome(False, failures=failures, error=(
                    failures[0].one_line() if failures else error or "not run")))
                side = future.result() if future is not None else None
                if side is not None:        # the pool is gone: run the follow-up here
                    _guarded(lambda _n, _o: side[0](*side[1]), name, None)
    return outcomes


def _guarded(callback, name, outcome):
    try:
        return callback(name, outcome)
    except Exception:  # one participant's export must not stop the dataset
        log.exception("finishing %s failed", name)
        return None


def _unit_task(task):
    """A one-node workflow around ``task`` (split or not) with the same outputs (as
    lists when split), the way Pydra wraps a split task it is handed directly: the
    unit's node is a workflow, so its jobs can be routed to the unit's cache root."""
    import copy

    from pydra.compose import workflow
    from pydra.compose.base import Task
    from pydra.engine.state import State
    from pydra.utils.general import get_fields

    if task._splitter:
        state = State(name="unit", splitter=copy.deepcopy(task._splitter),
                      combiner=copy.deepcopy(task._combiner),
                      container_ndim=copy.deepcopy(task._container_ndim))

        def wrap(tp):
            return state.combine_state_arrays(state.nest_output_type(tp))
    else:
        def wrap(tp):
            return tp
    types = {o.name: wrap(o.type) for o in get_fields(task.Outputs)}

    @workflow.define(inputs={"defn": Task}, outputs=types)
    def Unit(defn):
        node = workflow.add(defn, name="job")
        return tuple(getattr(node, name) for name in types)

    return Unit(defn=task)


def _dataset_task(names: list[str], wrapped: dict):
    """The run's workflow: one node per unit, no edges (units are independent).  Pydra
    caches constructed workflows by class name and inputs within a process; ``key``
    (unique per call) keeps a second run in one process from reusing the first's
    nodes."""
    import uuid

    from pydra.compose import workflow

    @workflow.define(inputs={"units": list[str], "key": str}, outputs=[])
    def Dataset(units, key):
        for name in units:
            workflow.add(wrapped[name], name=name)
        return ()

    return Dataset(units=names, key=uuid.uuid4().hex)


_ROUTING = None


def _routing_submitter():
    """Pydra's Submitter whose unit workflows put their jobs into the unit's cache root
    (Pydra 1.0a12 has one cache root per submission) and report each unit's end."""
    global _ROUTING
    if _ROUTING is not None:
        return _ROUTING
    import asyncio
    import copy

    from pydra.engine.submitter import Submitter

    from .workers import collect_usage

    class RoutingSubmitter(Submitter):
        def __init__(self, *args, roots=None, on_finished=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.roots, self.on_finished = dict(roots or {}), on_finished

        def __getstate__(self):   # jobs pickle their submitter: keep callbacks out
            state = super().__getstate__()
            state.update(roots={}, on_finished=None)
            return state

        async def expand_workflow_async(self, wf_job, rerun):
            root = self.roots.get(wf_job.name)
            if root is None:
                return await super().expand_workflow_async(wf_job, rerun)
            view = copy.copy(self)
            view._cache_root, view.roots, view.on_finished = root, {}, None
            start, started_at = time.monotonic(), time.time() - 1.0
            outcome = Outcome(False, error="interrupted")
            try:
                await Submitter.expand_workflow_async(view, wf_job, rerun)
            except Exception as exc:
                failures = collect_failures(root)
                outcome = Outcome(False, failures=failures, error=(
                    failures[0].one_line() if failures else _last_line(exc)))
                raise
            else:
                outcome = Outcome(True, outputs=wf_job.task.Outputs._from_job(wf_job))
            finally:
                outcome.seconds = time.monotonic() - start
                outcome.usage = collect_usage(root, started_at)
                future = self.on_finished(wf_job.name, outcome) if self.on_finished else None
                if future is not None:   # the export runs beside the scheduler
                    side = await asyncio.wrap_future(future)
                    if side is not None:
                        await self._side_job(*side)

        async def _side_job(self, function, args) -> None:
            """A follow-up a unit's callback asked for (a participant report): on the
            worker's process pool when it has one, so that it takes a slot like any job
            and runs beside the others; otherwise in this process."""
            pool = getattr(self.worker, "pool", None)
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(pool, function, *args)
            except Exception as exc:   # never fails the dataset
                log.warning("%s failed: %s", getattr(function, "__name__", function), exc)

    _ROUTING = RoutingSubmitter
    return _ROUTING


def write_graph(task, folder: Path, name: str) -> list[Path]:
    """``--write-graph``: the workflow of ``task`` as a Graphviz file ``<name>.dot`` (and
    ``<name>.svg`` when Graphviz' ``dot`` is installed), nodes with their connected input
    and output fields.  A split task is drawn for its first element: every element runs
    the same graph."""
    import tempfile

    import attrs

    from srprep.core.atomic import write_text

    splitter = getattr(task, "_splitter", None)
    if splitter:
        names = [splitter] if isinstance(splitter, str) else list(splitter)
        fields = {n.split(".")[-1] for n in names if isinstance(n, str)}
        task = attrs.evolve(task, **{f: getattr(task, f)[0] for f in fields})
    graph = task.construct().graph(detailed=True)
    with tempfile.TemporaryDirectory() as tmp:
        dot = Path(graph.create_dotfile_detailed(tmp, name)).read_text()
    folder.mkdir(parents=True, exist_ok=True)
    out = [write_text(folder / f"{name}.dot", dot)]
    if shutil.which("dot"):
        import subprocess

        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
        if svg.returncode == 0:
            out.append(write_text(folder / f"{name}.svg", svg.stdout))
    return out


def _last_line(exc: BaseException | str) -> str:
    """The line that says what went wrong: the last of the error text, leaving out
    Pydra's pointer to its cache folder; a killed worker process is named as such."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in str(text).strip().splitlines()
             if ln.strip() and not ln.strip().startswith("See output directory")]
    line = lines[-1] if lines else "unknown error"
    if "BrokenProcessPool" in line:
        return ("a worker process died (killed, e.g. out of memory, or crashed); "
                f"{line.split(':', 1)[-1].strip()}")
    return line


def collect_failures(cache_root: Path) -> list[TaskFailure]:
    """One :class:`TaskFailure` per failed leaf task found in ``cache_root``."""
    import cloudpickle

    failures = []
    errors = sorted(cache_root.glob("python-*/_error.pklz"), key=lambda p: p.stat().st_mtime)
    if not errors:  # the workflow itself failed (e.g. its worker pool broke)
        errors = sorted(cache_root.glob("workflow-*/_error.pklz"), key=lambda p: p.stat().st_mtime)
    for err in errors:
        try:
            with open(err, "rb") as fh:
                info = cloudpickle.load(fh)
            message = info.get("error message", "")
            tb = "".join(message) if isinstance(message, list) else str(message)
        except Exception as exc:  # a crash file we cannot read is still worth naming
            tb = f"(unreadable crash file: {exc})"
        node, task = err.parent.name, "task"
        with contextlib.suppress(Exception), open(err.parent / "_job.pklz", "rb") as fh:
            job = cloudpickle.load(fh)
            node, task = job.name, type(job.task).__name__
        failures.append(TaskFailure(node, task, _last_line(tb), tb, err))
    return failures
