"""The dependency lock: complete, parsed right, and compared with what is installed."""
from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from srprep.bids_app import provenance
from srprep.bids_app.cli.run import main

ROOT = Path(__file__).parents[2]


def _name(requirement: str) -> str:
    return provenance._canonical(re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0])


def test_lock_pins_every_declared_dependency_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    pins = provenance.read_lock()
    assert len(pins) > 100                                  # transitive ones included
    missing = sorted({_name(r) for r in declared} - set(pins))
    assert missing == []
    assert pins["pydra"] == "1.0a12" and pins["torch"] == "2.13.0"   # no build label
    # exact versions only: every non-comment line is name==version
    lines = [ln for ln in provenance.LOCK_FILE.read_text().splitlines()
             if ln and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+!\-]+", ln) for ln in lines)


def test_lock_status_reports_differences_and_missing(tmp_path):
    numpy_version = metadata.version("numpy")
    lock = tmp_path / "requirements.lock"
    lock.write_text("# comment\n"
                    f"NumPy=={numpy_version}+local\n"        # names and build labels normalised
                    "nibabel==0.0.1\n"
                    "not-a-real-distribution==1.0\n")
    status = provenance.lock_status(lock)
    assert status["matches"] is False
    assert status["differ"] == {"nibabel": {"installed": metadata.version("nibabel"),
                                            "locked": "0.0.1"}}
    assert status["missing"] == ["not-a-real-distribution"]
    lock.write_text(f"numpy=={numpy_version}\nnot-a-real-distribution==1.0\n")
    assert provenance.lock_status(lock)["matches"] is True   # absent extras do not count
    assert provenance.lock_status(tmp_path / "none.lock")["error"] == "lock file not found"


def test_version_line_says_whether_the_lock_is_used(monkeypatch, tmp_path, capsys):
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"numpy=={metadata.version('numpy')}\n")
    monkeypatch.setattr(provenance, "LOCK_FILE", lock)
    assert provenance.version_line() == "srprep 0.1.0 (dependencies: as locked (requirements.lock))"
    lock.write_text("numpy==0.1\nscipy==0.1\nnibabel==0.1\npybids==0.1\n")
    line = provenance.version_line()
    assert line.startswith("srprep 0.1.0 (dependencies: not the lock, 4 differ: nibabel ")
    assert line.endswith("and 1 more)")
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "not the lock, 4 differ" in capsys.readouterr().out
