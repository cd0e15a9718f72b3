import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from srprep.core.register import (apply_transform, read_ras_matrix, register, register_files,
                                  write_ras_matrix)
from srprep.core.resample import resample, reslice
from tests.helpers import write_nifti


def _rigid(angles_deg, shift_mm):
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    m[:3, 3] = shift_mm
    return m


@pytest.fixture(scope="module")
def mni_2mm(mni_t1):
    data, affine = mni_t1
    return reslice(data, affine, 2.0, order=1)


def _errors(estimate, truth):
    rot = Rotation.from_matrix(estimate[:3, :3] @ truth[:3, :3].T).magnitude()
    return np.degrees(rot), np.abs(estimate[:3, 3] - truth[:3, 3]).max()


@pytest.mark.parametrize("fast", [False, True])
def test_rigid_registration_recovers_known_motion(mni_2mm, fast, tmp_path):
    fixed, affine = mni_2mm
    truth = _rigid((4, -3, 5), (3.0, -2.0, 4.0))
    moving = resample(fixed, affine, np.linalg.inv(truth) @ affine, fixed.shape, order=3)
    reg = register(moving, affine, fixed, affine, tmp_path / "t.mat", fast=fast)
    deg, mm = _errors(reg.matrix, truth)
    assert deg < 0.5 and mm < 0.5
    back = apply_transform(moving, affine, reg.matrix, affine, fixed.shape, order=3)
    inside = fixed > 0
    assert np.corrcoef(back[inside], fixed[inside])[0, 1] > 0.99
    # the inverse maps the aligned image back onto the moving grid ("post-registration")
    again = apply_transform(back, affine, reg.matrix, affine, fixed.shape, invert=True)
    core = (moving > 0) & (again > 0)
    assert np.corrcoef(again[core], moving[core])[0, 1] > 0.98


def test_ras_matrix_file_round_trip(tmp_path):
    m = _rigid((10, 0, -7), (1, 2, 3))
    m[:3, :3] *= [1.1, 0.9, 1.0]   # affine, not only rigid
    write_ras_matrix(m, tmp_path / "a.mat")
    np.testing.assert_allclose(read_ras_matrix(tmp_path / "a.mat"), m, atol=1e-6)


def test_register_files_with_identity_init(mni_2mm, tmp_path):
    fixed, affine = mni_2mm
    truth = _rigid((0, 0, 2), (1.5, 0, -1))
    moving = resample(fixed, affine, np.linalg.inv(truth) @ affine, fixed.shape, order=3)
    f = write_nifti(tmp_path / "fixed.nii.gz", fixed, affine)
    m = write_nifti(tmp_path / "moving.nii.gz", moving, affine)
    matrix = register_files(m, f, tmp_path / "x.mat", init="identity", fast=True)
    deg, mm = _errors(matrix, truth)
    assert deg < 0.5 and mm < 0.5


def test_bad_transform_name():
    with pytest.raises(ValueError, match="rigid"):
        register(np.ones((4, 4, 4)), np.eye(4), np.ones((4, 4, 4)), np.eye(4), "x.mat",
                 transform="syn")
