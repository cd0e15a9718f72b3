"""Processing of one participant: pre-flight checks, one submission per method,
export of derivatives, crash logs and the HTML report."""
from __future__ import annotations

import contextlib
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srprep.core.atomic import remove_stale_temporaries, write_json, write_text
from srprep.core.errors import ConfigurationError, InputError

from . import engine
from .config import Settings
from .export import export_derivatives
from .methods import Derivative, get_method
from .query import SourceImage, find_images
from .reports import participant_report

log = logging.getLogger("srprep")


def preflight(sources: list[SourceImage]) -> list[str]:
    """Header-level checks of every input (no voxel data read); one message per problem."""
    from srprep.core.dwi import read_bvals_bvecs
    from srprep.core.nifti import check_header

    problems = []
    for src in sources:
        try:
            info = check_header(src.path, allow_4d=src.datatype == "dwi")
            if src.datatype == "dwi":
                if info.ndim != 4:
                    raise InputError(f"{src.path.name}: dwi series must be 4-D, got shape {info.shape}")
                read_bvals_bvecs(src.bval, src.bvec, info.n_volumes)
        except InputError as exc:
            problems.append(str(exc))
    return problems


def _write_crash_logs(settings: Settings, participant: str, failures) -> list[str]:
    folder = settings.output_dir / "logs" / settings.run_id
    paths = []
    for i, f in enumerate(failures):
        path = folder / f"sub-{participant}_crash-{i + 1:02d}-{f.node}.txt"
        write_text(path, f"node: {f.node}\ntask: {f.task}\ncrash file: {f.crash_file}\n\n"
                         f"{f.traceback}")
        paths.append(str(path))
    return paths


def _outputs_per_job(outputs, fields: tuple[str, ...], n_jobs: int) -> list[dict]:
    per_field = {}
    for name in fields:
        value = getattr(outputs, name)
        per_field[name] = value if isinstance(value, list) else [value]
        if len(per_field[name]) != n_jobs:
            raise RuntimeError(f"expected {n_jobs} values of {name}, got {len(per_field[name])}")
    return [{k: v[i] for k, v in per_field.items()} for i in range(n_jobs)]


#: per-output figures of a model fit shown in the report (e.g. UniRes' noise and lambda)
_FIT_FIGURES = ("grid", "noise_sd", "noise_method", "contrast", "lambda", "iterations",
                "coregistration")


def _fit_figures(sidecar: dict) -> dict:
    fit = sidecar.get("srprep", {}).get("Fit", {})
    out = {k: fit[k] for k in _FIT_FIGURES if k in fit}
    if "coregistration" in out:   # the matrices stay in the sidecar
        out["coregistration"] = [{k: v for k, v in c.items() if k != "matrix"}
                                 for c in out["coregistration"]]
    return out


@dataclass
class Unit:
    """One method for one participant, planned and built: a node of the dataset graph."""

    participant: str
    method: str
    jobs: list
    task: Any
    entry: dict


def plan_method(settings: Settings, participant: str, method: str, sources,
                status: dict) -> Unit | None | bool:
    """Plan and build one method for one participant: its :class:`Unit`, ``None`` when the
    participant has no input for it, ``False`` when planning failed (recorded in
    ``status``)."""
    spec = get_method(method)
    usable = [s for s in sources if s.datatype in spec.datatypes]
    entry = {"name": method, "description": spec.description, "outputs": [],
             "parameters": {"output_resolution_mm": settings.output_resolution,
                            **settings.method_options.get(method, {})}}
    status["methods"].append(entry)
    try:
        jobs = spec.plan(usable, settings)
        for job in jobs:
            for warning in job.params.get("warnings", []):
                log.warning("sub-%s: %s: %s", participant, method, warning)
                status["warnings"].append(f"{method}: {warning}")
        if not jobs:
            status["warnings"].append(f"{method}: no suitable inputs for this participant")
            return None
        task = spec.build(jobs, settings)
    except (InputError, ConfigurationError, ValueError, TypeError, FileNotFoundError) as exc:
        status["errors"].append(f"{method}: {exc}")
        return False
    if settings.write_graph:
        folder = settings.output_dir / "logs" / settings.run_id / "graphs"
        for path in engine.write_graph(task, folder, f"sub-{participant}_{method}"):
            log.info("sub-%s: %s workflow graph: %s", participant, method, path)
    return Unit(participant, method, jobs, task, entry)


def unit_cache_root(settings: Settings, unit: Unit) -> Path:
    """Each method of each participant has its own Pydra cache root, so that a failure is
    attributed to its method and a resume purges nothing another run may be using."""
    return settings.cache_root(unit.participant) / unit.method


def finish_method(settings: Settings, unit: Unit, outcome: engine.Outcome,
                  status: dict) -> bool:
    """Record a finished method in ``status``; export its derivatives when it succeeded."""
    participant, method, entry = unit.participant, unit.method, unit.entry
    spec = get_method(method)
    entry["seconds"] = round(outcome.seconds, 1)
    entry["resources"] = outcome.usage
    if not outcome.ok:
        status["errors"].append(f"{method}: {outcome.error}")
        status["crash_logs"] += _write_crash_logs(settings, participant, outcome.failures)
        return False
    derivatives: list[Derivative] = []
    outputs = _outputs_per_job(outcome.outputs, spec.output_fields, len(unit.jobs))
    for job, out in zip(unit.jobs, outputs):
        derivatives += spec.collect(job, out, settings)
    for warning in dict.fromkeys(w for d in derivatives                # e.g. UniRes' noise
                                 for w in d.sidecar.get("srprep", {}).get("Fit", {})
                                 .get("warnings", [])):
        log.warning("sub-%s: %s: %s", participant, method, warning)
        status["warnings"].append(f"{method}: {warning}")
    export_derivatives(derivatives, settings.output_dir)
    entry["outputs"] = [{"output": d.relpath, "inputs": [str(s.path) for s in d.sources],
                         "fit": _fit_figures(d.sidecar)} for d in derivatives]
    return True


def run_method(settings: Settings, participant: str, method: str, sources, status: dict) -> bool:
    """Plan, submit and export one method for one participant on its own (``--worker
    debug`` and ``--stop-on-first-crash`` runs); update ``status``."""
    unit = plan_method(settings, participant, method, sources, status)
    if not isinstance(unit, Unit):
        return unit is None
    log.info("sub-%s: running %s on %d job(s)", participant, method, len(unit.jobs))
    outcome = engine.run(unit.task, unit_cache_root(settings, unit), worker=settings.worker,
                         n_procs=settings.worker_processes,
                         sbatch_args=settings.sbatch_args,
                         per_node_args=settings.per_node_sbatch_args,
                         mem_gb=settings.mem_gb)
    return finish_method(settings, unit, outcome, status)


@contextlib.contextmanager
def participant_lock(settings: Settings, participant: str):
    """Exclusive hold on a participant's output folder and work cache (yields False when
    another run has it).  Runs on different participants -- job arrays -- proceed."""
    from filelock import FileLock, Timeout

    folders = (settings.output_dir / "logs" / ".locks", settings.version_dir / ".locks")
    locks = []
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(folder / f"sub-{participant}.lock"))
            lock.acquire(timeout=0)
            locks.append(lock)
        yield True
    except Timeout:
        yield False
    finally:
        for lock in locks:
            lock.release()


def process_participant(settings: Settings, layout, participant: str, command: str) -> dict:
    """Run every selected method for one participant; never raises for data problems."""
    with participant_lock(settings, participant) as acquired:
        if not acquired:
            return locked_status(settings, participant)
        return _process(settings, layout, participant, command)


def locked_status(settings: Settings, participant: str) -> dict:
    """The status of a participant another run holds (nothing of it is touched)."""
    message = (f"another srprep run is processing sub-{participant} in "
               f"{settings.output_dir} or {settings.work_dir}")
    log.error("sub-%s: %s", participant, message)
    return {"participant": participant, "status": "locked", "errors": [message]}


def start_participant(settings: Settings, layout, participant: str, command: str) -> tuple:
    """Status record and inputs of one participant (its inputs found and checked)."""
    status = {"participant": participant, "run_id": settings.run_id, "command": command,
              "methods": [], "errors": [], "warnings": [], "crash_logs": [],
              "started": time.monotonic()}
    remove_stale_temporaries(settings.output_dir / f"sub-{participant}")
    if settings.clean_workdir:
        shutil.rmtree(settings.cache_root(participant), ignore_errors=True)
    datatypes = tuple(sorted({dt for m in settings.methods for dt in get_method(m).datatypes}))
    try:
        sources = find_images(layout, participant, settings.session_labels, datatypes,
                              settings.filters)
    except InputError as exc:
        sources, status["errors"] = [], [str(exc)]
    if not status["errors"]:
        status["errors"] = preflight(sources)
    if not sources and not status["errors"]:
        status["errors"].append(f"no {'/'.join(datatypes)} images found")
    return status, sources


def finish_participant(settings: Settings, participant: str, status: dict, *,
                       report: bool = True) -> dict:
    """Final status (``logs/sub-<label>_status.json``) and the participant report
    (``report=False``: the caller runs :func:`write_report` itself, e.g. on a worker)."""
    status["status"] = "failed" if status["errors"] else "ok"
    status["seconds"] = round(time.monotonic() - status.pop("started"), 1)
    write_json(settings.output_dir / "logs" / f"sub-{participant}_status.json", status)
    if report:
        write_report(settings.output_dir, participant, status)
    return status


def write_report(output_dir: Path, participant: str, status: dict) -> None:
    """The participant's HTML report; a report never turns a good run into a failure."""
    start = time.monotonic()
    try:
        page = participant_report(output_dir, participant, status)
    except Exception as exc:
        log.warning("sub-%s: report failed: %s", participant, exc)
    else:
        log.info("sub-%s: report %s (%.1f s)", participant, page, time.monotonic() - start)


def _process(settings: Settings, layout, participant: str, command: str) -> dict:
    status, sources = start_participant(settings, layout, participant, command)
    if not status["errors"]:
        for method in settings.methods:
            if not run_method(settings, participant, method, sources, status) \
                    and settings.stop_on_first_crash:
                break                             # the remaining methods are not run
    return finish_participant(settings, participant, status)
