"""``srprep`` entry point: validate -> plan -> per-participant submit -> export -> report."""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import shlex
import sys
from pathlib import Path

from ..query import UsageError, load_bids_filters
from .parser import build_parser

log = logging.getLogger("srprep")


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


def settings_from_args(opts):
    """Check paths and options; build :class:`Settings`.  Raises :class:`UsageError`."""
    from ..config import Settings

    bids_dir = opts.bids_dir.expanduser().resolve()
    if not bids_dir.is_dir():
        raise UsageError(f"BIDS dataset not found: {opts.bids_dir}")
    if not (bids_dir / "dataset_description.json").is_file():
        raise UsageError(f"not a BIDS dataset (no dataset_description.json): {opts.bids_dir}")
    output_dir = opts.output_dir.expanduser().resolve()
    if output_dir == bids_dir or (_inside(output_dir, bids_dir)
                                  and not _inside(output_dir, bids_dir / "derivatives")):
        raise UsageError(f"output directory {opts.output_dir} is inside the input dataset; use "
                         f"{bids_dir / 'derivatives' / 'srprep'} or a folder outside it")
    if _inside(bids_dir, output_dir):
        raise UsageError(f"output directory {opts.output_dir} contains the input dataset")
    work_dir = opts.work_dir.expanduser().resolve()
    if _inside(work_dir, bids_dir) or work_dir == output_dir:
        raise UsageError(f"work directory {opts.work_dir} must be outside the input dataset "
                         "and differ from the output directory")
    nprocs = opts.nprocs or _default_nprocs()
    omp = opts.omp_nthreads or min(8, nprocs)
    if omp > nprocs:
        log.warning("--omp-nthreads %d > --nprocs %d; using %d", omp, nprocs, nprocs)
        omp = nprocs
    worker = opts.worker or ("debug" if opts.debug else "cf")
    weights = opts.weights_dir.expanduser().resolve() if opts.weights_dir else None
    if weights is not None and not weights.is_dir():
        raise UsageError(f"--weights-dir {opts.weights_dir} is not a folder")
    return Settings(
        bids_dir=bids_dir, output_dir=output_dir, work_dir=work_dir,
        participant_labels=list(opts.participant_label), session_labels=list(opts.session_label),
        methods=list(dict.fromkeys(opts.method)), output_resolution=list(opts.output_resolution),
        nprocs=nprocs, omp_nthreads=omp, mem_gb=opts.mem, device=opts.device,
        gpus=opts.gpus or 0,
        weights_dir=weights, worker=worker, sbatch_args=opts.sbatch_args,
        bids_filters=json.dumps(load_bids_filters(opts.bids_filter_file)),
        bids_database_dir=(opts.bids_database_dir.expanduser().resolve()
                           if opts.bids_database_dir else None),
        per_node_sbatch_args=_gpu_node_args(opts, worker),
        skip_bids_validation=opts.skip_bids_validation, debug=opts.debug,
        clean_workdir=opts.clean_workdir, stop_on_first_crash=opts.stop_on_first_crash,
        random_seed=-1 if opts.random_seed is None else opts.random_seed,
        write_graph=opts.write_graph,
        method_options={"unires": _unires_options(opts), "babyai": _learned_options(opts),
                        "easysr": _easysr_options(opts) if "easysr" in opts.method else {},
                        "angular": _angular_options(opts)},
    )


#: command-line destinations -> the Settings field they set (for --config-file)
_CLI_FIELDS = {
    "participant_label": "participant_labels", "session_label": "session_labels",
    "method": "methods", "output_resolution": "output_resolution", "nprocs": "nprocs",
    "omp_nthreads": "omp_nthreads", "mem": "mem_gb", "device": "device", "gpus": "gpus",
    "weights_dir": "weights_dir", "worker": "worker", "sbatch_args": "sbatch_args",
    "skip_bids_validation": "skip_bids_validation", "debug": "debug",
    "clean_workdir": "clean_workdir", "stop_on_first_crash": "stop_on_first_crash",
    "bids_filter_file": "bids_filters", "bids_database_dir": "bids_database_dir",
    "work_dir": "work_dir", "random_seed": "random_seed", "write_graph": "write_graph",
}
#: fields that are derived or belong to one run, never taken from a config file
_NOT_FROM_FILE = ("bids_dir", "output_dir", "analysis_level", "run_id", "version",
                  "per_node_sbatch_args")


def explicit_options(argv: list[str]) -> set[str]:
    """Destinations given on the command line (not left at their defaults)."""
    import argparse

    parser = build_parser()
    for action in parser._actions:          # groups share these action objects
        action.default = argparse.SUPPRESS
    known, _ = parser.parse_known_args(argv)
    return set(vars(known))


def apply_config_file(settings, path: Path, explicit: set[str]):
    """``--config-file``: the settings a run wrote (``config.toml``), with every option
    given on this command line taking precedence; paths and the run id stay this run's."""
    import dataclasses

    from ..config import Settings

    try:
        saved = Settings.load(path)
    except FileNotFoundError:
        raise UsageError(f"--config-file {path} not found") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"--config-file {path} is not a srprep config.toml: {exc}") from None
    keep = {field for dest, field in _CLI_FIELDS.items() if dest in explicit}
    general = set(_CLI_FIELDS) | {"bids_dir", "output_dir", "analysis_level", "config_file",
                                  "verbose", "reports_only"}
    if "methods" in keep or explicit - general:
        keep.add("method_options")           # methods or their options given: this command's
    updates = {f.name: getattr(saved, f.name) for f in dataclasses.fields(Settings)
               if f.name not in keep and f.name not in _NOT_FROM_FILE}
    return dataclasses.replace(settings, **updates)


def _gpu_node_args(opts, worker: str) -> dict[str, str]:
    """Per-node sbatch arguments: GPU resources for the methods' GPU steps only."""
    from srprep.core.device import gpus_present

    from ..methods import get_method

    if worker != "slurm" or opts.device == "cpu" or not opts.gpu_sbatch_args:
        return {}
    if opts.device == "auto" and not gpus_present():
        # a CPU-only cluster (or login node without GPUs) must not queue for --gres
        log.info("no GPU at submission and --device auto: SLURM steps request no GPU "
                 "(use --device cuda to request one)")
        return {}
    return {node: opts.gpu_sbatch_args for m in dict.fromkeys(opts.method)
            for node in get_method(m).gpu_nodes}


def _learned_options(opts) -> dict:
    if not 0 <= opts.sw_overlap < 1:
        raise UsageError(f"--sw-overlap must be in [0, 1), got {opts.sw_overlap}")
    out = {"overlap": opts.sw_overlap, "mode": opts.sw_mode, "batch_size": opts.sw_batch_size}
    if opts.atlas is not None and str(opts.atlas).lower() == "mni152":
        out["atlas"] = "mni152"                 # the adult template, only when asked
    elif opts.atlas is not None:
        atlas = opts.atlas.expanduser().resolve()
        if not atlas.is_file():
            raise UsageError(f"--atlas {opts.atlas} not found")
        out["atlas"] = str(atlas)
    return out


def _angular_options(opts) -> dict:
    out: dict = {"factor": opts.angular_factor, "variant": opts.pccnn_variant,
                 "context": opts.pccnn_context, "batch_size": opts.sw_batch_size,
                 "max_context": opts.pccnn_max_context}
    if opts.pccnn_parity == "reference":
        if opts.pccnn_context != "shell":
            raise UsageError("--pccnn-parity reference sets the context itself (all shells)")
        out["context"] = "reference"
    if (opts.target_bvals is None) != (opts.target_bvecs is None):
        raise UsageError("--target-bvals and --target-bvecs go together")
    if opts.target_bvals is not None:
        from srprep.core.dwi import read_bvals_bvecs
        from srprep.core.errors import InputError

        try:
            read_bvals_bvecs(opts.target_bvals, opts.target_bvecs)
        except (InputError, OSError) as exc:
            raise UsageError(f"target scheme: {exc}") from None
        out["target_bval"] = str(opts.target_bvals.expanduser().resolve())
        out["target_bvec"] = str(opts.target_bvecs.expanduser().resolve())
    if opts.pccnn_model is not None:
        model = opts.pccnn_model.expanduser().resolve()
        if not model.is_file():
            raise UsageError(f"--pccnn-model {opts.pccnn_model} not found")
        out["model"] = str(model)
    return out


def _easysr_options(opts) -> dict:
    out: dict = {"resolution": None, "model": opts.easysr_model}
    if getattr(opts, "output_resolution_given", False):
        vs = set(float(v) for v in opts.output_resolution)
        if len(vs) != 1:
            raise UsageError("easysr needs an isotropic --output-resolution (one value)")
        out["resolution"] = vs.pop()
    if opts.easysr_model.lower() not in ("mixed", "t1"):
        model = Path(opts.easysr_model).expanduser().resolve()
        if not model.is_file():
            raise UsageError(f"--easysr-model {opts.easysr_model}: not 'mixed', 't1' or a file")
        out["model"] = str(model)
    else:
        out["model"] = opts.easysr_model.lower()
    if opts.template is not None:
        template = opts.template.expanduser().resolve()
        if not template.is_file():
            raise UsageError(f"--template {opts.template} not found")
        out["template"] = str(template)
    return out


def _unires_options(opts) -> dict:
    if opts.reg_scale <= 0:
        raise UsageError(f"--reg-scale must be positive, got {opts.reg_scale}")
    if opts.res_origin and not opts.ct:
        raise UsageError("--res-origin is for CT inputs: add --ct")
    labels = _label_files(opts.label_file)
    if labels and opts.res_origin:
        raise UsageError("--label-file cannot be combined with --res-origin")
    out = {"reg_scale": opts.reg_scale, "scaling": opts.scale,
           "unified_rigid": opts.unified_rigid, "ct": opts.ct, "linear": opts.linear,
           "common_output": opts.common_output, "denoising": opts.denoising,
           "coregister": not opts.no_coregister, "max_iter": opts.max_iter,
           "tolerance": opts.tolerance, "grid": opts.output_grid}
    if not opts.no_coregister:
        if opts.coregistration_tolerance < 0:
            raise UsageError("--coregistration-tolerance must be >= 0, got "
                             f"{opts.coregistration_tolerance}")
        out["coregistration_tolerance"] = opts.coregistration_tolerance
    if opts.atlas_rigid and not opts.common_output:
        raise UsageError("--atlas-rigid goes with --common-output")
    if opts.crop or opts.common_output:
        out.update(crop=opts.crop, fov=opts.fov)
    if opts.common_output:
        out["atlas_rigid"] = opts.atlas_rigid
    if opts.res_origin:
        out["res_origin"] = True
    if labels:
        out["label_files"] = labels
    if opts.include_echoes:
        out["include_echoes"] = True
    return out


def _label_files(paths: list[Path]) -> list[str]:
    """``--label-file`` arguments (files, or folders holding *_dseg / *_mask maps) as
    absolute paths; each must be a BIDS-named NIfTI."""
    from ..naming import BIDSName

    found: list[Path] = []
    for path in paths:
        path = path.expanduser().resolve()
        if path.is_dir():   # maps in a template space (space-...) lie on no input's grid
            found += sorted(f for pattern in ("*_dseg.nii*", "*_mask.nii*")
                            for f in path.rglob(pattern)
                            if "_space-" not in f.name or "_space-orig_" in f.name)
        elif path.is_file():
            found.append(path)
        else:
            raise UsageError(f"--label-file {path} not found")
    for f in found:
        try:
            BIDSName.parse(f.name)
        except ValueError:
            raise UsageError(f"--label-file {f.name}: not a BIDS name (sub-<label>[_ses-"
                             "<label>]..._dseg.nii.gz)") from None
        if not f.name.endswith((".nii", ".nii.gz")):
            raise UsageError(f"--label-file {f.name}: not a NIfTI file")
    return [str(f) for f in dict.fromkeys(found)]


def _default_nprocs() -> int:
    from .parser import _default_nprocs as default

    return default()


def _setup_logging(verbosity: int, debug: bool) -> None:
    level = logging.DEBUG if debug or verbosity > 1 else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr)
    logging.getLogger("pydra").setLevel(logging.DEBUG if verbosity > 2 else logging.WARNING)
    logging.getLogger("bids").setLevel(logging.WARNING)


def _check_device(device: str) -> None:
    if device != "cuda":
        return
    os.environ.setdefault("PYTORCH_NVML_BASED_CUDA_CHECK", "1")  # no CUDA context: fork-safe
    import torch

    if not torch.cuda.is_available():
        raise UsageError("--device cuda was requested but no CUDA device is available")


def _validate_input(settings) -> None:
    """Validate the input dataset, ignoring participants this run does not process."""
    from ..validate import validate_dataset

    present = sorted(p.name[4:] for p in settings.bids_dir.glob("sub-*") if p.is_dir())
    selected = settings.participant_labels or present
    ignored = tuple(sorted(set(present) - set(selected)))
    report = validate_dataset(settings.bids_dir, ignore_subjects=ignored,
                              scratch=settings.work_dir / ".cache")
    if not report.available:
        log.warning("bids-validator-deno not found: input dataset not validated")
    elif not report.ok:
        shown = "; ".join(report.errors[:5])
        more = f" (+{len(report.errors) - 5} more)" if len(report.errors) > 5 else ""
        raise UsageError(f"input dataset is not valid BIDS: {shown}{more} "
                         "(use --skip-bids-validation to proceed anyway)")


def _prepare(settings):
    """Environment, input validation, participant selection.  Returns (layout, labels)."""
    from .. import engine
    from ..query import load_layout, select_participants

    engine.configure_environment(settings.work_dir, settings.omp_nthreads)
    os.environ["SRPREP_DEVICE"] = settings.device
    if settings.gpus:
        os.environ["SRPREP_GPUS"] = str(settings.gpus)
    if settings.weights_dir:
        os.environ["SRPREP_WEIGHTS_DIR"] = str(settings.weights_dir)
    _check_device(settings.device)
    if not settings.skip_bids_validation:
        _validate_input(settings)
    if settings.bids_database_dir:           # the user's index: reused when present
        layout = load_layout(settings.bids_dir, settings.bids_database_dir, reuse=True)
    else:
        layout = load_layout(settings.bids_dir, settings.version_dir / "pybids_db")
    return layout, select_participants(layout, settings.participant_labels)


def _run_participants(settings, layout, participants, command: str) -> list[dict]:
    """Every participant x method as one Pydra graph (the worker sees every job of the
    dataset at once); one after another with ``--worker debug`` (in-process) and with
    ``--stop-on-first-crash`` (nothing after the first failure is started)."""
    if settings.worker == "debug" or settings.stop_on_first_crash:
        results = _run_one_by_one(settings, layout, participants, command)
    else:
        results = _run_as_graph(settings, layout, participants, command)
    for status in results:
        for err in status["errors"]:
            print(f"srprep: sub-{status['participant']} failed: {err}", file=sys.stderr)
    return results


def _run_one_by_one(settings, layout, participants, command: str) -> list[dict]:
    from tqdm import tqdm

    from ..participant import process_participant

    results = []
    logs = settings.output_dir / "logs" / settings.run_id
    for label in tqdm(participants, desc="participants", unit="sub", disable=None):
        handler = logging.FileHandler(_mkdir(logs) / f"sub-{label}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)
        try:
            status = process_participant(settings, layout, label, command)
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
        results.append(status)
        if settings.stop_on_first_crash and status["status"] == "failed":
            rest = participants[len(results):]
            if rest:
                print(f"srprep: stopping at the first failure (--stop-on-first-crash); not "
                      f"run: {', '.join('sub-' + p for p in rest)}", file=sys.stderr)
            break
    return results


def _run_as_graph(settings, layout, participants, command: str) -> list[dict]:
    from tqdm import tqdm

    from .. import engine
    from ..participant import (Unit, finish_method, finish_participant, locked_status,
                               participant_lock, plan_method, start_participant,
                               unit_cache_root, write_report)

    results: dict[str, dict] = {}
    statuses: dict[str, dict] = {}
    pending: dict[str, int] = {}
    units: dict[str, Unit] = {}
    logs = settings.output_dir / "logs" / settings.run_id
    with contextlib.ExitStack() as stack:
        for label in participants:
            if not stack.enter_context(participant_lock(settings, label)):
                results[label] = locked_status(settings, label)
                continue
            log_file = _mkdir(logs) / f"sub-{label}.log"
            stack.enter_context(_participant_log(log_file, label))
            with _current_participant(label):
                status, sources = start_participant(settings, layout, label, command)
                statuses[label] = status
                planned = []
                for method in settings.methods if not status["errors"] else ():
                    unit = plan_method(settings, label, method, sources, status)
                    if isinstance(unit, Unit):
                        log.info("sub-%s: %s planned: %d job(s)", label, method,
                                 len(unit.jobs))
                        planned.append(unit)
            for unit in planned:
                units[f"sub_{label}__{unit.method}"] = unit
            pending[label] = len(planned)
            if not planned:
                results[label] = finish_participant(settings, label, status)
        if units:
            n_procs = settings.worker_processes
            log.info("running %d job(s) of %d participant(s) as one graph, %d at a time",
                     len(units), len(pending), n_procs)
            bar = stack.enter_context(tqdm(total=len(units), desc="participant x method",
                                           unit="job", disable=None))

            def finished(name: str, outcome):
                """Export a finished unit; when it was its participant's last, hand the
                report (matplotlib: the slow part) to the worker pool."""
                unit = units[name]
                label = unit.participant
                bar.update(1)
                with _current_participant(label):
                    try:
                        finish_method(settings, unit, outcome, statuses[label])
                    except Exception as exc:   # e.g. a full disk while exporting
                        log.exception("sub-%s: %s: export failed", label, unit.method)
                        statuses[label]["errors"].append(f"{unit.method}: export failed: "
                                                         f"{type(exc).__name__}: {exc}")
                    pending[label] -= 1
                    if pending[label]:
                        return None
                    results[label] = finish_participant(settings, label, statuses[label],
                                                        report=False)
                return write_report, (settings.output_dir, label, results[label])

            roots = {name: unit_cache_root(settings, unit) for name, unit in units.items()}
            engine.run_graph(
                {name: (unit.task, roots[name]) for name, unit in units.items()},
                settings.run_dir / "graph", worker=settings.worker, n_procs=n_procs,
                sbatch_args=settings.sbatch_args, per_node_args=settings.per_node_sbatch_args,
                on_done=finished, mem_gb=settings.mem_gb,
                log_routes={str(root): str(logs / f"sub-{units[name].participant}.log")
                            for name, root in roots.items()})
    for label, status in statuses.items():      # never left without a status
        if label not in results:
            status["errors"].append("the run ended before this participant finished")
            results[label] = finish_participant(settings, label, status)
    return [results[label] for label in participants if label in results]


_PARTICIPANT = contextvars.ContextVar("srprep_participant", default=None)


@contextlib.contextmanager
def _current_participant(label: str):
    """Log records made inside belong to ``label``'s log."""
    token = _PARTICIPANT.set(label)
    try:
        yield
    finally:
        _PARTICIPANT.reset(token)


@contextlib.contextmanager
def _participant_log(path: Path, label: str):
    """``sub-<label>.log`` while many participants run at once: the records made for this
    participant (:func:`_current_participant`) or naming it (``sub-<label>``); the
    spawned workers route their jobs' records by cache folder (``log_routes``)."""
    import re

    named = re.compile(rf"\bsub-{re.escape(label)}\b")

    def mine(record: logging.LogRecord) -> bool:
        current = _PARTICIPANT.get()
        return current == label or (current is None and bool(named.search(record.getMessage())))

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.addFilter(mine)
    handler.srprep_participant = label
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _reports_only(settings, participants: list[str]) -> int:
    """Re-write the participant reports and the index from the last run's records."""
    from ..reports import dataset_index, participant_report

    missing = []
    for label in participants:
        record = settings.output_dir / "logs" / f"sub-{label}_status.json"
        if not record.is_file():
            missing.append(label)
            continue
        page = participant_report(settings.output_dir, label, json.loads(record.read_text()))
        log.info("report written: %s", page)
    dataset_index(settings.output_dir)
    if missing:
        print(f"srprep: error: no earlier run in {settings.output_dir} for "
              f"{', '.join('sub-' + m for m in missing)}: nothing to report", file=sys.stderr)
        return 1
    return 0


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the BIDS App; returns the exit code (0 ok, 1 participant failures, 2 usage)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = build_parser().parse_args(argv)
    _setup_logging(opts.verbose, opts.debug)
    try:
        settings = settings_from_args(opts)
        if opts.config_file:
            settings = apply_config_file(settings, opts.config_file, explicit_options(argv))
        layout, participants = _prepare(settings)
    except UsageError as exc:
        print(f"srprep: error: {exc}", file=sys.stderr)
        return 2
    from ..export import prepare_output_dir
    from ..provenance import write_provenance
    from ..reports import dataset_index

    if opts.reports_only:
        return _reports_only(settings, participants)
    command = "srprep " + shlex.join(argv)
    settings.save()
    engine_name = os.environ.get("SRPREP_CONTAINER")
    prepare_output_dir(settings.output_dir, settings.bids_dir,
                       container={"Type": engine_name} if engine_name else None)
    write_provenance(settings, command)
    results = _run_participants(settings, layout, participants, command)
    dataset_index(settings.output_dir)
    ran = [m for m in settings.methods
           if any(e["name"] == m and e["outputs"] for r in results for e in r.get("methods", []))]
    if ran:
        from ..citation import write_citation

        write_citation(settings, ran)
    if results and all(r["status"] == "locked" for r in results):
        print(f"srprep: error: another srprep run is writing to {settings.output_dir} "
              "(all selected participants are locked); wait for it to finish or choose "
              "another output directory", file=sys.stderr)
        return 2
    failed = [r["participant"] for r in results if r["status"] != "ok"]
    if failed:
        print(f"srprep: {len(failed)} of {len(results)} participant(s) failed: "
              f"{', '.join('sub-' + f for f in failed)}; see {settings.output_dir / 'logs'}",
              file=sys.stderr)
        return 1
    log.info("srprep finished: %d participant(s) ok", len(results))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
