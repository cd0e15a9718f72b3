"""Each task runs through Pydra (debug worker) and produces the core function's result."""
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.core.resample import reslice
from srprep.tasks.dwi import DwiToNpy, NormaliseDwi, NpyToDwi, XmaxPerShell
from srprep.tasks.nifti import ValidateImage
from srprep.tasks.normalise import BrainMask, InversePercentileScale, PercentileScale
from srprep.tasks.register import ApplyTransform, Register
from srprep.tasks.resample import ResampleToReference, Reslice
from tests.helpers import blob_volume, write_nifti


def _run(task, tmp_path):
    return task(cache_root=tmp_path / "cache", worker="debug")


def test_validate_image_task(tmp_path):
    f = write_nifti(tmp_path / "a.nii.gz", blob_volume(), np.diag([1, 1, 3, 1.0]))
    info = _run(ValidateImage(in_file=f), tmp_path).out
    assert info["shape"] == (32, 36, 30) and info["zooms"] == (1.0, 1.0, 3.0)


def test_validate_image_task_rejects_nan(tmp_path):
    vol = blob_volume()
    vol[0, 0, 0] = np.nan
    f = write_nifti(tmp_path / "a.nii.gz", vol)
    with pytest.raises(ValueError, match="NaN"):
        _run(ValidateImage(in_file=f), tmp_path)


def test_reslice_task_matches_core(tmp_path):
    vol = blob_volume()
    affine = np.diag([1, 1, 3, 1.0])
    f = write_nifti(tmp_path / "a.nii.gz", vol, affine)
    res = _run(Reslice(in_file=f, voxel_size=[1.0, 1.0, 1.0], interpolation="linear"), tmp_path)
    expected, exp_affine = reslice(vol.astype(np.float32), affine, 1.0, order=1)
    out = nib.load(res.out_file)
    np.testing.assert_allclose(out.affine, exp_affine)
    np.testing.assert_allclose(out.get_fdata(), np.clip(expected, vol.min(), vol.max()), atol=1e-3)
    assert res.geometry["out_shape"] == [32, 36, 90]


def test_resample_to_reference_task(tmp_path):
    vol = blob_volume()
    f = write_nifti(tmp_path / "a.nii.gz", vol, np.eye(4))
    ref = write_nifti(tmp_path / "r.nii.gz", np.zeros((16, 18, 15)), np.diag([2, 2, 2, 1.0]))
    out = _run(ResampleToReference(in_file=f, reference=ref, interpolation="linear"), tmp_path).out
    img = nib.load(out)
    assert img.shape == (16, 18, 15)
    np.testing.assert_allclose(img.affine, np.diag([2, 2, 2, 1.0]))
    # 2 mm voxel i sits at world 2i: the 1 mm input's voxel 2i, no interpolation needed
    np.testing.assert_allclose(img.get_fdata(), vol[::2, ::2, ::2][:16, :18, :15], atol=1e-4)


def test_register_and_apply_transform_tasks(tmp_path):
    from scipy import ndimage
    vol = blob_volume((40, 40, 40), seed=3)
    moved = ndimage.shift(vol, (2.0, -1.0, 0.0), order=3)  # content moves +2 mm in x
    f = write_nifti(tmp_path / "fixed.nii.gz", vol)
    m = write_nifti(tmp_path / "moving.nii.gz", moved)
    reg = _run(Register(moving=m, fixed=f, transform="rigid", fast=True, init="identity"), tmp_path)
    matrix = np.array(reg.matrix)
    np.testing.assert_allclose(matrix[:3, 3], [2.0, -1.0, 0.0], atol=0.3)
    out = _run(ApplyTransform(moving=m, reference=f, transform=reg.transform), tmp_path).out
    aligned = nib.load(out).get_fdata()
    inside = vol > 0
    assert np.corrcoef(aligned[inside], vol[inside])[0, 1] > 0.98


def test_scale_mask_and_inverse_tasks(tmp_path):
    vol = blob_volume()
    f = write_nifti(tmp_path / "a.nii.gz", vol, dtype=np.int16)
    scaled = _run(PercentileScale(in_file=f, clip=False), tmp_path)
    assert scaled.params["upper_percentile"] == 99.0
    back = _run(InversePercentileScale(in_file=scaled.out_file, params=scaled.params, like=f),
                tmp_path).out
    img = nib.load(back)
    assert img.get_data_dtype() == np.int16
    np.testing.assert_allclose(img.get_fdata(), np.rint(vol), atol=1)
    mask = _run(BrainMask(in_file=f), tmp_path)
    assert 0.8 * (vol > 0).sum() / 1000 < mask.volume_ml < 1.3 * (vol > 0).sum() / 1000


def test_dwi_tasks_chain(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.random((6, 6, 6, 4)) * 500).astype(np.float32)
    data[..., 0] = 2000
    f = write_nifti(tmp_path / "dwi.nii.gz", data, np.diag([2, 2, 2, 1.0]))
    (tmp_path / "dwi.bval").write_text("0 1000 1000 2000\n")
    (tmp_path / "dwi.bvec").write_text("0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    mask = write_nifti(tmp_path / "mask.nii.gz", np.ones((6, 6, 6)), np.diag([2, 2, 2, 1.0]),
                       dtype=np.uint8)
    xm = _run(XmaxPerShell(in_file=f, bval=tmp_path / "dwi.bval", bvec=tmp_path / "dwi.bvec",
                           mask=mask), tmp_path)
    assert set(xm.xmax) == {1000, 2000}
    assert json.loads(open(xm.xmax_file).read())["1000"] == pytest.approx(xm.xmax[1000])
    norm = _run(NormaliseDwi(in_file=f, bval=tmp_path / "dwi.bval", xmax=xm.xmax), tmp_path).out
    npy = _run(DwiToNpy(in_file=norm), tmp_path).out
    assert np.load(npy).shape == (4, 6, 6, 6)
    back = _run(NpyToDwi(in_npy=npy, reference=f), tmp_path).out
    den = _run(NormaliseDwi(in_file=back, bval=tmp_path / "dwi.bval", xmax=xm.xmax, inverse=True,
                            like=f), tmp_path).out
    np.testing.assert_allclose(nib.load(den).get_fdata(), data, rtol=1e-4, atol=0.05)
