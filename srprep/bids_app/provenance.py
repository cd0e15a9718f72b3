"""Provenance saved beside the derivatives: command line, settings, software versions,
and whether the installed dependencies are the ones in the project's lock file."""
from __future__ import annotations

import datetime as _dt
import platform
import re
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


#: the pip constraints file that CI and the container install from (``.ci/update-lock``)
LOCK_FILE = Path(__file__).parents[1] / "data" / "requirements.lock"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _public(version: str) -> str:
    """``2.13.0+cpu`` -> ``2.13.0``: a build label does not make another release."""
    return version.split("+", 1)[0]


def read_lock(path: Path | None = None) -> dict[str, str]:
    """``{canonical name: version}`` of the ``name==version`` lines of a lock file."""
    pins = {}
    for line in (LOCK_FILE if path is None else path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line and ";" not in line:
            name, version = line.split("==", 1)
            pins[_canonical(name.split("[", 1)[0])] = version.strip()
    return pins


def lock_status(path: Path | None = None) -> dict:
    """Compare the installed distributions with the lock file.

    ``matches`` is true when every locked distribution that is installed has its locked
    version (extras that were not installed, e.g. ``test``, are listed in ``missing``).
    """
    path = LOCK_FILE if path is None else path
    if not path.is_file():
        return {"lock_file": str(path), "matches": False, "differ": {}, "missing": [],
                "error": "lock file not found"}
    installed = {_canonical(d.metadata["Name"] or ""): d.version
                 for d in metadata.distributions() if d.metadata["Name"]}
    differ, missing = {}, []
    for name, version in sorted(read_lock(path).items()):
        have = installed.get(name)
        if have is None:
            missing.append(name)
        elif _public(have) != _public(version):
            differ[name] = {"installed": have, "locked": version}
    return {"lock_file": path.name, "matches": not differ, "differ": differ,
            "missing": missing}


def version_line() -> str:
    """``srprep --version``: the version and whether the dependencies are the locked ones."""
    from srprep import __version__

    status = lock_status()
    if status.get("error"):
        deps = f"dependency lock: {status['error']}"
    elif status["matches"]:
        deps = "dependencies: as locked (requirements.lock)"
    else:
        shown = ", ".join(f"{n} {v['installed']} (lock {v['locked']})"
                          for n, v in list(status["differ"].items())[:3])
        more = len(status["differ"]) - 3
        deps = (f"dependencies: not the lock, {len(status['differ'])} differ: {shown}"
                + (f" and {more} more" if more > 0 else ""))
    return f"srprep {__version__} ({deps})"


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
        "dependency_lock": lock_status(),
    })
