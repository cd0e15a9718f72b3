"""Run-wide settings: one dataclass, saved to the work directory as TOML.

Workers and resumed runs read the same file, so a run can be reproduced from
``<work_dir>/srprep-<version>/<run_id>/config.toml``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import tomllib
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

from srprep import __version__
from srprep.core.atomic import write_text


@dataclass
class Settings:
    """Everything a run needs; paths are absolute."""

    bids_dir: Path
    output_dir: Path
    work_dir: Path
    analysis_level: str = "participant"
    participant_labels: list[str] = field(default_factory=list)
    session_labels: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: ["unires"])
    output_resolution: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float = 0.0
    device: str = "auto"
    gpus: int = 0                      # 0: every visible GPU
    weights_dir: Path | None = None
    bids_filters: str = "{}"           # --bids-filter-file, as JSON text (TOML has no null)
    bids_database_dir: Path | None = None
    worker: str = "cf"
    sbatch_args: str = ""
    per_node_sbatch_args: dict = field(default_factory=dict)
    skip_bids_validation: bool = False
    debug: bool = False
    clean_workdir: bool = False
    stop_on_first_crash: bool = False
    random_seed: int = -1              # --random-seed; -1: each step's own fixed seed
    write_graph: bool = False
    method_options: dict = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
                        + "_" + uuid.uuid4().hex[:8])
    version: str = __version__

    @property
    def version_dir(self) -> Path:
        """``<work_dir>/srprep-<version>``: caches are invalid across versions."""
        return self.work_dir / f"srprep-{self.version}"

    def cache_root(self, participant: str) -> Path:
        """Per-participant Pydra cache root."""
        return self.version_dir / f"sub-{participant}"

    @property
    def worker_processes(self) -> int:
        """Jobs the default worker runs at once: ``--nprocs`` / ``--omp-nthreads``."""
        return max(1, self.nprocs // self.omp_nthreads)

    @property
    def seed(self) -> int | None:
        """``--random-seed`` for the stochastic steps (None: each step's fixed default)."""
        return None if self.random_seed < 0 else self.random_seed

    @property
    def filters(self) -> dict:
        """The ``--bids-filter-file`` queries (see :func:`query.load_bids_filters`)."""
        return json.loads(self.bids_filters or "{}")

    @property
    def run_dir(self) -> Path:
        return self.version_dir / "runs" / self.run_id

    def to_dict(self) -> dict:
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else value
        return out

    def save(self, path: str | os.PathLike | None = None) -> Path:
        """Write the settings as TOML (default ``<run_dir>/config.toml``)."""
        path = Path(path) if path else self.run_dir / "config.toml"
        write_text(path, to_toml(self.to_dict()))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Settings:
        data = tomllib.loads(Path(path).read_text())
        for key in ("bids_dir", "output_dir", "work_dir"):
            data[key] = Path(data[key])
        for key in ("weights_dir", "bids_database_dir"):
            data[key] = Path(data[key]) if data.get(key) else None
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in fields(cls)}})


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def to_toml(data: dict) -> str:
    """Serialise a flat dict (values: str, numbers, bools, lists, inline dicts); ``None``
    values are omitted (TOML has no null)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if v is not None]
    return "\n".join(lines) + "\n"

