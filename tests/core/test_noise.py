import numpy as np
import pytest

from srprep.core.noise import estimate_noise, rice_mean, rice_moments_to_params
from srprep.core.synth import add_rician_noise


def _head(shape=(64, 64, 64)):
    r = np.sqrt(((np.indices(shape) - (np.array(shape)[:, None, None, None] - 1) / 2) ** 2).sum(0))
    truth = np.zeros(shape)
    truth[r < 26] = 800
    truth[r < 19] = 1100
    truth[r < 8] = 300
    return truth


@pytest.mark.parametrize("sigma", [20.0, 40.0, 60.0])
def test_sigma_within_5_percent_on_rician_background(sigma):
    x = add_rician_noise(_head(), sigma, np.random.default_rng(int(sigma)))
    est = estimate_noise(x)
    assert est.model == "rice" and est.method == "mixture"
    assert est.sigma == pytest.approx(sigma, rel=0.05)
    assert 600 < est.mu < 1100


def test_signed_data_uses_gaussian_mixture():
    rng = np.random.default_rng(0)
    ct = np.where(_head() > 0, 40.0, -1000.0) + rng.normal(0, 10, (64, 64, 64))
    est = estimate_noise(ct, ct=True)
    assert est.model == "gauss" and est.sigma == pytest.approx(10, rel=0.1)
    assert est.mu == pytest.approx(1040, rel=0.05)


def test_skull_stripped_image_falls_back_to_laplacian_estimate():
    """UniRes' smallest-sd rule picks a tissue class here; ours detects the missing
    noise floor and uses Immerkaer's estimator (brudfors/UniRes#23)."""
    truth = _head()
    x = add_rician_noise(truth, 40.0, np.random.default_rng(5)) * (truth > 0)
    est = estimate_noise(x)
    assert est.method == "immerkaer"
    assert est.sigma == pytest.approx(40, rel=0.2)


def test_koay_basser_inverts_rice_moments():
    rng = np.random.default_rng(1)
    for nu, s in ((0.0, 10.0), (30.0, 10.0), (200.0, 15.0)):
        x = np.abs(nu + rng.normal(0, s, 200000) + 1j * rng.normal(0, s, 200000))
        est_nu, est_s = rice_moments_to_params(x.mean(), x.var())
        assert est_s == pytest.approx(s, rel=0.03)
        assert est_nu == pytest.approx(nu, abs=0.05 * s + 0.02 * nu)
        assert rice_mean(nu, s) == pytest.approx(x.mean(), rel=0.01)


def _mni_head(mni_t1, sigma=30.0, seed=0):
    """The MNI152 T1 at 2 mm scaled to WM ~ 1000 with Rician noise: a real anatomy with a
    known noise s.d., and its brain/head masks."""
    from scipy import ndimage

    from srprep.core.resample import reslice

    data, affine = mni_t1
    truth, _ = reslice(data / np.percentile(data, 99) * 1000, affine, 2.0, order=1)
    noisy = add_rician_noise(np.clip(truth, 0, None), sigma, np.random.default_rng(seed))
    head = ndimage.binary_dilation(noisy > 150, iterations=2)
    return noisy, head, truth > 300


@pytest.mark.parametrize("case", ["as acquired", "background zeroed", "8-bit",
                                  "8-bit, background zeroed", "cropped", "skull-stripped"])
def test_sigma_holds_when_the_background_is_degraded(mni_t1, case):
    """Scanners zero, crop or mask the background and store 8-bit integers.  Before the
    in-tissue check, 'skull-stripped' gave sigma = 0 and a zeroed background 1.6x sigma
    on the demo's PDw; every case must now stay within -25 %/+35 % of the truth."""
    x, head, brain = _mni_head(mni_t1)
    scale = 1.0
    if "zeroed" in case:
        x = np.where(head, x, 0)
    if "8-bit" in case:
        scale = x.max() / 255
        x = np.round(x / scale)
    if case == "cropped":
        idx = np.argwhere(head)
        x = x[tuple(slice(a, b) for a, b in zip(idx.min(0), idx.max(0) + 1))]
    if case == "skull-stripped":
        x = np.where(brain, x, 0)
    est = estimate_noise(x)
    assert 0.75 * 30 <= est.sigma * scale <= 1.35 * 30, est
    assert est.mu / est.sigma > 10 and "signal-to-noise" not in est.warning
    if case == "skull-stripped":            # the background class is no noise floor
        assert est.method == "immerkaer" and "implausible" in est.warning


def test_implausibly_low_snr_is_flagged():
    """A pure-noise image (no contrast worth the name) must not pass silently."""
    x = add_rician_noise(np.full((40, 40, 40), 60.0), 30.0, np.random.default_rng(2))
    assert "signal-to-noise" in estimate_noise(x).warning
