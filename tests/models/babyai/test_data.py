import numpy as np
import pytest

from srprep.models.babyai.data import Degradation, PatchDataset, PatchSampler, Subject


@pytest.fixture
def subjects(tmp_path):
    out = []
    for i in range(2):
        rng = np.random.default_rng(i)
        t = (rng.random((48, 48, 48)) * (np.indices((48,) * 3)[0] > 8)).astype(np.float32)
        np.save(tmp_path / f"t{i}.npy", t)
        np.save(tmp_path / f"g{i}.npy", t[::-1].copy())
        out.append(Subject(tmp_path / f"t{i}.npy", tmp_path / f"g{i}.npy", 1.0, f"s{i}"))
    return out


def test_patches_shapes_channels_and_memmap(subjects):
    ds = PatchDataset(subjects, Degradation((2.0, 4.0)), PatchSampler((16, 16, 16), 5), seed=1)
    assert len(ds) == 10
    x, y = ds[0]
    assert x.shape == (2, 16, 16, 16) and y.shape == (1, 16, 16, 16)
    assert isinstance(subjects[0].open()[0], np.memmap)


def test_seeded_epochs(subjects):
    sampler = PatchSampler((16, 16, 16), 4)
    a = PatchDataset(subjects, Degradation(), sampler, seed=5)
    b = PatchDataset(subjects, Degradation(), sampler, seed=5)
    assert all(np.array_equal(a[i][0], b[i][0]) for i in range(len(a)))
    first = [a[i][0].numpy().copy() for i in range(len(a))]
    a.set_epoch(1)
    assert not all(np.array_equal(first[i], a[i][0]) for i in range(len(a)))
    fixed = PatchDataset(subjects, Degradation(), sampler, seed=5, fixed=True)
    before = fixed[0][0].numpy().copy()
    fixed.set_epoch(7)
    np.testing.assert_array_equal(before, fixed[0][0])


def test_degradation_models():
    rng = np.random.default_rng(0)
    ref = Degradation((2.0, 5.0), axes=(2,), model="reference")
    draws = {ref.draw(rng, 1.0) for _ in range(50)}
    assert {a for a, _ in draws} == {2} and {t for _, t in draws} <= {2.0, 3.0, 4.0, 5.0}
    vol = np.random.default_rng(1).random((20, 20, 40)).astype(np.float32)
    with pytest.raises(ValueError, match="unpadded, unscaled"):
        ref.apply(vol, 2, 4.0, 1.0)
    out = ref.apply(vol, 2, 4.0, 1.0, raw=vol, pad=[[0, 0]] * 3)
    assert out.shape == vol.shape
    phys = Degradation((2.5, 2.5))
    assert phys.draw(rng, 1.0)[1] == 2.5
    smooth = phys.apply(vol, 0, 4.0, 1.0)
    assert smooth.shape == vol.shape and smooth.std() < vol.std()
    # values: a box profile keeps a linear ramp along the slice axis (the slice means sit
    # on the ramp at the slice centres 1.5, 5.5, ... and cubic interpolation reproduces it
    # away from the ends, where the spline's boundary handling bends it: 0.86 at voxel 0,
    # < 0.01 from voxel 14 on) and wipes out a 4-voxel period entirely
    x = np.arange(40, dtype=np.float32)[:, None, None] * np.ones((1, 6, 6), np.float32)
    ramp = phys.apply(x, 0, 4.0, 1.0)
    np.testing.assert_allclose(ramp[14:-14], x[14:-14], atol=0.01)
    assert np.abs(ramp - x).max() > 0.5                       # the ends do bend
    wave = np.sin(2 * np.pi * x / 4).astype(np.float32)
    assert np.abs(phys.apply(wave, 0, 4.0, 1.0)).max() < 1e-3


def _reference_pair_input(gt: np.ndarray, k: int, axis: int) -> np.ndarray:
    """BABY-AI's training input, written out from its scripts (spec section 3, 2.x):
    keep slices 0, k, 2k... of the raw ground truth, scipy zoom (order 3) by N/ceil(N/k)
    back to N, zero-pad to 192x224x192 (floor/ceil split), scale by the 1st/99th
    percentiles of the positive voxels (eps 1e-6) and clip to [0, 1]."""
    from scipy import ndimage

    index = [slice(None)] * 3
    index[axis] = slice(0, None, k)
    lr = gt.astype(np.float64)[tuple(index)]
    factors = [1.0] * 3
    factors[axis] = gt.shape[axis] / np.ceil(gt.shape[axis] / k)
    up = ndimage.zoom(lr, factors, order=3)
    diff = np.array((192, 224, 192)) - np.array(up.shape)
    up = np.pad(up, [(d // 2, d - d // 2) for d in diff])
    p1, p99 = np.percentile(up[up > 0], [1, 99])
    return np.clip((up - p1) / (p99 - p1 + 1e-6), 0, 1)


@pytest.mark.parametrize("k, axis", [(4, 2), (5, 1)])
def test_reference_synthesis_reproduces_the_official_pairs(tmp_path, k, axis):
    """Decimation on the unpadded raw volume (factor 182/46 for k=4, not 192/48 = 4),
    padding afterwards, the input scaled on its own."""
    from srprep.core.normalise import percentile_scale
    from srprep.core.patches import pad_to_multiple

    rng = np.random.default_rng(k)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, n) for n in (182, 218, 182)), indexing="ij")
    head = (x ** 2 + y ** 2 + z ** 2) < 0.8
    gt = (head * (600 + 300 * np.sin(6 * x) * np.cos(5 * y) + 50 * rng.random(head.shape))
          ).astype(np.float32)
    padded, _, crop = pad_to_multiple(gt, np.eye(4), 32)
    target, _ = percentile_scale(padded)
    np.save(tmp_path / "t.npy", target)
    np.save(tmp_path / "raw.npy", gt)
    pad = [[c.start, n - c.stop] for c, n in zip(crop, padded.shape)]
    assert pad == [[5, 5], [3, 3], [5, 5]]
    subject = Subject(tmp_path / "t.npy", None, 1.0, "s", tmp_path / "raw.npy", pad)
    ref = Degradation((k, k), axes=(axis,), model="reference")
    ours = ref.apply(subject.open()[0], axis, float(k), 1.0, raw=subject.open_raw(), pad=subject.pad)
    expected = _reference_pair_input(gt, k, axis)
    assert ours.shape == expected.shape == (192, 224, 192)
    np.testing.assert_allclose(ours, expected, atol=2e-6)
    # what the old synthesis did (decimating the padded, scaled target) is visibly different
    from srprep.core.synth import decimate_and_zoom

    _, old = decimate_and_zoom(target, k, axis)
    assert np.abs(old - expected).max() > 0.05


def test_noise_in_the_synthesised_thick_slices(subjects):
    """--noise: Rician noise of the drawn s.d. in the thick slices (a flat region reads it
    back, reduced by the cubic interpolation's smoothing only along the thick axis);
    without noise the draws, and so every patch, are those of before."""
    flat = np.full((40, 40, 40), 0.5, np.float32)
    deg = Degradation((4.0, 4.0), axes=(2,), noise=(0.05, 0.05))
    rng = np.random.default_rng(0)
    lr = deg.apply(flat, 2, 4.0, 1.0, noise_sd=deg.draw_noise(rng), rng=rng)
    centre = lr[5:-5, 5:-5, 5:-5]
    assert abs(centre.std() - 0.05) < 0.015 and abs(centre.mean() - 0.5) < 0.01
    quiet = Degradation((2.0, 4.0))
    assert quiet.draw_noise(rng) == 0.0
    a = PatchDataset(subjects, quiet, PatchSampler((16, 16, 16), 3), seed=2)
    b = PatchDataset(subjects, Degradation((2.0, 4.0), noise=(0.0, 0.0)),
                     PatchSampler((16, 16, 16), 3), seed=2)
    np.testing.assert_array_equal(a[0][0], b[0][0])
    noisy = PatchDataset(subjects, Degradation((2.0, 4.0), noise=(0.02, 0.04)),
                         PatchSampler((16, 16, 16), 3), seed=2)
    assert not np.allclose(noisy[0][0][1], a[0][0][1])
    with pytest.raises(ValueError, match="physical"):
        Degradation(model="reference", noise=(0.0, 0.1)).apply(
            flat, 2, 4.0, 1.0, raw=flat, pad=[(0, 0)] * 3, noise_sd=0.1, rng=rng)


def test_train_cli_refuses_bad_noise(tmp_path, capsys):
    from srprep.bids_app.cli.train import main

    base = ["babyai", str(tmp_path / "bids"), str(tmp_path / "out"), "-w", str(tmp_path / "w")]
    assert main(base + ["--noise", "0.05", "0.01"]) == 2
    assert "--noise needs 0 <= MIN <= MAX, got 0.05 0.01" in capsys.readouterr().err
    assert main(base + ["--noise", "0", "0.02", "--synthesis", "reference"]) == 2
    assert "--noise goes with --synthesis physical" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()          # nothing written
