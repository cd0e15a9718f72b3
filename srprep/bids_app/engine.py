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
        "MPLCONFIGDIR": str(cache / "matplotlib"),
        "MPLBACKEND": "Agg",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    threads = str(max(1, int(omp_nthreads)))
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"):
        os.environ[key] = threads


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
                per_node_args: dict[str, str] | None = None, poll_delay: float = 1.0):
    """Worker name or instance plus kwargs for :class:`pydra.engine.submitter.Submitter`."""
    if name == "debug":
        return "debug", {}
    if name == "cf":
        from .workers import SpawnWorker

        return SpawnWorker(n_procs=max(1, int(n_procs))), {}
    if name == "slurm":
        if "--error" in sbatch_args:  # crashes the 1.0a12 slurm worker
            raise ValueError("--error is not supported in sbatch arguments (Pydra bug)")
        from .workers import PerNodeSlurmWorker

        return PerNodeSlurmWorker(per_node_args=per_node_args, sbatch_args=sbatch_args,
                                  poll_delay=poll_delay), {}
    raise ValueError(f"unknown worker {name!r}; choose from {', '.join(WORKERS)}")


def run(task, cache_root: Path, *, worker: str = "cf", n_procs: int = 1,
        sbatch_args: str = "", per_node_args: dict[str, str] | None = None) -> Outcome:
    """Submit ``task`` (a task or workflow, possibly split) with resume support."""
    from pydra.engine.submitter import Submitter

    from .workers import collect_usage

    cache_root.mkdir(parents=True, exist_ok=True)
    purged = purge_incomplete(cache_root)
    if purged:
        log.info("resuming: removed %d unfinished cache entries in %s", purged, cache_root)
    plugin, kwargs = make_worker(worker, n_procs=n_procs, sbatch_args=sbatch_args,
                                 per_node_args=per_node_args)
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
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"


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
