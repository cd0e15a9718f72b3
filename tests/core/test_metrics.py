import numpy as np
import pytest

from srprep.core.metrics import nrmse, psnr, rmse, ssim


def test_metrics_known_values():
    truth = np.zeros((10, 10, 10)); truth[2:8, 2:8, 2:8] = 100
    est = truth + 1.0
    mask = truth > 0
    assert rmse(truth, est, mask) == pytest.approx(1.0)
    assert nrmse(truth, est, mask) == pytest.approx(0.01)
    # in-mask range is 0 (constant) -> use whole image range instead
    assert psnr(truth, est) == pytest.approx(20 * np.log10(100 / 1.0))
    assert ssim(truth, truth) == pytest.approx(1.0)
    assert ssim(truth, est + np.random.default_rng(0).normal(0, 20, truth.shape)) < 0.9


def test_shape_mismatch():
    with pytest.raises(ValueError, match="shape mismatch"):
        rmse(np.ones((3, 3, 3)), np.ones((3, 3, 4)))
