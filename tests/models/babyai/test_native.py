"""BABY-AI's way back to the native T1w grid: the T2w interpolated once, the network's
correction carried back from the atlas (issue #16)."""
import nibabel as nib
import numpy as np

from srprep.core.register import apply_transform, read_ras_matrix, write_ras_matrix
from srprep.models.babyai.inference import residual_to_native
from tests.helpers import blob_volume, write_nifti


def _rotation(deg: float, shift) -> np.ndarray:
    a = np.radians(deg)
    m = np.eye(4)
    m[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    m[:3, 3] = shift
    return m


def test_residual_to_native(tmp_path):
    atlas_affine = np.diag([2.0, 2.0, 2.0, 1.0])
    atlas_affine[:3, 3] = -30
    t1_affine = atlas_affine.copy()
    t1_affine[:3, 3] += 0.7                                     # another lattice
    t2 = (blob_volume((32, 36, 30), seed=1) * 30).astype(np.int16)          # max ~23500
    t2_affine = np.diag([2.0, 2.0, 4.0, 1.0])
    t2_affine[:3, 3] = (-31, -29, -30)
    to_t1 = write_ras_matrix(_rotation(4, (1.0, -2.0, 0.5)), tmp_path / "t1.mat")
    to_t2 = write_ras_matrix(_rotation(-3, (0.5, 0.0, 1.0)), tmp_path / "t2.mat")
    shape = (32, 36, 30)
    t1 = write_nifti(tmp_path / "t1w.nii.gz", np.ones(shape), t1_affine)
    t2_file = write_nifti(tmp_path / "t2w.nii.gz", t2, t2_affine, dtype=np.int16)
    m1, m2 = read_ras_matrix(to_t1), read_ras_matrix(to_t2)
    t2_atlas = apply_transform(t2.astype(np.float32), t2_affine, m2, atlas_affine, shape)
    write_nifti(tmp_path / "t2_atlas.nii.gz", t2_atlas, atlas_affine)
    direct = apply_transform(t2.astype(np.float32), t2_affine, m2 @ np.linalg.inv(m1),
                             t1_affine, shape)
    # a network that changes nothing: exactly a single cubic reslice of the T2w
    t2_atlas_file = tmp_path / "t2_atlas.nii.gz"
    out = residual_to_native(t1, t2_file, t2_atlas_file, t2_atlas_file, to_t1, to_t2,
                             tmp_path / "same.nii.gz")
    img = nib.load(out)
    assert img.get_data_dtype() == np.int16 and np.allclose(img.affine, t1_affine)
    np.testing.assert_allclose(np.asarray(img.dataobj), np.rint(direct), atol=1)
    # a constant correction on the atlas grid arrives as that constant inside the atlas box
    write_nifti(tmp_path / "sr.nii.gz", t2_atlas + 100.0, atlas_affine)
    out = residual_to_native(t1, t2_file, tmp_path / "sr.nii.gz", t2_atlas_file, to_t1, to_t2,
                             tmp_path / "plus.nii.gz")
    diff = np.asarray(nib.load(out).dataobj, float) - np.rint(direct)
    inside = apply_transform(np.ones(shape, np.float32), atlas_affine, m1, t1_affine, shape,
                             invert=True, order=1) > 0.999
    assert inside.sum() > 0.5 * inside.size
    np.testing.assert_allclose(diff[inside], 100.0, atol=1.5)
