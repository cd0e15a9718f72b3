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
    out = ref.apply(vol, 2, 4.0, 1.0)
    assert out.shape == vol.shape
    phys = Degradation((2.5, 2.5))
    assert phys.draw(rng, 1.0)[1] == 2.5
    smooth = phys.apply(vol, 0, 4.0, 1.0)
    assert smooth.shape == vol.shape and smooth.std() < vol.std()
