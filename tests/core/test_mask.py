import numpy as np

from srprep.core.mask import brain_mask
from srprep.core.resample import reslice


def test_mask_of_mni_brain_matches_template_support(mni_t1):
    data, affine = mni_t1
    data2, _ = reslice(data, affine, 2.0)
    rng = np.random.default_rng(0)
    noisy = np.sqrt((data2 + rng.normal(0, 5, data2.shape)) ** 2 + rng.normal(0, 5, data2.shape) ** 2)
    mask = brain_mask(noisy)
    truth = data2 > 10
    dice = 2 * (mask & truth).sum() / (mask.sum() + truth.sum())
    assert dice > 0.9
    # ~1.5 L brain at 8 mL per voxel
    assert 1100 < mask.sum() * 8 / 1000 < 2200


def test_mask_of_4d_uses_selected_volumes():
    vol = np.zeros((24, 24, 24, 3), np.float32)
    ball = ((np.indices((24, 24, 24)) - 11.5) ** 2).sum(0) < 7**2
    vol[..., 0] = 100 * ball
    vol[..., 1:] = np.random.default_rng(1).random((24, 24, 24, 2))
    mask = brain_mask(vol, volumes=[0])
    assert mask[12, 12, 12] and not mask[1, 1, 1]
    dice = 2 * (mask & ball).sum() / (mask.sum() + ball.sum())
    assert dice > 0.9


def test_empty_image_gives_empty_mask():
    assert not brain_mask(np.zeros((8, 8, 8))).any()
