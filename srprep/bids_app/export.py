"""Idempotent, atomic writer of BIDS derivatives (runs outside Pydra).

Pydra skips cached tasks, so a "sink" task would not restore deleted derivatives on a
re-run; the exporter always compares the workflow results with what is on disk and
(re)writes what differs, each file through a temporary + rename.
"""
from __future__ import annotations

import filecmp
import json
import logging
from pathlib import Path

from srprep import __version__
from srprep.core.atomic import copy_file, remove_stale_temporaries, write_text

from .methods.base import Derivative

log = logging.getLogger("srprep.export")

BIDS_VERSION = "1.10.0"
# Patterns without a trailing slash: bids-validator-deno 3 does not match "dir/" forms.
# BIDS 1.10's derivative rules do not list .bval/.bvec beside preprocessed dwi series
# (QSIPrep's outputs are in the same position); they are ignored rather than dropped.
BIDSIGNORE = """\
*.html
figures
logs
*_dwi.bval
*_dwi.bvec
*_xfm.txt
*_xfm.json
"""


def _same(src: Path, dst: Path) -> bool:
    return dst.is_file() and filecmp.cmp(src, dst, shallow=False)


def _copy(src: Path, dst: Path) -> bool:
    if _same(src, dst):
        return False
    copy_file(src, dst)
    return True


def _write_json_if_changed(obj: dict, dst: Path) -> bool:
    text = json.dumps(obj, indent=2, default=str) + "\n"
    if dst.is_file() and dst.read_text() == text:
        return False
    write_text(dst, text)
    return True


def export_derivatives(derivatives: list[Derivative], output_dir: Path) -> list[Path]:
    """Write each derivative (NIfTI, JSON sidecar, extra files) under ``output_dir``.

    Returns:
        The derivative NIfTI paths (written or already up to date).
    """
    written = []
    for d in derivatives:
        target = output_dir / d.relpath
        changed = _copy(Path(d.file), target)
        stem = target.name[: -len(d.name.extension)] if d.name.extension else target.name
        changed |= _write_json_if_changed(d.sidecar, target.with_name(stem + ".json"))
        for ext, src in d.extra_files.items():
            if src is not None:
                changed |= _copy(Path(src), target.with_name(stem + ext))
        log.info("%s %s", "wrote" if changed else "up to date:", d.relpath)
        written.append(target)
    return written


def dataset_description(bids_dir: Path, *, container: dict | None = None) -> dict:
    """``dataset_description.json`` of the derivative dataset."""
    generated = {"Name": "srprep", "Version": __version__,
                 "CodeURL": "https://github.com/srprep/srprep"}
    if container:
        generated["Container"] = container
    desc = {
        "Name": "srprep derivatives: super-resolved and resliced MRI",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [{"URL": bids_dir.resolve().as_uri()}],
        "DatasetLinks": {"raw": bids_dir.resolve().as_uri()},
        "HowToAcknowledge": "Please cite srprep and the papers of the methods you used "
                            "(listed in each sidecar's srprep.Method).",
    }
    raw_file = bids_dir / "dataset_description.json"
    try:
        raw = json.loads(raw_file.read_text())
    except (OSError, ValueError):
        raw = {}
    if "License" in raw:
        desc["License"] = raw["License"]
    if "DatasetDOI" in raw:
        desc["SourceDatasets"][0]["DOI"] = raw["DatasetDOI"]
    return desc


def prepare_output_dir(output_dir: Path, bids_dir: Path, *, container: dict | None = None
                       ) -> None:
    """Create the derivative dataset's top-level files (idempotent)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    # other runs may be writing (job arrays): only old top-level leftovers are removed here;
    # each participant's folder is cleaned under that participant's lock
    removed = remove_stale_temporaries(output_dir, older_than=3600, recursive=False)
    if removed:
        log.info("removed %d temporary files left by an interrupted run", removed)
    _write_json_if_changed(dataset_description(bids_dir, container=container),
                           output_dir / "dataset_description.json")
    ignore = output_dir / ".bidsignore"
    if not ignore.is_file() or ignore.read_text() != BIDSIGNORE:
        write_text(ignore, BIDSIGNORE)


__all__ = ["export_derivatives", "prepare_output_dir", "dataset_description"]
