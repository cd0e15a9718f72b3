"""A real scan through the App (issue #17, first part): dipy's ``aniso_vox`` (a real
58x58x24 head at 4x4x5 mm, int16, LPS; shipped with dipy) under RAS, LAS, LPS and oblique
headers and as uint8 / float32: every output overlays its input in world space and keeps
the input's data type and range."""
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from srprep.core.resample import resample


def _aniso_vox():
    from dipy.data import get_fnames

    img = nib.load(str(get_fnames(name="aniso_vox")))
    return np.asarray(img.dataobj), img.affine


def _flip(data, affine, axis):
    """The same voxels in world space, with voxel axis ``axis`` stored reversed."""
    flip = np.eye(4)
    flip[axis, axis], flip[axis, 3] = -1, data.shape[axis] - 1
    return np.flip(data, axis), affine @ flip


def _variants():
    data, affine = _aniso_vox()                                  # LPS, int16
    out = {"lps": (data, affine)}
    out["las"] = _flip(data, affine, 0)
    out["ras"] = _flip(*out["las"], 1)
    a = np.radians(15.0)                                         # an oblique header
    rot = np.array([[np.cos(a), -np.sin(a), 0, 0], [np.sin(a), np.cos(a), 0, 0],
                    [0, 0, 1, 0], [0, 0, 0, 1]])
    out["obl"] = (data, rot @ affine)
    out["u8"] = (np.round(data / data.max() * 255).astype(np.uint8), affine)
    out["f32"] = (data.astype(np.float32) * 0.37, affine)
    return out


@pytest.fixture(scope="module")
def real_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    bids = root / "bids"
    bids.mkdir()
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "dipy aniso_vox under several headers", "BIDSVersion": "1.10.0"}))
    for label, (data, affine) in _variants().items():
        anat = bids / f"sub-{label}" / "anat"
        anat.mkdir(parents=True)
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, 1)
        img.set_sform(affine, 1)
        nib.save(img, anat / f"sub-{label}_T1w.nii.gz")
        (anat / f"sub-{label}_T1w.json").write_text("{}")
    assert main([str(bids), str(root / "out"), "participant", "-w", str(root / "work"),
                 "--method", "cubic", "unires", "--vx", "4", "--nprocs", "2",
                 "--omp-nthreads", "1", "--skip-bids-validation"]) == 0
    return root


@pytest.mark.parametrize("label", ["lps", "las", "ras", "obl", "u8", "f32"])
@pytest.mark.parametrize("method", ["cubic", "unires"])
def test_output_overlays_input_and_keeps_dtype_and_range(real_dataset, label, method):
    src = nib.load(real_dataset / "bids" / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")
    (out_file,) = (real_dataset / "out" / f"sub-{label}" / "anat").glob(
        f"*desc-{method}_T1w.nii.gz")
    out = nib.load(out_file)
    assert out.get_data_dtype() == src.get_data_dtype()
    x = np.asarray(src.dataobj, np.float64)
    y = np.asarray(out.dataobj, np.float64)
    assert y.min() >= min(0.0, x.min()) and y.max() <= 1.1 * x.max()
    # pulled back onto the input's grid through world space: the same head, same place
    back = resample(y.astype(np.float32), out.affine, src.affine, src.shape, order=1)
    head = (x > 0.1 * x.max()) & (back > 0)
    assert head.sum() > 5000
    r = np.corrcoef(x[head], back[head])[0, 1]
    assert r > 0.9, f"{method} on {label}: r = {r:.3f}"
    # a wrong orientation (the left-right flipped head) correlates clearly worse
    mirror = resample(np.flip(y, 0).astype(np.float32), out.affine, src.affine, src.shape,
                      order=1)
    both = head & (mirror > 0)
    assert np.corrcoef(x[both], mirror[both])[0, 1] < r - 0.05
