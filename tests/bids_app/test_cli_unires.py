"""``--method unires`` through the BIDS App on the demo dataset."""
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from srprep.bids_app.validate import find_validator, validate_dataset
from srprep.core.resample import resample


@pytest.mark.slow
def test_unires_on_demo_is_validator_clean_and_overlays_inputs(demo_dataset, capsys):
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
