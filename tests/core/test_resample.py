import nibabel as nib
import numpy as np
import pytest

from srprep.core.nifti import voxel_sizes
from srprep.core.resample import (as_order, grid_for_voxel_size, resample, reslice,
                                  reslice_file)
from tests.helpers import write_nifti


def _edges(affine, shape, axis):
    """World coordinates of the outer voxel edges along ``axis`` (axis-aligned grids)."""
    lo = np.zeros(4); lo[3] = 1; lo[axis] = -0.5
    hi = np.zeros(4); hi[3] = 1; hi[axis] = shape[axis] - 0.5
    return (affine @ lo)[axis], (affine @ hi)[axis]


def test_1x1x4_to_1mm_covers_same_field_of_view():
    affine = np.array([[1, 0, 0, -10], [0, 1, 0, 5], [0, 0, 4, 30.0], [0, 0, 0, 1]])
    shape = (20, 24, 20)
    new_affine, new_shape = grid_for_voxel_size(affine, shape, 1.0)
    assert new_shape == (20, 24, 80)
    np.testing.assert_allclose(voxel_sizes(new_affine), [1, 1, 1])
    for axis in range(3):
        np.testing.assert_allclose(_edges(new_affine, new_shape, axis),
                                   _edges(affine, shape, axis))
    # first 1 mm slice centre sits 1.5 mm inside the first 4 mm slice centre
    np.testing.assert_allclose(new_affine[2, 3], 30 - 1.5)


def test_grid_keeps_flipped_axes():
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    new_affine, shape = grid_for_voxel_size(affine, (10, 10, 10), 1.0)
    assert shape == (20, 20, 20)
    assert new_affine[0, 0] == -1.0
    np.testing.assert_allclose(_edges(new_affine, shape, 0), _edges(affine, (10, 10, 10), 0))


@pytest.mark.parametrize("order", [1, 3])
def test_identity_resample_is_exact(order):
    data = np.random.default_rng(0).normal(size=(9, 10, 11)).astype(np.float32)
    out = resample(data, np.eye(4), np.eye(4), data.shape, order=order)
    np.testing.assert_allclose(out, data, atol=1e-5)


def test_linear_reproduces_linear_ramp_and_cubic_reproduces_cubic():
    x = np.arange(30, dtype=float)
    ramp = np.broadcast_to(x[:, None, None], (30, 4, 4))
    cube = np.broadcast_to((0.01 * x**3 - 0.2 * x**2 + x)[:, None, None], (30, 4, 4))
    target = np.eye(4); target[0, 0] = 0.5; target[0, 3] = 3.25   # samples at 3.25, 3.75, ...
    xs = 3.25 + 0.5 * np.arange(40)
    lin = resample(ramp, np.eye(4), target, (40, 4, 4), order=1)
    np.testing.assert_allclose(lin[:, 2, 2], xs, atol=1e-4)
    cub = resample(cube, np.eye(4), target, (40, 4, 4), order=3, mode="nearest")
    np.testing.assert_allclose(cub[:, 2, 2], 0.01 * xs**3 - 0.2 * xs**2 + xs, rtol=2e-3, atol=2e-3)


def test_reslice_4d_keeps_volumes():
    data = np.random.default_rng(1).random((6, 6, 3, 5)).astype(np.float32)
    out, affine = reslice(data, np.diag([2, 2, 4, 1.0]), 2.0, order=1)
    assert out.shape == (6, 6, 6, 5)
    np.testing.assert_allclose(voxel_sizes(affine), [2, 2, 2])


def test_reslice_file_restores_source_orientation_and_dtype(tmp_path):
    affine = np.array([[0, 0, -4.0, 50], [-1.0, 0, 0, 10], [0, 1.0, 0, -20], [0, 0, 0, 1]])
    data = np.random.default_rng(2).integers(0, 1000, (12, 14, 10)).astype(np.int16)
    src = write_nifti(tmp_path / "in.nii.gz", data, affine, dtype=np.int16)
    geometry = reslice_file(src, tmp_path / "out.nii.gz", 1.0, order="cubic")
    out = nib.load(tmp_path / "out.nii.gz")
    assert out.get_data_dtype() == np.int16
    assert nib.aff2axcodes(out.affine) == nib.aff2axcodes(affine)
    assert out.shape == (12, 14, 40)
    assert geometry["out_zooms"] == [1.0, 1.0, 1.0]
    values = np.asarray(out.dataobj)
    assert values.min() >= data.min() and values.max() <= data.max()


def test_as_order_rejects_unknown():
    assert as_order("cubic") == 3 and as_order(1) == 1
    with pytest.raises(ValueError, match="unknown interpolation"):
        as_order("sinc")
