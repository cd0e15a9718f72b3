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


def _head(mni_t1, voxel=2.0):
    """The MNI152 T1 box-averaged to ``voxel`` mm: an isotropic truth with real anatomy."""
    data, affine = mni_t1
    for ax in range(3):
        data, affine = thick_slices(data, affine, axis=ax, thickness=voxel)
    return data, affine


@pytest.mark.parametrize("tilt", [0.0, 15.0])
def test_oblique_stack_and_inplane_loss_overlay_the_truth(tmp_path, mni_t1, tilt):
    """An oblique, in-plane-coarsened thick stack (srprep-eval's --tilt/--inplane) carries
    its true geometry: its header's rotation is the tilt, its voxel sizes are what was
    asked, and pulled back into the truth's grid it overlays the truth (correlation)."""
    import nibabel as nib

    from srprep.core.resample import resample
    from srprep.core.synth import degrade_file

    truth, affine = _head(mni_t1)
    nib.save(nib.Nifti1Image(truth, affine), tmp_path / "t.nii.gz")
    info = degrade_file(tmp_path / "t.nii.gz", tmp_path / "d.nii.gz", axis=2,
                        thickness=5.0, tilt=tilt, inplane=3.0)
    img = nib.load(tmp_path / "d.nii.gz")
    np.testing.assert_allclose(voxel_sizes(img.affine), [3.0, 3.0, 5.0], atol=1e-6)
    normal = img.affine[:3, 2] / 5.0          # the slice normal, tilted about x
    assert np.degrees(np.arccos(normal[2])) == pytest.approx(tilt, abs=1e-4)
    assert normal[0] == pytest.approx(0.0, abs=1e-6)
    assert info["tilt_deg"] == tilt and info["zooms"] == pytest.approx([3.0, 3.0, 5.0])
    back = resample(np.asarray(img.dataobj), img.affine, affine, truth.shape, order=1)
    head = truth > 0.1 * truth.max()
    r = np.corrcoef(truth[head], back[head])[0, 1]
    assert r > 0.93, r
    # the mean intensity inside the head survives the integration (no lost slices)
    assert back[head].mean() == pytest.approx(truth[head].mean(), rel=0.03)
    # the same stack with the opposite tilt in its header overlays measurably worse
    if tilt:
        t = np.radians(-2 * tilt)
        turn = np.eye(4)
        turn[1:3, 1:3] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
        centre = np.eye(4)
        centre[:3, 3] = img.affine[:3, :3] @ (np.array(img.shape) - 1) / 2 + img.affine[:3, 3]
        wrong = centre @ turn @ np.linalg.inv(centre) @ img.affine
        bad = resample(np.asarray(img.dataobj), wrong, affine, truth.shape, order=1)
        assert np.corrcoef(truth[head], bad[head])[0, 1] < r - 0.05


def test_gauss_is_the_gaussian_profile():
    """srprep-eval's --profile gauss (UniRes' name for it) is the Gaussian profile."""
    c = np.array([3.5, 10.0])
    np.testing.assert_array_equal(slice_profile_weights(20, c, 3.0, "gauss"),
                                  slice_profile_weights(20, c, 3.0, "gaussian"))
