"""BIDS validation with the schema-based validator (``bids-validator-deno``, offline).

The validator is a separate program (a deno binary installed from PyPI).  It needs a
writable HOME, so it runs with HOME pointed into the work directory when the real one
is not writable (containers).  Exit code 16 means errors were found.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ValidationReport:
    """Errors and warnings as ``CODE: location`` strings."""

    ok: bool
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    available: bool = True


def find_validator() -> str | None:
    """Path of ``bids-validator-deno`` (PATH first, then beside this Python)."""
    exe = shutil.which("bids-validator-deno")
    if exe:
        return exe
    candidate = Path(sys.executable).parent / "bids-validator-deno"
    return str(candidate) if candidate.is_file() else None


def _home(scratch: Path | None) -> dict:
    env = dict(os.environ)
    home = Path(env.get("HOME", "/nonexistent"))
    if not (home.is_dir() and os.access(home, os.W_OK)):
        base = scratch or Path(tempfile.gettempdir())
        home = base / "validator-home"
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
    env.setdefault("NO_COLOR", "1")
    return env


def validate_dataset(
    dataset: Path,
    *,
    ignore_codes: tuple[str, ...] = (),
    ignore_subjects: tuple[str, ...] = (),
    scratch: Path | None = None,
    timeout: float = 600.0,
) -> ValidationReport:
    """Run the validator on ``dataset`` (raw or derivative).

    Args:
        ignore_codes: issue codes to drop (e.g. warnings about README content).
        ignore_subjects: participants not processed in this run; their files are
            ignored so their problems do not block the selected ones.
        scratch: writable folder for the validator's HOME/config if needed.
    """
    exe = find_validator()
    if exe is None:
        return ValidationReport(ok=True, available=False)
    config = {"ignore": [{"code": c} for c in ignore_codes]}
    if ignore_subjects:
        config["ignoredFiles"] = [f"/sub-{s}/**" for s in ignore_subjects]
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        cfg = Path(tmp) / "validator.json"
        cfg.write_text(json.dumps(config))
        proc = subprocess.run(
            [exe, str(dataset), "--format", "json", "-c", str(cfg)],
            capture_output=True, text=True, env=_home(scratch), timeout=timeout, check=False,
        )
    try:
        issues = json.loads(proc.stdout)["issues"]["issues"]
    except (ValueError, KeyError, TypeError):
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        return ValidationReport(False, [f"validator failed (exit {proc.returncode}): "
                                        f"{detail[-1] if detail else 'no output'}"])
    errors = [f"{i['code']}: {i.get('location', '')}" for i in issues if i.get("severity") == "error"]
    warnings = [f"{i['code']}: {i.get('location', '')}" for i in issues
                if i.get("severity") == "warning"]
    return ValidationReport(not errors and proc.returncode == 0, errors, warnings)
