"""Through-plane SR geometry: model grids, box forward model, invertible intensity map,
and the prepare/restore round trip (native and template space)."""
import nibabel as nib
import numpy as np
import pytest

from srprep.core import throughplane as tp
from srprep.core.register import write_ras_matrix
from srprep.core.resample import grid_for_voxel_size


def _oblique(zooms, origin=(-40.0, -50.0, -30.0)):
    from scipy.spatial.transform import Rotation

    a = np.eye(4)
    a[:3, :3] = Rotation.from_euler("xyz", (10, -5, 20), degrees=True).as_matrix() @ np.diag(zooms)
    a[:3, 3] = origin
    return a


def test_thick_axis_and_inplane_resolution():
    a = _oblique((0.15, 0.15, 0.45))
    assert tp.thick_axis(a) == 2 and tp.inplane_resolution(a, 2) == pytest.approx(0.15)
    assert tp.thick_axis(np.diag([1.0, 4.0, 1.0, 1.0])) == 1
    with pytest.raises(ValueError, match="isotropic"):
        tp.thick_axis(np.diag([1.0, 1.0, 1.1, 1.0]))


def test_model_grid_slices_coincide_with_acquired_slices():
    """1x1x4 mm, 20 slices, x4 model: output 80 slices over the same field of view, and
    the model grid's samples are exactly the acquired slice centres (no resampling)."""
    a = _oblique((1.0, 1.0, 4.0))
    g = tp.sr_grids(a, (30, 40, 20), factor=4)
    assert g.axis == 2 and g.lr_shape == (30, 40, 20) and g.hr_shape == (30, 40, 80)
    np.testing.assert_allclose(g.lr_affine, a, atol=1e-9)
    hr_affine, hr_shape = grid_for_voxel_size(a, (30, 40, 20), 1.0)
    np.testing.assert_allclose(g.hr_affine, hr_affine, atol=1e-9)
    assert hr_shape == g.hr_shape == (30, 40, 80)
    # sub-voxel k of thick voxel j sits at (j - 1/2 + (k + 1/2)/f) in thick-voxel units
    j, k = 7, 3
    world = g.hr_affine @ np.array([0, 0, j * 4 + k, 1.0])
    np.testing.assert_allclose(np.linalg.solve(a, world)[2], j - 0.5 + (k + 0.5) / 4)


def test_model_grid_is_the_acquired_grid_whatever_the_factor():
    """0.6 mm slices of 0.15 mm in-plane voxels with a x3 model: the model runs on the 25
    acquired slices (the old grid resampled them to 34 slices of 0.45 mm) and writes 75
    sub-slices of 0.2 mm; the 0.15 mm output comes from one resampling afterwards."""
    a = np.diag([0.15, 0.6, 0.15, 1.0])
    g = tp.sr_grids(a, (64, 25, 60), factor=3)
    assert g.axis == 1 and g.lr_shape == (64, 25, 60) and g.hr_shape == (64, 75, 60)
    np.testing.assert_allclose(g.lr_affine, a)
    assert np.allclose(np.sqrt((g.hr_affine[:3, :3] ** 2).sum(0)), [0.15, 0.2, 0.15])
    assert tp.crop_to(np.zeros((64, 102, 60)), (64, 100, 60)).shape == (64, 100, 60)


def test_no_acquired_sample_is_discarded(tmp_path):
    """4 mm slices, 2 mm in-plane, x3 (thickness != factor x in-plane): the network input
    is the acquired data itself, the sub-slices of slice j average back to slice j, and
    the output at the requested 2 mm is the sub-slice image resampled once, in place."""
    a = _oblique((2.0, 2.0, 4.0))
    x, y, z = np.meshgrid(*[np.arange(n) for n in (16, 18, 10)], indexing="ij")
    world = np.einsum("ij,j...->i...", a[:3, :3], np.stack([x, y, z])) + a[:3, 3, None, None, None]
    ramp = (300 + 2.0 * world[0] + 3.0 * world[1] + 5.0 * world[2]).astype(np.float32)
    nib.save(nib.Nifti1Image(ramp, a), tmp_path / "in.nii.gz")
    info = tp.prepare_file(tmp_path / "in.nii.gz", tmp_path / "lr.nii.gz", factor=3)
    g = tp.SRGrids.from_dict(info["grids"])
    lr = nib.load(tmp_path / "lr.nii.gz")
    assert lr.shape == ramp.shape and np.allclose(lr.affine, a)          # no resampling
    scale = tp.AffineScale.from_dict(info["scale"])
    np.testing.assert_allclose(scale.invert(np.asarray(lr.dataobj)), ramp, rtol=1e-5, atol=1e-2)
    # an ideal generator: the ramp at every sub-slice centre (world coordinates of the hr grid)
    hx, hy, hz = np.meshgrid(*[np.arange(n) for n in g.hr_shape], indexing="ij")
    hw = np.einsum("ij,j...->i...", g.hr_affine[:3, :3], np.stack([hx, hy, hz])) \
        + g.hr_affine[:3, 3, None, None, None]
    sr = 300 + 2.0 * hw[0] + 3.0 * hw[1] + 5.0 * hw[2]
    # slice profile: the 3 sub-slices of each acquired slice average to that slice
    np.testing.assert_allclose(tp.box_downsample(sr, 2, 3), ramp, rtol=1e-5, atol=1e-3)
    nib.save(nib.Nifti1Image(scale.apply(sr), g.hr_affine), tmp_path / "sr.nii.gz")
    tp.restore_file(tmp_path / "sr.nii.gz", tmp_path / "in.nii.gz", tmp_path / "out.nii.gz", info)
    out = nib.load(tmp_path / "out.nii.gz")
    ref_aff, ref_shape = grid_for_voxel_size(a, ramp.shape, 2.0)
    assert out.shape == ref_shape == (16, 18, 20) and np.allclose(out.affine, ref_aff)
    ox, oy, oz = np.meshgrid(*[np.arange(n) for n in out.shape], indexing="ij")
    ow = np.einsum("ij,j...->i...", ref_aff[:3, :3], np.stack([ox, oy, oz])) + ref_aff[:3, 3, None, None, None]
    truth = 300 + 2.0 * ow[0] + 3.0 * ow[1] + 5.0 * ow[2]
    inner = (slice(2, -2),) * 3
    np.testing.assert_allclose(np.asarray(out.dataobj)[inner], truth[inner], atol=0.05)


def test_box_downsample_and_affine_scale():
    x = np.arange(2 * 7 * 3, dtype=np.float32).reshape(2, 7, 3)
    y = tp.box_downsample(x, 1, 3)
    assert y.shape == (2, 2, 3)
    np.testing.assert_allclose(y[:, 0], x[:, :3].mean(1), rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], x[:, 3:6].mean(1), rtol=1e-6)
    data = np.random.default_rng(0).normal(300, 80, (10, 10, 10)).astype(np.float32)
    s = tp.zscore_minmax(data)
    mapped = s.apply(data)
    assert mapped.min() == pytest.approx(0, abs=1e-3) and mapped.max() == pytest.approx(255, rel=1e-5)
    np.testing.assert_allclose(s.invert(mapped), data, rtol=1e-5, atol=1e-3)
    assert tp.AffineScale.from_dict(s.to_dict()) == s


def _nearest_generator(lr: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """Stand-in for a generator: each thick voxel -> ``factor`` copies."""
    return np.repeat(lr, factor, axis=axis)


def _roundtrip(tmp_path, **kw):
    info = tp.prepare_file(tmp_path / "in.nii.gz", tmp_path / "lr.nii.gz", factor=2, **kw)
    lr = nib.load(tmp_path / "lr.nii.gz")
    g = tp.SRGrids.from_dict(info["grids"])
    assert lr.shape == g.lr_shape and np.allclose(lr.affine, g.lr_affine)
    hr = _nearest_generator(np.asarray(lr.dataobj), g.axis, 2)
    nib.save(nib.Nifti1Image(hr, g.hr_affine), tmp_path / "sr.nii.gz")
    tp.restore_file(tmp_path / "sr.nii.gz", tmp_path / "in.nii.gz", tmp_path / "out.nii.gz", info)
    return info, nib.load(tmp_path / "out.nii.gz")


def test_prepare_restore_native(tmp_path):
    a = _oblique((2.0, 2.0, 4.0))
    rng = np.random.default_rng(0)
    data = (rng.random((20, 24, 10)) * 1000).astype(np.int16)
    nib.save(nib.Nifti1Image(data, a), tmp_path / "in.nii.gz")
    info, out = _roundtrip(tmp_path)
    ref_aff, ref_shape = grid_for_voxel_size(a, data.shape, 2.0)
    assert out.shape == ref_shape == (20, 24, 20) and np.allclose(out.affine, ref_aff)
    assert out.get_data_dtype() == np.int16 and info["thick_axis"] == 2
    # a nearest "generator" returns exactly the input slices, in the input's scale
    back = np.asarray(out.dataobj)[:, :, ::2]
    np.testing.assert_array_equal(back, data)
    assert np.asarray(nib.load(tmp_path / "lr.nii.gz").dataobj).max() == pytest.approx(255, rel=1e-5)


def test_prepare_restore_through_a_template(tmp_path):
    """Template = the image's world box on RAS axes at 2 mm; identity registration: the
    result must overlay the input in world space."""
    a = _oblique((2.0, 2.0, 4.0))
    x, y, z = np.meshgrid(*[np.arange(n) for n in (24, 24, 12)], indexing="ij")
    world = np.einsum("ij,j...->i...", a[:3, :3], np.stack([x, y, z])) + a[:3, 3, None, None, None]
    smooth = 500 + 300 * np.sin(world[0] / 9) * np.cos(world[1] / 11) + 5 * world[2]
    nib.save(nib.Nifti1Image(smooth.astype(np.float32), a), tmp_path / "in.nii.gz")
    tpl_aff = np.diag([2.0, 2.0, 2.0, 1.0])
    tpl_aff[:3, 3] = (-70, -70, -70)
    nib.save(nib.Nifti1Image(np.zeros((70, 70, 70), np.float32), tpl_aff), tmp_path / "tpl.nii.gz")
    write_ras_matrix(np.eye(4), tmp_path / "identity.mat")
    info, out = _roundtrip(tmp_path, template=tmp_path / "tpl.nii.gz",
                           transform=tmp_path / "identity.mat")
    g = tp.SRGrids.from_dict(info["grids"])
    assert g.axis == int(np.argmax(np.abs(a[:3, 2])))      # template axis nearest the normal
    ref_aff, ref_shape = grid_for_voxel_size(a, smooth.shape, 2.0)
    assert out.shape == ref_shape and np.allclose(out.affine, ref_aff)
    o = np.asarray(out.dataobj)
    interior = (slice(4, -4),) * 3
    truth_on_out = smooth.repeat(2, axis=2)                     # same world sampling ~
    err = np.abs(o[interior] - truth_on_out[interior])
    assert np.median(err) < 30                                  # overlays within a few %
    assert 0.9 < np.median(o[interior]) / np.median(smooth) < 1.1
