"""UniRes on NIfTI files: dtype, grids, common output."""
import nibabel as nib
import numpy as np

from srprep.models.unires.files import atlas_grid, unires_files
from srprep.models.unires.phantom import ellipsoid_phantom
from tests.helpers import write_nifti


def test_int16_inputs_give_int16_outputs_on_mean_space(tmp_path):
    ph = ellipsoid_phantom()
    files = [write_nifti(tmp_path / f"{n}.nii.gz", im.data, im.affine, dtype=np.int16)
             for n, im in zip(ph.names, ph.images)]
    outs = [tmp_path / f"out_{n}.nii.gz" for n in ph.names]
    summary = unires_files(files, [0, 1, 2], outs, None, max_iter=8)
    assert summary["grid_shape"] == [41, 49, 41] and summary["iterations"] == 8
    for out, src in zip(outs, files):
        img = nib.load(out)
        assert img.get_data_dtype() == np.int16 == nib.load(src).get_data_dtype()
        np.testing.assert_allclose(img.affine, ph.affine, atol=1e-6)
        assert img.header.get_xyzt_units()[0] == "mm"


def test_transforms_move_the_inputs_before_the_fit(tmp_path):
    ph = ellipsoid_phantom()
    files = [write_nifti(tmp_path / f"{n}.nii.gz", im.data, im.affine) for n, im in
             zip(ph.names, ph.images)]
    shift = np.eye(4)
    shift[:3, 3] = [0, 0, -5]          # reference point -> image point: image is 5 mm lower
    summary = unires_files(files, [0, 1, 2], [tmp_path / f"o{i}.nii.gz" for i in range(3)],
                           [np.eye(4).tolist(), np.eye(4).tolist(), shift.tolist()],
                           linear=True)
    assert summary["coregistration_mm"] == [0.0, 0.0, 5.0]
    out = nib.load(tmp_path / "o2.nii.gz")
    assert out.affine[2, 3] > ph.affine[2, 3] - 0.5     # grid grew to cover the moved image
    assert summary["grid_shape"][2] > 41


def test_atlas_grid_is_cnn_friendly():
    affine, shape = atlas_grid(1.0)
    assert shape == (192, 256, 192)
    np.testing.assert_allclose(np.diag(affine)[:3], 1.0)
    affine2, shape2 = atlas_grid(2.0)
    assert shape2 == (96, 128, 96)
