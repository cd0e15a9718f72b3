"""``--method unires`` through the BIDS App on the demo dataset."""
import json
import logging

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from srprep.bids_app.validate import find_validator, validate_dataset
from srprep.core.resample import resample


@pytest.mark.slow
def test_unires_on_demo_is_validator_clean_and_overlays_inputs(demo_dataset, capsys, caplog):
    caplog.set_level(logging.INFO, logger="srprep")   # as the CLI's default verbosity
    out = demo_dataset / "out"
    code = main([str(demo_dataset / "bids"), str(out), "participant", "-w",
                 str(demo_dataset / "work"), "--vx", "2", "--participant-label", "02",
                 "--max-iter", "12", "--nprocs", "2"])
    assert code == 0, capsys.readouterr().err
    names = sorted(p.name for p in out.rglob("*.nii.gz"))
    assert names == [f"sub-02_ses-1_res-2mm_desc-unires_{s}.nii.gz" for s in ("PDw", "T1w", "T2w")]
    if find_validator():
        report = validate_dataset(out)
        assert report.ok, report.errors
    anat = out / "sub-02" / "ses-1" / "anat"
    imgs = {s: nib.load(anat / f"sub-02_ses-1_res-2mm_desc-unires_{s}.nii.gz") for s in ("T1w", "T2w", "PDw")}
    assert len({tuple(np.round(i.affine, 4).ravel()) for i in imgs.values()}) == 1  # one grid
    assert all(i.get_data_dtype() == np.int16 for i in imgs.values())
    side = json.loads((anat / "sub-02_ses-1_res-2mm_desc-unires_T2w.json").read_text())
    assert side["Sources"] == ["bids:raw:sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz"]
    assert side["SpatialReference"] == "bids:raw:sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz"
    assert side["srprep"]["Fit"]["iterations"] == 12 and side["srprep"]["Fit"]["mode"] == "sr"
    assert len(side["srprep"]["Fit"]["noise_sd"]) == 1
    # world alignment: the output resampled onto the thick input grid matches the input
    src = nib.load(demo_dataset / "bids/sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz")
    back = resample(np.asarray(imgs["T2w"].dataobj, float), imgs["T2w"].affine, src.affine,
                    src.shape, order=1)
    data = np.asarray(src.dataobj, float)
    inside = data > 200
    assert np.corrcoef(back[inside], data[inside])[0, 1] > 0.9
    assert "desc-unires" in (out / "sub-02.html").read_text()
    # the fit ran in a spawned worker process; its progress reached the participant log
    (log_file,) = (out / "logs").glob("*/sub-02.log")
    lines = log_file.read_text().splitlines()
    iterations = [ln for ln in lines if " unires it " in ln]
    assert len(iterations) == 12 and "unires it  12 |" in iterations[-1], lines[-20:]


def test_linear_mode_and_memory_warning(demo_dataset, capsys, caplog):
    out = demo_dataset / "out"
    code = main([str(demo_dataset / "bids"), str(out), "participant", "-w",
                 str(demo_dataset / "work"), "--participant-label", "01", "--linear",
                 "--mem", "1M", "--skip-bids-validation", "--no-coregister"])
    assert code == 0, capsys.readouterr().err
    assert any("unires needs about" in r.getMessage() and "--mem is 0.001 GB" in r.getMessage()
               for r in caplog.records if r.levelname == "WARNING")
    status = json.loads((out / "logs" / "sub-01_status.json").read_text())
    assert any("unires needs about" in w for w in status["warnings"])
    side = json.loads(next(out.rglob("*desc-unires_T1w.json")).read_text())
    assert side["srprep"]["Fit"]["iterations"] == 0 and side["srprep"]["Parameters"]["linear"]
    assert "unires needs about" in (out / "sub-01.html").read_text()


def test_label_file_is_carried_along_and_crop_uses_the_atlas_box(demo_dataset, capsys):
    from srprep.models.unires.files import atlas_grid

    anat = demo_dataset / "bids" / "sub-01" / "ses-1" / "anat"
    host = nib.load(anat / "sub-01_ses-1_T1w.nii.gz")
    labels = (np.asarray(host.dataobj) > np.percentile(np.asarray(host.dataobj), 70)
              ).astype(np.uint8) * 3
    lab_dir = demo_dataset / "labels" / "sub-01" / "ses-1" / "anat"
    lab_dir.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, host.affine), lab_dir / "sub-01_ses-1_desc-brain_dseg.nii.gz")
    (lab_dir / "sub-01_ses-1_desc-brain_dseg.tsv").write_text("index\tname\n3\tbright\n")
    nib.save(nib.Nifti1Image(labels[::2], np.eye(4)),     # template space: skipped, no error
             lab_dir / "sub-01_ses-1_space-MNI152NLin2009cAsym_desc-brain_mask.nii.gz")
    out = demo_dataset / "out"
    code = main([str(demo_dataset / "bids"), str(out), "participant", "-w",
                 str(demo_dataset / "work"), "--participant-label", "01", "--linear",
                 "--no-coregister", "--vx", "4", "--crop", "--label-file",
                 str(demo_dataset / "labels"), "--nprocs", "1"])
    assert code == 0, capsys.readouterr().err
    got = out / "sub-01" / "ses-1" / "anat" / "sub-01_ses-1_res-4mm_desc-brainUnires_dseg.nii.gz"
    assert sorted(p.name for p in got.parent.glob("*_dseg.nii.gz")) == [got.name]
    assert not list(out.rglob("*_mask.nii.gz"))
    img = nib.load(got)
    want_affine, want_shape = atlas_grid(4.0, "brain", cap=None)
    assert img.shape == want_shape and np.allclose(img.affine, want_affine)
    assert img.get_data_dtype() == np.uint8 and set(np.unique(img.dataobj)) == {0, 3}
    assert got.with_suffix("").with_suffix(".tsv").read_text().startswith("index\tname")
    side = json.loads(got.with_suffix("").with_suffix(".json").read_text())
    assert side["SpatialReference"] == "bids:raw:sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz"
    t1 = nib.load(next(out.rglob("*desc-unires_T1w.nii.gz")))
    assert t1.shape == want_shape and np.allclose(t1.affine, img.affine)
    # the carried labels mark the bright voxels of the resliced T1w
    bright = np.asarray(t1.dataobj) > np.percentile(np.asarray(host.dataobj), 70)
    lab = np.asarray(img.dataobj) == 3
    assert 2 * (bright & lab).sum() / (bright.sum() + lab.sum()) > 0.7
    if find_validator():
        assert validate_dataset(out).ok


@pytest.mark.parametrize("args, message", [
    (["--res-origin"], "--res-origin is for CT inputs"),
    (["--label-file", "nowhere.nii.gz"], "not found"),
])
def test_bad_unires_options_exit_with_one_line(demo_dataset, capsys, args, message):
    code = main([str(demo_dataset / "bids"), str(demo_dataset / "out"), "participant",
                 "--skip-bids-validation", *args])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not (demo_dataset / "out").exists()


def test_label_map_on_no_input_grid_fails_the_participant(demo_dataset, capsys):
    lab = demo_dataset / "sub-01_ses-1_dseg.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), lab)
    code = main([str(demo_dataset / "bids"), str(demo_dataset / "out"), "participant",
                 "-w", str(demo_dataset / "work"), "--participant-label", "01", "--linear",
                 "--skip-bids-validation", "--label-file", str(lab)])
    assert code != 0
    assert "shares the grid (shape and affine) of none" in capsys.readouterr().err
