"""BABY-AI's way onto the atlas grid: T1w -> atlas, T2w -> T1w composed; inputs already on
the grid are neither registered nor resampled; the atlas that goes with the weights."""
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.core.errors import ConfigurationError
from srprep.core.register import apply_transform, read_ras_matrix
from srprep.core.resample import resample
from srprep.core.templates import mni152
from srprep.models.babyai.inference import align_to_atlas
from tests.helpers import write_nifti


@pytest.fixture(scope="module")
def atlas_4mm():
    return mni152(4.0)


def test_t2w_reaches_the_atlas_through_the_t1w(tmp_path, atlas_4mm):
    data, grid = atlas_4mm
    atlas = write_nifti(tmp_path / "atlas.nii.gz", data, grid)
    t1w = write_nifti(tmp_path / "t1w.nii.gz", data, grid)           # already on the atlas grid
    # a thick-slice T2w whose header is 3 mm / 2 mm off the anatomy it holds
    thick = grid @ np.diag([1.0, 1.0, 2.0, 1.0])
    shape = (data.shape[0], data.shape[1], data.shape[2] // 2)
    t2 = resample(data, grid, thick, shape, order=3)
    lie = np.eye(4)
    lie[:3, 3] = [3.0, -2.0, 0.0]
    t2w = write_nifti(tmp_path / "t2w.nii.gz", t2, lie @ thick)
    info = align_to_atlas(t1w, t2w, atlas, tmp_path / "t1.mat", tmp_path / "t2.mat")
    assert info == {"t1w_to_atlas": "identity (already on the atlas grid)",
                    "t2w_to_t1w": "rigid registration"}
    np.testing.assert_allclose(read_ras_matrix(tmp_path / "t1.mat"), np.eye(4), atol=1e-9)
    composed = read_ras_matrix(tmp_path / "t2.mat")                  # atlas point -> T2w point
    np.testing.assert_allclose(composed[:3, 3], [3.0, -2.0, 0.0], atol=0.6)
    np.testing.assert_allclose(composed[:3, :3], np.eye(3), atol=0.02)


def test_identity_on_the_same_grid_is_not_an_interpolation():
    rng = np.random.default_rng(0)
    data = rng.random((6, 7, 5)).astype(np.float32)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    out = apply_transform(data, affine, np.eye(4), affine, data.shape, order=3)
    np.testing.assert_array_equal(out, data)                           # bit for bit
    moved = np.eye(4)
    moved[0, 3] = 0.5
    assert not np.array_equal(apply_transform(data, affine, moved, affine, data.shape), data)


def _settings(tmp_path, atlas=None):
    from srprep.bids_app.config import Settings

    s = Settings(tmp_path, tmp_path / "out", tmp_path / "work", weights_dir=tmp_path / "w")
    s.method_options = {"babyai": {"atlas": atlas} if atlas else {}}
    return s


def test_default_atlas_is_the_one_the_weights_were_trained_on(tmp_path):
    from srprep.bids_app.methods.babyai import _atlas

    weights = tmp_path / "w" / "babyai" / "pretrained_weights.pth"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"released")
    with pytest.raises(ConfigurationError, match="srprep-weights fetch babyai-atlas"):
        _atlas(_settings(tmp_path))                       # released weights, no infant atlas
    infant = weights.parent / "infant_atlas.nii.gz"
    infant.write_bytes(b"atlas")
    assert _atlas(_settings(tmp_path)) == str(infant)
    adult = _atlas(_settings(tmp_path, "mni152"))                      # only when asked
    assert nib.load(adult).shape == (182, 218, 182)
    weights.with_suffix(".json").write_text(json.dumps(
        {"residual": True, "atlas": {"template": "mni152", "resolution": 4.0}}))
    own = _atlas(_settings(tmp_path))                      # srprep-train's record
    assert nib.load(own).shape == (46, 54, 46) and own.endswith("mni152_4mm_46x54x46.nii.gz")
