"""Provenance saved beside the derivatives: command line, settings, software versions."""
from __future__ import annotations

import datetime as _dt
import platform
import sys
from importlib import metadata
from pathlib import Path

from srprep.core.atomic import write_json, write_text

from .config import Settings, to_toml

#: distributions whose versions are recorded with every run
RECORDED = ("srprep", "pydra", "nibabel", "numpy", "scipy", "antspyx", "dipy", "pybids",
            "torch", "monai", "nipype", "bids-validator-deno")


def package_versions() -> dict[str, str]:
    versions = {}
    for name in RECORDED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def write_provenance(settings: Settings, command: str) -> Path:
    """Write ``logs/<run_id>/{provenance.json,config.toml}`` in the output dataset."""
    folder = settings.output_dir / "logs" / settings.run_id
    write_text(folder / "config.toml", to_toml(settings.to_dict()))
    return write_json(folder / "provenance.json", {
        "command": command,
        "run_id": settings.run_id,
        "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
    })
