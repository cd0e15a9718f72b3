"""The BIDS App from the command line: demo run, validator-clean output, bad input."""
import json
import os
import stat
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from srprep.bids_app.validate import find_validator, validate_dataset
from tests.helpers import write_nifti


def run(args, capsys):
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def _base(demo, out="out"):
    return [demo / "bids", demo / out, "participant", "-w", demo / "work", "--vx", "4"]


def _niftis(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.nii.gz"))


@pytest.mark.skipif(find_validator() is None, reason="bids-validator-deno not installed")
def test_demo_linear_cubic_is_validator_clean(demo_dataset, capsys):
    code, err = run(_base(demo_dataset) + ["--method", "linear", "cubic", "--nprocs", "2"], capsys)
    assert code == 0, err
    out = demo_dataset / "out"
    files = _niftis(out)
    assert "sub-01/ses-1/anat/sub-01_ses-1_res-4mm_desc-linear_T2w.nii.gz" in files
    assert "sub-02/ses-1/dwi/sub-02_ses-1_res-4mm_desc-cubic_dwi.nii.gz" in files
    assert len(files) == 2 * 2 * 4            # participants x methods x (T1w, T2w, PDw, dwi)
    report = validate_dataset(out)
    assert report.ok, report.errors
    # thick T2w (4 mm axial slices on a 4 mm grid -> unchanged here) keeps its world box
    t2 = nib.load(out / "sub-01/ses-1/anat/sub-01_ses-1_res-4mm_desc-linear_T2w.nii.gz")
    src = nib.load(demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz")
    assert t2.get_data_dtype() == src.get_data_dtype() == np.int16
    dwi = out / "sub-01/ses-1/dwi/sub-01_ses-1_res-4mm_desc-linear_dwi"
    assert dwi.with_suffix(".bval").read_text() == (
        demo_dataset / "bids/sub-01/ses-1/dwi/sub-01_ses-1_dwi.bval").read_text()
    assert nib.load(str(dwi) + ".nii.gz").shape == (5, 5, 5, 33)
    side = json.loads((out / "sub-01/ses-1/anat/sub-01_ses-1_res-4mm_desc-cubic_PDw.json").read_text())
    assert side["SkullStripped"] is False and side["Resolution"] == {"4mm": "4 x 4 x 4 mm voxels"}
    assert side["Sources"] == ["bids:raw:sub-01/ses-1/anat/sub-01_ses-1_PDw.nii.gz"]
    # reports: one page per participant with figures, linked from the index
    index = (out / "index.html").read_text()
    assert "sub-01.html" in index and "sub-02.html" in index
    assert len(list((out / "sub-01" / "figures").glob("*.png"))) == 8
    provenance = next((out / "logs").glob("*/provenance.json"))
    recorded = json.loads(provenance.read_text())
    assert recorded["packages"]["pydra"] == "1.0a12"
    assert set(recorded["dependency_lock"]) >= {"matches", "differ", "missing"}
    # a methods paragraph for the methods that ran, with versions and parameters
    citation = (out / "logs" / "CITATION.md").read_text()
    assert "srprep 0.1.0" in citation and "pydra 1.0a12" in citation
    assert "4 mm isotropic voxels" in citation and "trilinear" in citation and "B-spline" in citation
    assert "UniRes" not in citation and "PCCNN" not in citation
    assert "<h1>Methods (boilerplate)</h1>" in (out / "logs" / "CITATION.html").read_text()


def test_reslice_to_1mm_covers_the_input_field_of_view(demo_dataset, capsys):
    args = _base(demo_dataset)[:-2] + ["--vx", "2", "--method", "linear",
                                       "--participant-label", "01", "--skip-bids-validation"]
    code, err = run(args, capsys)
    assert code == 0, err
    src = nib.load(demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz")
    out = nib.load(demo_dataset / "out/sub-01/ses-1/anat/sub-01_ses-1_res-2mm_desc-linear_T2w.nii.gz")
    assert src.header.get_zooms()[2] == 4.0
    assert out.shape == (src.shape[0] * 2, src.shape[1] * 2, src.shape[2] * 2)

    def box(img):
        corners = np.array([[i, j, k] for i in (-.5, img.shape[0] - .5) for j in (-.5, img.shape[1] - .5)
                            for k in (-.5, img.shape[2] - .5)])
        return nib.affines.apply_affine(img.affine, corners)
    np.testing.assert_allclose(box(out), box(src), atol=1e-4)


def test_second_run_reuses_cache_and_restores_deleted_outputs(demo_dataset, capsys):
    args = _base(demo_dataset) + ["--method", "linear", "--participant-label", "01",
                                  "--skip-bids-validation"]
    assert run(args, capsys)[0] == 0
    target = demo_dataset / "out/sub-01/ses-1/anat/sub-01_ses-1_res-4mm_desc-linear_T1w.nii.gz"
    before = target.read_bytes()
    target.unlink()
    assert run(args, capsys)[0] == 0
    assert target.read_bytes() == before


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom srprep.bids_app.cli.run import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
            "heavy = [m for m in ('torch', 'ants', 'dipy.core', 'monai', 'bids', 'pydra.engine')"
            " if m in sys.modules]\nprint(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and "srprep 0.1.0" in capsys.readouterr().out


# ---------------------------------------------------------------- bad input: exit 2, nothing written
@pytest.mark.parametrize("case", ["not_bids", "missing_dir", "unknown_label", "path_trick",
                                  "out_inside_input", "out_is_input", "bad_vx", "bad_method"])
def test_usage_errors_exit_2_and_write_nothing(demo_dataset, capsys, case):
    bids, out = demo_dataset / "bids", demo_dataset / "out"
    args = [bids, out, "participant", "-w", demo_dataset / "work", "--skip-bids-validation"]
    expected = {
        "not_bids": "not a BIDS dataset", "missing_dir": "BIDS dataset not found",
        "unknown_label": "participant label(s) not found: 07", "path_trick": "invalid sub label",
        "out_inside_input": "inside the input dataset", "out_is_input": "inside the input dataset",
        "bad_vx": "voxel size must be in", "bad_method": "invalid choice",
    }[case]
    if case == "not_bids":
        (bids / "dataset_description.json").unlink()
    elif case == "missing_dir":
        args[0] = demo_dataset / "nope"
    elif case == "unknown_label":
        args += ["--participant-label", "07"]
    elif case == "path_trick":
        args += ["--participant-label", "../x"]
    elif case == "out_inside_input":
        args[1] = out = bids / "sub-01" / "out"
    elif case == "out_is_input":
        args[1] = out = bids
    elif case == "bad_vx":
        args += ["--vx", "-1"]
    elif case == "bad_method":
        args += ["--method", "magic"]
    before = _niftis(bids)
    if case in ("bad_vx", "bad_method", "path_trick"):
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        code, err = exc.value.code, capsys.readouterr().err
    else:
        code, err = run(args, capsys)
    assert code == 2
    assert expected in err
    assert len([ln for ln in err.splitlines() if "error" in ln]) == 1
    assert _niftis(bids) == before
    if case not in ("out_is_input",):
        assert not out.exists() or not list(out.rglob("*.nii.gz"))


def test_output_in_derivatives_folder_is_allowed(demo_dataset, capsys):
    args = _base(demo_dataset) + ["--method", "linear", "--participant-label", "01",
                                  "--skip-bids-validation"]
    args[1] = demo_dataset / "bids" / "derivatives" / "srprep"
    assert run(args, capsys)[0] == 0


# ------------------------------------------------------- bad data: that participant fails, exit 1
def _break(demo, case):
    anat = demo / "bids/sub-02/ses-1/anat"
    t1 = anat / "sub-02_ses-1_T1w.nii.gz"
    if case == "truncated":
        t1.write_bytes(t1.read_bytes()[: t1.stat().st_size // 3])
        return "truncated or corrupt"
    if case == "garbage":
        t1.write_bytes(b"\x00" * 400)
        return "not a readable NIfTI"
    if case == "2d":
        write_nifti(t1, np.ones((10, 10)))
        return "a 3-D volume is required"
    if case == "nan":
        vol = np.ones((10, 10, 10), np.float32)
        vol[3, 3, 3] = np.nan
        write_nifti(t1, vol)
        return "1 voxels are NaN or infinite"
    if case == "bvec_mismatch":
        bval = demo / "bids/sub-02/ses-1/dwi/sub-02_ses-1_dwi.bval"
        bval.write_text(" ".join(bval.read_text().split()[:-1]) + "\n")
        return "bval/bvec count mismatch (32 b-values, 33 b-vectors, 33 volumes)"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["truncated", "garbage", "2d", "nan", "bvec_mismatch"])
def test_bad_data_fails_that_participant_only(demo_dataset, capsys, case):
    message = _break(demo_dataset, case)
    code, err = run(_base(demo_dataset) + ["--method", "linear", "--skip-bids-validation"], capsys)
    assert code == 1
    failure_lines = [ln for ln in err.splitlines() if "sub-02 failed" in ln]
    assert len(failure_lines) == 1 and message in failure_lines[0]
    out = demo_dataset / "out"
    assert not (out / "sub-02" / "ses-1").exists()           # nothing written for sub-02
    assert len(_niftis(out / "sub-01")) == 4                  # sub-01 still processed
    status = json.loads((out / "logs" / "sub-02_status.json").read_text())
    assert status["status"] == "failed"


def test_read_only_input_dataset_works(demo_dataset, capsys):
    bids = demo_dataset / "bids"
    paths = [bids, *bids.rglob("*")]
    for p in paths:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        if os.geteuid() != 0:
            with pytest.raises(PermissionError):
                (bids / "probe").write_text("x")
        code, err = run(_base(demo_dataset) + ["--method", "cubic", "--participant-label", "02"],
                        capsys)
        assert code == 0, err
        assert len(_niftis(demo_dataset / "out")) == 4
    finally:
        for p in paths:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


@pytest.mark.skipif(find_validator() is None, reason="bids-validator-deno not installed")
def test_invalid_input_dataset_is_refused_unless_skipped(demo_dataset, capsys):
    (demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T2w.json").write_text("{not json")
    code, err = run(_base(demo_dataset) + ["--method", "linear"], capsys)
    assert code == 2 and "input dataset is not valid BIDS" in err
    assert not (demo_dataset / "out").exists()


def test_stop_on_first_crash_stops_the_run(demo_dataset, capsys):
    t1 = demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz"
    t1.write_bytes(t1.read_bytes()[: t1.stat().st_size // 3])
    args = _base(demo_dataset) + ["--method", "linear", "--skip-bids-validation"]
    code, err = run(args + ["--stop-on-first-crash"], capsys)
    assert code == 1
    assert "sub-01 failed" in err and "not run: sub-02" in err
    assert not (demo_dataset / "out" / "sub-02").exists()        # sub-02 never started
    code, err = run(args, capsys)                                  # default: carry on
    assert code == 1 and len(_niftis(demo_dataset / "out" / "sub-02")) == 4


def test_stop_on_first_crash_skips_the_remaining_methods(demo_dataset, capsys, tmp_path):
    # at 4 mm the demo's T2w is isotropic: give it 8 mm slices so that babyai has work,
    # then let babyai fail for want of weights
    t2 = demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz"
    img = nib.load(t2)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:, :, ::2],
                             img.affine @ np.diag([1, 1, 2, 1.0]), img.header), t2)
    args = _base(demo_dataset) + ["--method", "babyai", "linear", "--participant-label", "01",
                                  "--weights-dir", str(tmp_path), "--skip-bids-validation"]
    code, err = run(args + ["--stop-on-first-crash"], capsys)
    assert code == 1 and "babyai" in err
    assert not list((demo_dataset / "out").rglob("*desc-linear*.nii.gz"))
    code, err = run(args, capsys)
    assert code == 1 and list((demo_dataset / "out").rglob("*desc-linear*.nii.gz"))


def test_reports_only_rewrites_reports_without_processing(demo_dataset, capsys):
    args = _base(demo_dataset) + ["--method", "linear", "--participant-label", "01",
                                  "--skip-bids-validation"]
    out = demo_dataset / "out"
    code, err = run(args + ["--reports-only"], capsys)            # nothing ran yet
    assert code == 1 and "no earlier run" in err and "sub-01" in err
    assert run(args, capsys)[0] == 0
    page = out / "sub-01.html"
    page.unlink()
    for png in (out / "sub-01" / "figures").glob("*.png"):
        png.unlink()
    outputs = {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")}
    code, err = run(args + ["--reports-only"], capsys)
    assert code == 0, err
    assert "desc-linear" in page.read_text() and len(list((out / "sub-01" / "figures").glob("*.png"))) == 4
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.nii.gz")} == outputs   # untouched


def test_config_file_repeats_a_run_and_the_command_line_wins(demo_dataset, capsys):
    first = _base(demo_dataset) + ["--method", "linear", "--participant-label", "01",
                                   "--skip-bids-validation"]
    assert run(first, capsys)[0] == 0
    config = next((demo_dataset / "out" / "logs").glob("*/config.toml"))
    bids = demo_dataset / "bids"
    # same settings from the file: 4 mm linear for sub-01 only
    code, err = run([bids, demo_dataset / "again", "participant", "--config-file", config], capsys)
    assert code == 0, err
    assert _niftis(demo_dataset / "again") == _niftis(demo_dataset / "out")
    # an option on the command line takes precedence over the file
    code, err = run([bids, demo_dataset / "cubic", "participant", "--config-file", config,
                     "--method", "cubic"], capsys)
    assert code == 0, err
    names = _niftis(demo_dataset / "cubic")
    assert names and all("desc-cubic" in n and n.startswith("sub-01/") for n in names)
    assert all("res-4mm" in n for n in names)                  # resolution from the file
    code, err = run([bids, demo_dataset / "x", "participant", "--config-file",
                     demo_dataset / "nope.toml"], capsys)
    assert code == 2 and "--config-file" in err
