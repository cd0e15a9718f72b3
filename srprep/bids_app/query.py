"""Finding participants and their input images in a BIDS dataset (pybids).

Queries happen here, in the CLI process; Pydra tasks only ever see concrete files plus
the source file name as a plain string (Pydra hashes files by content only).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from srprep.core.errors import InputError

from .naming import BIDSName

#: anatomical suffixes srprep processes
ANAT_SUFFIXES = ("T1w", "T2w", "PDw", "PD", "FLAIR", "T2starw", "PDT2", "inplaneT1", "inplaneT2",
                 "angio", "UNIT1")
NIFTI_EXTENSIONS = (".nii.gz", ".nii")


class UsageError(Exception):
    """A problem with the command line or the dataset as a whole (exit code 2)."""


@dataclass(frozen=True)
class SourceImage:
    """One raw input image and what is needed to name its derivatives."""

    path: Path
    relpath: str
    name: BIDSName
    datatype: str
    bval: Path | None = None
    bvec: Path | None = None

    @property
    def subject(self) -> str:
        return self.name.entities["sub"]

    @property
    def session(self) -> str | None:
        return self.name.entities.get("ses")

    @property
    def uri(self) -> str:
        """BIDS URI of the source, relative to the ``raw`` dataset link."""
        return f"bids:raw:{self.relpath}"


def is_bids_dataset(bids_dir: Path) -> bool:
    return (bids_dir / "dataset_description.json").is_file()


def load_layout(bids_dir: Path, database_dir: Path | None = None, *, reuse: bool = False):
    """Index ``bids_dir`` with pybids (never writing into it; read-only datasets work).

    ``database_dir`` keeps the index; with ``reuse`` (``--bids-database-dir``) an index
    already there is loaded instead of re-indexing the dataset (fMRIPrep's behaviour: the
    user owns that folder and re-creates it when the dataset changes)."""
    from bids import BIDSLayout

    kwargs = {"validate": False}
    if database_dir is not None:
        existing = reuse and (database_dir / "layout_index.sqlite").is_file()
        database_dir.mkdir(parents=True, exist_ok=True)
        kwargs.update(database_path=str(database_dir), reset_database=not existing)
    try:
        return BIDSLayout(str(bids_dir), **kwargs)
    except Exception as exc:  # pybids raises several types for broken datasets
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot index {bids_dir} as a BIDS dataset: {reason}") from exc


def select_participants(layout, labels: list[str]) -> list[str]:
    """Participants to process: ``labels`` (all must exist) or every subject."""
    available = sorted(layout.get_subjects())
    if not available:
        raise UsageError(f"no participants (sub-*) found in {layout.root}")
    if not labels:
        return available
    unknown = sorted(set(labels) - set(available))
    if unknown:
        raise UsageError(
            f"participant label(s) not found: {', '.join(unknown)} "
            f"(available: {', '.join(available[:20])}{' ...' if len(available) > 20 else ''})"
        )
    return sorted(set(labels), key=labels.index)


def _source(layout, f, bids_dir: Path, datatype: str) -> SourceImage:
    path = Path(f.path)
    rel = os.path.relpath(path, bids_dir).replace(os.sep, "/")
    name = BIDSName.parse(path.name)
    bval = bvec = None
    if datatype == "dwi":
        bval = layout.get_bval(str(path))
        bvec = layout.get_bvec(str(path))
        if not bval or not bvec:
            raise InputError(f"{path.name}: no .bval/.bvec file found for this dwi series")
        bval, bvec = Path(bval), Path(bvec)
    return SourceImage(path, rel, name, datatype, bval, bvec)


#: pybids entity names accepted in a ``--bids-filter-file`` (fMRIPrep's format)
FILTER_ENTITIES = ("session", "acquisition", "ceagent", "reconstruction", "run", "echo",
                   "part", "direction", "space", "flip", "inversion", "mtransfer",
                   "chunk", "datatype", "suffix", "extension", "task")


def load_bids_filters(path: Path | None) -> dict[str, dict]:
    """Read a ``--bids-filter-file``: ``{"t1w": {"acquisition": "mprage"}, "dwi": {...}}``.

    Keys are the queries (a suffix in lower case: ``t1w``, ``t2w``, ``flair``, ``pdw``,
    ``dwi``, ...), values pybids entities with a value, a list of values, or ``null``
    (the entity must be absent), as in fMRIPrep's filter files.
    """
    if path is None:
        return {}
    import json

    try:
        filters = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--bids-filter-file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--bids-filter-file {path} is not valid JSON: {exc}") from None
    if not isinstance(filters, dict) or not all(isinstance(v, dict) for v in filters.values()):
        raise UsageError(f"--bids-filter-file {path}: expected an object of objects, e.g. "
                         '{"t1w": {"acquisition": "mprage"}}')
    known = {s.lower() for s in ANAT_SUFFIXES} | {"dwi"}
    out = {}
    for query, entities in filters.items():
        if query.lower() not in known:
            raise UsageError(f"--bids-filter-file: unknown query {query!r} "
                             f"(srprep queries: {', '.join(sorted(known))})")
        bad = sorted(set(entities) - set(FILTER_ENTITIES))
        if bad:
            raise UsageError(f"--bids-filter-file: {query}: unknown entit"
                             f"{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)} "
                             "(use pybids names, e.g. session, acquisition, run)")
        out[query.lower()] = entities
    return out


def _passes(entities: dict, wanted: dict) -> bool:
    """Whether a file's pybids entities satisfy one query's filters."""
    for key, value in wanted.items():
        have = entities.get(key)
        if value is None:                       # the entity must be absent
            ok = have is None
        elif value == "*":                      # present, any value
            ok = have is not None
        else:
            values = value if isinstance(value, list) else [value]
            ok = have is not None and any(_same(have, v) for v in values)
        if not ok:
            return False
    return True


def _same(have, want) -> bool:
    """Entity values compared as pybids stores them: runs and echoes are integers
    ("01" means run 1), extensions may be given with or without their dot."""
    if str(have).lstrip(".") == str(want).lstrip("."):
        return True
    try:
        return int(str(have)) == int(str(want))
    except ValueError:
        return False


def find_images(layout, participant: str, sessions: list[str], datatypes: tuple[str, ...],
                filters: dict[str, dict] | None = None) -> list[SourceImage]:
    """Raw NIfTI inputs of one participant (optionally some sessions) by datatype, kept
    only where they pass the ``--bids-filter-file`` query of their suffix."""
    bids_dir = Path(layout.root)
    out: list[SourceImage] = []
    query = {"subject": participant, "extension": list(NIFTI_EXTENSIONS),
             "return_type": "object"}
    if sessions:
        query["session"] = sessions
    if "anat" in datatypes:
        for f in layout.get(datatype="anat", suffix=list(ANAT_SUFFIXES), **query):
            if _passes(f.get_entities(), (filters or {}).get(f.entities["suffix"].lower(), {})):
                out.append(_source(layout, f, bids_dir, "anat"))
    if "dwi" in datatypes:
        for f in layout.get(datatype="dwi", suffix="dwi", **query):
            if _passes(f.get_entities(), (filters or {}).get("dwi", {})):
                out.append(_source(layout, f, bids_dir, "dwi"))
    return sorted(out, key=lambda s: s.relpath)
