"""--bids-filter-file (fMRIPrep's format) and --bids-database-dir."""
from __future__ import annotations

import json
import shutil

import pytest

from srprep.bids_app.cli.run import main
from srprep.bids_app.query import UsageError, _passes, load_bids_filters


def _args(demo, *extra):
    return [str(demo / "bids"), str(demo / "out"), "participant", "-w", str(demo / "work"),
            "--method", "linear", "--vx", "4", "--participant-label", "01",
            "--skip-bids-validation",
            *map(str, extra)]


def _outputs(demo):
    return sorted(p.name for p in (demo / "out").rglob("*.nii.gz"))


@pytest.mark.parametrize("entities, wanted, ok", [
    ({"session": "1", "suffix": "T1w"}, {}, True),
    ({"session": "1"}, {"session": "1"}, True),
    ({"session": "1"}, {"session": ["2", "1"]}, True),
    ({"session": "1"}, {"session": "2"}, False),
    ({"run": 1}, {"run": "01"}, True),                    # runs are integers in pybids
    ({"run": 2}, {"run": [1]}, False),
    ({"acquisition": "mprage"}, {"acquisition": None}, False),   # null: must be absent
    ({}, {"acquisition": None}, True),
    ({"acquisition": "mprage"}, {"acquisition": "*"}, True),
    ({}, {"acquisition": "*"}, False),
])
def test_filter_semantics(entities, wanted, ok):
    assert _passes(entities, wanted) is ok


@pytest.mark.parametrize("text, message", [
    ("{", "not valid JSON"),
    ('["t1w"]', "expected an object of objects"),
    ('{"bold": {"task": "rest"}}', "unknown query 'bold'"),
    ('{"t1w": {"acq": "mprage"}}', "unknown entity acq"),
])
def test_bad_filter_files_are_usage_errors(tmp_path, text, message):
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_bids_filters(path)


def test_filter_file_selects_inputs_and_is_recorded(demo_dataset, tmp_path, capsys):
    # a second T2w acquisition for sub-01; the filter keeps only the one without acq-
    anat = demo_dataset / "bids/sub-01/ses-1/anat"
    shutil.copy(anat / "sub-01_ses-1_T2w.nii.gz", anat / "sub-01_ses-1_acq-fast_T2w.nii.gz")
    flt = tmp_path / "filters.json"
    flt.write_text(json.dumps({"t2w": {"acquisition": None}, "pdw": {"session": "9"}}))
    assert main(_args(demo_dataset, "--bids-filter-file", flt)) == 0, capsys.readouterr().err
    names = _outputs(demo_dataset)
    assert "sub-01_ses-1_res-4mm_desc-linear_T2w.nii.gz" in names
    assert not [n for n in names if "acq-fast" in n or "PDw" in n]       # filtered out
    assert any("T1w" in n for n in names) and any("dwi" in n for n in names)  # no query
    config = next((demo_dataset / "work").rglob("config.toml")).read_text()
    assert "bids_filters" in config and "acquisition" in config


def test_missing_filter_file_exits_2(demo_dataset, capsys, tmp_path):
    assert main(_args(demo_dataset, "--bids-filter-file", tmp_path / "nope.json")) == 2
    assert "--bids-filter-file" in capsys.readouterr().err
    assert not (demo_dataset / "out").exists() or not _outputs(demo_dataset)


def test_database_dir_is_built_once_and_reused(demo_dataset, tmp_path, monkeypatch, capsys):
    import bids

    db = tmp_path / "pybids-db"
    calls = []
    original = bids.BIDSLayout

    def spy(*args, **kwargs):
        calls.append(kwargs.get("reset_database"))
        return original(*args, **kwargs)

    monkeypatch.setattr(bids, "BIDSLayout", spy)
    assert main(_args(demo_dataset, "--bids-database-dir", db)) == 0, capsys.readouterr().err
    assert (db / "layout_index.sqlite").is_file()
    assert main(_args(demo_dataset, "--bids-database-dir", db)) == 0
    assert calls == [True, False]                      # indexed once, then loaded
    assert len(_outputs(demo_dataset)) == 4            # T1w, T2w, PDw, dwi
