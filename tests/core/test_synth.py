import numpy as np
import pytest

from srprep.core.nifti import voxel_sizes
from srprep.core.synth import (add_rician_noise, decimate_and_zoom, slice_profile_weights,
                               thick_slice_grid, thick_slices)


def test_thick_slice_grid_centres_stack_and_sets_header():
    affine, shape, centres = thick_slice_grid(np.eye(4), (10, 10, 42), axis=2, thickness=4)
    assert shape == (10, 10, 10)
    np.testing.assert_allclose(voxel_sizes(affine), [1, 1, 4])
    # 10 slices of 4 mm in a 42 mm FOV leave 1 mm on each side: first centre at z=2.5
    np.testing.assert_allclose(centres[:2], [2.5, 6.5])
    np.testing.assert_allclose(affine[2, 3], 2.5)


@pytest.mark.parametrize("profile", ["box", "gaussian"])
def test_profile_rows_sum_to_one(profile):
    w = slice_profile_weights(30, np.array([3.5, 10.0, 20.25]), 3.5, profile)
    np.testing.assert_allclose(w.sum(1), 1.0)
    assert w[1, 10] == w[1].max() and w[1, 9] == pytest.approx(w[1, 11])


def test_box_profile_of_integer_thickness_averages_slices():
    data = np.arange(12, dtype=np.float32)[None, None, :].repeat(2, 0).repeat(2, 1)
    lr, affine = thick_slices(data, np.eye(4), axis=2, thickness=3)
    np.testing.assert_allclose(lr[0, 0], [1, 4, 7, 10])   # means of 0-2, 3-5, ...
    np.testing.assert_allclose(affine[2, 3], 1.0)


def test_fractional_thickness_with_gap():
    data = np.ones((4, 4, 50), np.float32)
    lr, affine = thick_slices(data, np.eye(4), axis=2, thickness=2.5, gap=0.5)
    assert lr.shape == (4, 4, 16)
    np.testing.assert_allclose(voxel_sizes(affine)[2], 3.0)
    np.testing.assert_allclose(lr, 1.0, rtol=1e-6)


def test_rician_noise_statistics():
    rng = np.random.default_rng(0)
    noisy = add_rician_noise(np.zeros((50, 50, 50)), 10.0, rng)
    # Rayleigh mean sigma*sqrt(pi/2)
    assert noisy.mean() == pytest.approx(10 * np.sqrt(np.pi / 2), rel=0.01)


def test_decimate_and_zoom_matches_reference_definition():
    from scipy import ndimage
    vol = np.random.default_rng(0).random((12, 13, 182))
    lr, up = decimate_and_zoom(vol, 4, axis=2)
    assert lr.shape == (12, 13, 46) and up.shape == vol.shape
    expected = ndimage.zoom(vol[:, :, ::4], (1, 1, 182 / 46), order=3)
    np.testing.assert_allclose(up, expected)
