"""What every ``srprep-train`` command shares: the common arguments, the input scan, the
in-process run of the training workflow and the export of its report."""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from srprep.core.atomic import write_json, write_text


def add_common(parser: argparse.ArgumentParser, bids_help: str | None = None) -> None:
    """Positional folders and --participant-label (first), in every command."""
    parser.add_argument("bids_dir", type=Path, help=bids_help)
    parser.add_argument("output_dir", type=Path)
    parser.add_argument("--participant-label", nargs="+", default=[])


def add_split(parser: argparse.ArgumentParser) -> None:
    """Subject split, seed and work folder (last), in every command."""
    parser.add_argument("--split", nargs=3, type=float, default=[0.7, 0.15, 0.15])
    parser.add_argument("--seed", type=int, default=0)


def add_work_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-w", "--work-dir", type=Path, default=None)


def error(message: str) -> int:
    """A one-line usage error; exit status 2."""
    print(f"srprep-train: error: {message}", file=sys.stderr)
    return 2


def start(opts) -> tuple[Path, Path]:
    """Absolute output and work folders, with the engine's environment set up."""
    from srprep.bids_app import engine

    out = opts.output_dir.resolve()
    work = (opts.work_dir or opts.output_dir / "work").resolve()
    engine.configure_environment(work, 1)
    return out, work


def split(subjects: Sequence[str], opts) -> dict:
    from srprep.models.subject_split import split_subjects

    return split_subjects(list(subjects), tuple(opts.split), opts.seed)


def devices(value: str) -> int | str:
    return int(value) if str(value).isdigit() else value


def entity_key(name, suffix: str) -> str:
    """``sub-X[_ses-Y][_acq-Z][_run-N]_<suffix>``: a training item's name."""
    return "_".join(f"{k}-{name.entities[k]}" for k in ("sub", "ses", "acq", "run")
                    if k in name.entities) + f"_{suffix}"


def isotropic_images(bids: Path, labels: list[str], suffixes: list[str]) -> list[tuple[str, Path]]:
    """(name, path) of every isotropic image with one of ``suffixes``."""
    from srprep.core.nifti import check_header

    from ...naming import BIDSName

    found = []
    for path in sorted(bids.glob("sub-*/**/anat/*.nii*")):
        name = BIDSName.parse(path.name)
        if name.suffix not in suffixes or (labels and name.entities["sub"] not in labels):
            continue
        zooms = check_header(path, allow_4d=False).zooms
        if max(zooms) > 1.2 * min(zooms):
            continue                # thick-slice images are inputs, not training targets
        found.append((entity_key(name, name.suffix), path))
    return found


def write_metrics(rows: list[dict], columns: Sequence[str], path: Path, digits: int = 4) -> None:
    """Held-out test metrics as a TSV (floats with ``digits`` decimals)."""
    lines = ["\t".join(columns)] + ["\t".join(
        f"{r[c]:.{digits}f}" if isinstance(r[c], float) else str(r[c]) for c in columns)
        for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def run_and_report(task, work: Path, out: Path, *, export: Callable[[object, dict], dict],
                   columns: Sequence[str] | None, summary: Sequence[str], split: dict,
                   digits: int = 4, config: dict | None = None) -> int:
    """Run a training workflow in-process and export what it made.

    ``export(outputs, report)`` copies the weights (and anything else) into ``out`` and
    returns the paths to print; then ``training_report.json`` (``config`` first when
    given), ``test_metrics.tsv`` (``columns``; all of the first row's when None) and a
    one-line JSON summary (the exported paths, the report's ``summary`` keys, the split).
    Exit status 0, or 1 after a one-line error when the workflow failed.
    """
    from srprep.bids_app import engine

    outcome = engine.run(task, work / "train-cache", worker="debug")
    if not outcome.ok:
        print(f"srprep-train: error: {outcome.error}", file=sys.stderr)
        return 1
    report = outcome.outputs.report
    paths = export(outcome.outputs, report)
    write_json(out / "training_report.json", {"config": config, **report} if config else report)
    cols = list(columns) if columns is not None else list(report["test"][0] if report["test"] else [])
    write_metrics(report["test"], cols, out / "test_metrics.tsv", digits)
    print(json.dumps({**{k: str(v) for k, v in paths.items()},
                      **{k: report[k] for k in summary}, "split": split}))
    return 0
