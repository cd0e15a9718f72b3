import numpy as np
import torch

from srprep.core.patches import grid_corners
from srprep.models.babyai import SMALL, build_network
from srprep.models.sliding_window import sliding_window


def test_constant_mode_equals_reference_uniform_tiling():
    torch.manual_seed(0)
    net = build_network(**SMALL).eval()
    vol = np.random.default_rng(0).random((2, 64, 64, 32)).astype(np.float32)
    out = sliding_window(net, vol, (32, 32, 32), overlap=0.5, mode="constant", batch_size=3)
    acc = np.zeros((64, 64, 32), np.float64)
    count = np.zeros_like(acc)
    with torch.no_grad():
        for c in grid_corners((64, 64, 32), (32,) * 3, (16,) * 3):
            sl = tuple(slice(int(a), int(a) + 32) for a in c)
            acc[sl] += net(torch.from_numpy(vol[(slice(None),) + sl][None]))[0, 0].numpy()
            count[sl] += 1
    np.testing.assert_allclose(out[0], acc / count, atol=1e-5)


def test_gaussian_mode_is_deterministic_and_shaped():
    net = build_network(**SMALL).eval()
    vol = np.random.default_rng(1).random((2, 40, 48, 36)).astype(np.float32)
    a = sliding_window(net, vol, (32, 32, 32), overlap=0.25, mode="gaussian", batch_size=2)
    b = sliding_window(net, vol, (32, 32, 32), overlap=0.25, mode="gaussian", batch_size=5)
    assert a.shape == (1, 40, 48, 36)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_blending_is_a_partition_of_unity():
    """A voxel-wise network gives the same output in every window, so any correct blend
    (weights normalised to sum 1 at every voxel, windows covering the volume) must return
    the whole-volume forward pass exactly, in both modes and at any overlap."""
    torch.manual_seed(0)
    net = torch.nn.Conv3d(2, 1, kernel_size=1).eval()
    vol = np.random.default_rng(2).random((2, 40, 48, 36)).astype(np.float32)
    with torch.no_grad():
        whole = net(torch.from_numpy(vol)[None])[0].numpy()
    for mode, overlap in (("gaussian", 0.25), ("gaussian", 0.5), ("constant", 0.5)):
        out = sliding_window(net, vol, (32, 32, 32), overlap=overlap, mode=mode, batch_size=3)
        np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-5, err_msg=f"{mode} {overlap}")
