"""Which inputs each App method turns into jobs (no model runs)."""
import logging

import numpy as np

from srprep.bids_app.methods.babyai import _plan as babyai_plan
from srprep.bids_app.naming import BIDSName
from srprep.bids_app.query import SourceImage
from tests.helpers import write_nifti


def _source(root, name, zooms):
    path = write_nifti(root / "sub-01" / "anat" / name, np.ones((8, 8, 8)),
                       np.diag(list(zooms) + [1.0]))
    return SourceImage(path, f"sub-01/anat/{name}", BIDSName.parse(name), "anat")


def test_babyai_skips_isotropic_t2w_with_a_warning(tmp_path, caplog):
    t1 = _source(tmp_path, "sub-01_T1w.nii.gz", (1, 1, 1))
    thick = _source(tmp_path, "sub-01_acq-thick_T2w.nii.gz", (1, 1, 4))
    iso = _source(tmp_path, "sub-01_acq-iso_T2w.nii.gz", (1, 1, 1.1))
    with caplog.at_level(logging.WARNING, logger="srprep"):
        jobs = babyai_plan([t1, thick, iso], None)
    assert [[s.name.filename for s in j.sources] for j in jobs] == [
        ["sub-01_T1w.nii.gz", "sub-01_acq-thick_T2w.nii.gz"]]
    assert "sub-01_acq-iso_T2w.nii.gz is isotropic (1x1x1.1 mm)" in caplog.text


def test_unires_channels_are_acquisitions_and_only_runs_combine(tmp_path, caplog):
    from srprep.bids_app.config import Settings
    from srprep.bids_app.methods.unires import _common_name
    from srprep.bids_app.methods.unires import _plan as unires_plan

    names = ["sub-01_acq-mprage_T1w.nii.gz", "sub-01_acq-spgr_T1w.nii.gz",
             "sub-01_ce-gadolinium_T1w.nii.gz", "sub-01_run-1_T2w.nii.gz",
             "sub-01_run-2_T2w.nii.gz", "sub-01_part-phase_T2starw.nii.gz",
             "sub-01_echo-1_T2starw.nii.gz", "sub-01_echo-2_T2starw.nii.gz"]
    sources = [_source(tmp_path, n, (1, 1, 1)) for n in names]
    settings = Settings(tmp_path, tmp_path / "out", tmp_path / "work")
    with caplog.at_level(logging.WARNING, logger="srprep"):
        (job,) = unires_plan(sources, settings)
    assert job.params["names"] == ["acq-mprage_T1w", "acq-spgr_T1w", "ce-gadolinium_T1w", "T2w"]
    by_channel = {}
    for src, c in zip(job.sources, job.params["channels"]):
        by_channel.setdefault(c, []).append(src)
    assert [len(by_channel[c]) for c in range(4)] == [1, 1, 1, 2]       # the two runs
    assert [_common_name(by_channel[c]).filename for c in range(4)] == [
        "sub-01_acq-mprage_T1w.nii.gz", "sub-01_acq-spgr_T1w.nii.gz",
        "sub-01_ce-gadolinium_T1w.nii.gz", "sub-01_T2w.nii.gz"]
    assert "part-phase image, not an anatomical channel" in caplog.text
    assert caplog.text.count("one echo of a multi-echo series") == 2
    settings.method_options = {"unires": {"include_echoes": True}}
    (job,) = unires_plan(sources, settings)
    assert job.params["names"][-2:] == ["echo-1_T2starw", "echo-2_T2starw"]


def test_include_echoes_reaches_the_planner_only():
    from srprep.bids_app.cli.parser import build_parser
    from srprep.bids_app.cli.run import _unires_options

    base = ["bids", "out", "participant"]
    assert "include_echoes" not in _unires_options(build_parser().parse_args(base))
    opts = _unires_options(build_parser().parse_args(base + ["--include-echoes"]))
    assert opts["include_echoes"] is True


def test_outputs_name_the_grid_they_lie_on(tmp_path):
    from srprep.bids_app.methods.base import grid_space

    t1 = _source(tmp_path, "sub-01_T1w.nii.gz", (1, 1, 1))
    t2 = _source(tmp_path, "sub-01_T2w.nii.gz", (1, 1, 4))
    on_t1 = write_nifti(tmp_path / "a.nii.gz", np.zeros((8, 8, 8)), np.eye(4))
    on_t2 = write_nifti(tmp_path / "b.nii.gz", np.zeros((8, 8, 8)), np.diag([1, 1, 4, 1.0]))
    elsewhere = write_nifti(tmp_path / "c.nii.gz", np.zeros((8, 8, 8)), np.diag([2, 2, 2, 1.0]))
    assert grid_space(on_t1, [t2], [t1]) == ("T1w", t1)        # -> space-T1w
    assert grid_space(on_t2, [t2], [t1]) == (None, t2)         # native: no space-
    assert grid_space(on_t1, [t1], [t2]) == (None, t1)
    assert grid_space(elsewhere, [t2], [t1]) == (None, None)   # mean space
    name = t2.name.with_entities(space="T1w", res="1mm", desc="unires")
    assert name.filename == "sub-01_space-T1w_res-1mm_desc-unires_T2w.nii.gz"


def test_easysr_warns_outside_the_weights_training_domain(tmp_path):
    import json

    from srprep.bids_app.config import Settings
    from srprep.bids_app.methods.easysr import _plan as easysr_plan

    human = _source(tmp_path, "sub-01_acq-human_T2w.nii.gz", (1, 1, 4))
    rat = _source(tmp_path, "sub-01_acq-rat_T2w.nii.gz", (0.15, 0.15, 0.45))
    settings = Settings(tmp_path, tmp_path / "out", tmp_path / "work")
    settings.method_options = {"easysr": {"model": "mixed"}}          # released: rat, 0.15 mm
    warnings = [j.params["warnings"] for j in easysr_plan([human, rat], settings)]
    assert len(warnings[0]) == 1 and warnings[1] == []
    assert "1 mm in-plane voxels are far from the generator's training data (rat brain, 0.15 mm" \
        in warnings[0][0]
    own = tmp_path / "G_latest_Mine.pth"                               # trained at 1 mm
    own.with_suffix(".json").write_text(json.dumps({"voxel_mm": 1.0}))
    settings.method_options = {"easysr": {"model": str(own)}}
    warnings = [j.params["warnings"] for j in easysr_plan([human, rat], settings)]
    assert warnings[0] == [] and "trained at 1 mm" in warnings[1][0]


def test_pccnn_parity_reference_selects_the_reference_protocol():
    import pytest as _pytest

    from srprep.bids_app.cli.parser import build_parser
    from srprep.bids_app.cli.run import UsageError, _angular_options

    base = ["bids", "out", "participant", "--method", "pccnn"]
    assert _angular_options(build_parser().parse_args(base))["context"] == "shell"
    opts = _angular_options(build_parser().parse_args(base + ["--pccnn-parity", "reference"]))
    assert opts["context"] == "reference"
    with _pytest.raises(UsageError, match="sets the context itself"):
        _angular_options(build_parser().parse_args(
            base + ["--pccnn-parity", "reference", "--pccnn-context", "all"]))
