"""Training pairs for the through-plane methods: each image registered to the atlas.

(The BABY-AI end-to-end test trains on the demo's header-aligned images with
``--no-register``; registration during preparation is checked here, on images whose
headers do not know about the head's motion.)"""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from srprep.core.phantoms import truth_images
from srprep.core.prepare import prepare_training_pair
from srprep.core.resample import resample
from tests.helpers import write_nifti


def _corr(a, b, mask):
    return np.corrcoef(a[mask], b[mask])[0, 1]


@pytest.fixture(scope="module")
def head_4mm():
    images, affine = truth_images(4.0)
    return images, affine


def test_registration_undoes_motion_the_header_does_not_record(head_4mm, tmp_path):
    images, affine = head_4mm
    atlas = write_nifti(tmp_path / "atlas.nii.gz", images["T1w"], affine)
    motion = np.eye(4)
    motion[:3, :3] = Rotation.from_euler("xyz", (6, -4, 5), degrees=True).as_matrix()
    motion[:3, 3] = (4.0, -3.0, 5.0)
    files, known = {}, {}
    for suffix in ("T1w", "T2w"):   # the head moved; the header still says MNI
        moved = resample(images[suffix], affine, np.linalg.inv(motion) @ affine,
                         images[suffix].shape, order=3)
        files[suffix] = write_nifti(tmp_path / f"{suffix}.nii.gz", moved, affine)
        # the same voxels with a header that records the motion: what a perfect
        # registration gives (both lose the same detail to two cubic resamplings)
        known[suffix] = write_nifti(tmp_path / f"{suffix}_known.nii.gz", moved,
                                    np.linalg.inv(motion) @ affine)
    truth = prepare_training_pair(known["T1w"], known["T2w"], atlas, tmp_path / "truth",
                                  register_images=False)
    aligned = prepare_training_pair(files["T1w"], files["T2w"], atlas, tmp_path / "reg")
    by_header = prepare_training_pair(files["T1w"], files["T2w"], atlas, tmp_path / "hdr",
                                      register_images=False)
    assert aligned["shape"] == truth["shape"] and aligned["shape"][0] % 32 == 0
    assert aligned["voxel_mm"] == pytest.approx(4.0)
    for key in ("guide", "target"):
        t = np.load(truth[key])
        mask = t > 0.1
        r_reg = _corr(np.load(aligned[key]), t, mask)
        r_hdr = _corr(np.load(by_header[key]), t, mask)
        assert r_reg > 0.995 and r_hdr < 0.5, (key, r_reg, r_hdr)
        # scaled to [0, 1] from the 1st/99th percentiles of the positive voxels
        assert 0 <= np.load(aligned[key]).min() and np.load(aligned[key]).max() <= 1
