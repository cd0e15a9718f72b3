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


def test_label_resampling_identity_and_upsampling():
    from srprep.core.resample import resample_labels

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (6, 7, 8)).astype(np.uint8)
    same = resample_labels(labels, np.eye(4), np.eye(4), labels.shape)
    assert same.dtype == np.uint8 and np.array_equal(same, labels)
    # a 4 mm two-label stack at 1 mm: the boundary sits halfway between slice centres
    thick = np.zeros((1, 1, 4), np.int16)
    thick[..., 2:] = 7
    src = np.diag([1.0, 1, 4, 1])
    up = resample_labels(thick, src, np.eye(4), (1, 1, 13))[0, 0]
    assert up.dtype == np.int16
    assert up.tolist() == [0] * 7 + [7] * 6   # midway (z = 6) ties stay background
    outside = resample_labels(thick + 1, src, np.eye(4) @ np.diag([1, 1, 1, 1.0]), (1, 1, 20))
    assert outside[0, 0, 19] == 0              # beyond the source field of view


def test_label_resampling_rejects_bad_maps():
    from srprep.core.resample import resample_labels

    with pytest.raises(ValueError, match="integer"):
        resample_labels(np.full((2, 2, 2), 0.5), np.eye(4), np.eye(4), (2, 2, 2))
    with pytest.raises(ValueError, match="at most 255"):
        resample_labels(np.arange(300).reshape(3, 10, 10), np.eye(4), np.eye(4), (2, 2, 2))


def test_reset_origin_removes_rotation_and_centres():
    from scipy.spatial.transform import Rotation

    from srprep.core.resample import reset_origin

    data = np.zeros((30, 40, 20), np.float32) - 1000
    data[10:20, 15:25, 5:15] = 40.0                       # a block of "tissue"
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("x", 20, degrees=True).as_matrix() @ np.diag([1, 1, 2])
    affine[:3, 3] = [500, -300, 1200]                      # badly-off scanner origin
    out, grid = reset_origin(data, affine)
    np.testing.assert_allclose(grid[:3, :3], np.diag([1, 1, 2]), atol=1e-9)
    centre = grid[:3, :3] @ ((np.array(out.shape) - 1) / 2) + grid[:3, 3]
    np.testing.assert_allclose(centre, 0, atol=1e-9)
    assert out.min() == pytest.approx(-1000)               # air outside, not zero
    # the block keeps its volume (10*10*10 voxels of 2 mm^3 = 2000 mm^3) within 10%
    assert abs((out > -480).sum() * 2 - 2000) < 200
    # and its centre stays where the rotated centre is, relative to the image centre
    block = np.argwhere(out > -480).mean(0)
    want = affine[:3, :3] @ (np.array([14.5, 19.5, 9.5]) - (np.array(data.shape) - 1) / 2)
    np.testing.assert_allclose(grid[:3, :3] @ block + grid[:3, 3], want, atol=0.6)


@pytest.mark.parametrize("order", [0, 1, 3])
@pytest.mark.parametrize("mode", ["constant", "nearest", "reflect", "mirror"])
def test_axis_aligned_fast_path_equals_the_general_spline(order, mode):
    """Scaled/shifted grids are resampled axis by axis; the values must equal scipy's
    3-D spline (prefilter + affine_transform) on the same grids."""
    from scipy import ndimage

    from srprep.core.resample import _filter_mode

    rng = np.random.default_rng(order * 10 + len(mode))
    data = (rng.normal(size=(11, 17, 9)) * 100).astype(np.float32)
    affine = np.diag([1.5, 0.8, 3.0, 1.0])
    affine[:3, 3] = [2.0, -7.0, 1.3]
    zoomed = np.diag([0.7, 1.1, 1.0, 1.0])
    zoomed[:3, 3] = [2.4, -10.1, 3.5]                       # every axis scaled and shifted
    slices_only = affine @ np.diag([1, 1, 1 / 3, 1])        # thick slices -> isotropic
    for target, shape in ((zoomed, (20, 9, 25)), (slices_only, (11, 17, 27))):
        got = resample(data, affine, target, shape, order=order, mode=mode)
        index_map = np.linalg.solve(affine, target)
        src = data.astype(np.float64)
        if order > 1:
            src = ndimage.spline_filter(src, order=order, mode=_filter_mode(mode))
        want = ndimage.affine_transform(src, index_map[:3, :3], offset=index_map[:3, 3],
                                        output_shape=shape, order=order, mode=mode,
                                        prefilter=False)
        assert np.abs(got - want).max() < 1e-3          # float32 rounding of values ~300
