"""Forward operator: kernels, ratios, intermediate grid, A1 = 1, exact adjoint."""
import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from srprep.models.unires.projection import Projection, profile_kernel, voxel_ratios

SPEC_KERNELS = {  # UniRes spec 2.1, computed with the original code
    ("rect", 2): [0, .25, .5, .25, 0],
    ("rect", 4): [0, .125, .25, .25, .25, .125, 0],
    ("rect", 5): [.025, .175, .2, .2, .2, .175, .025],
    ("rect", 6): [0, 1 / 12, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 6, 1 / 12, 0],
    ("gauss", 2): [0, .0026, .0447, .2417, .4221, .2417, .0447, .0026, 0],
    ("triangle", 4): [0, .0104, .0625, .125, .1875, .2292, .1875, .125, .0625, .0104, 0],
}


@pytest.mark.parametrize("key", list(SPEC_KERNELS))
def test_kernels_match_unires_tables(key):
    taps = profile_kernel(*key)
    np.testing.assert_allclose(taps, SPEC_KERNELS[key], atol=6e-5)


def test_gauss4_kernel():
    taps = profile_kernel("gauss", 4)
    assert len(taps) == 15 and taps[7] == pytest.approx(0.2283, abs=1e-4)
    assert taps.sum() == pytest.approx(0.99999, abs=1e-5)


def _affine(sizes, origin=(0, 0, 0)):
    a = np.diag(list(sizes) + [1.0])
    a[:3, 3] = origin
    return a


def test_ratio_and_intermediate_grid_for_3p5mm_slices():
    y = _affine((1, 1, 1))
    x = _affine((1, 1, 3.5), (0, 0, 2.0))
    assert voxel_ratios(y, x).tolist() == [1, 1, 4]
    p = Projection(y, (30, 30, 60), x, (30, 30, 15))
    assert p.thick_axis == 2 and p.half.tolist() == [0, 0, 3]
    np.testing.assert_allclose(np.diag(p.inter_affine)[:3], [1, 1, 0.875])
    np.testing.assert_allclose(p.inter_affine[2, 3], 2.0 - 3 * 0.875)  # offset -3 voxels
    assert p.inter_shape == (30, 30, 14 * 4 + 1 + 6)
    assert p.forward(torch.zeros(30, 30, 60)).shape == (30, 30, 15)


def test_ratio_tolerates_round_off():
    assert voxel_ratios(np.eye(4), _affine((1, 1, 4.0000001))).tolist() == [1, 1, 4]
    assert voxel_ratios(np.eye(4), _affine((0.9, 1, 2.5))).tolist() == [1, 1, 3]


def _oblique():
    a = np.eye(4)
    a[:3, :3] = Rotation.from_euler("xyz", [5, -3, 8], degrees=True).as_matrix() @ np.diag([1.5, 1, 2.5])
    a[:3, 3] = [1, 0.5, 0.2]
    return a


@pytest.mark.parametrize("case", ["separable", "oblique", "denoise", "identity"])
def test_adjoint_is_exact_in_float64(case):
    y_aff, y_shape = _affine((1, 1, 1)), (21, 23, 25)
    geometry = {"separable": (_affine((1, 1, 4), (0.3, -0.2, 1.1)), (20, 22, 6), "sr"),
                "oblique": (_oblique(), (12, 22, 9), "sr"),
                "denoise": (_affine((1, 1, 1), (0.4, 0.1, -0.3)), (20, 22, 24), "denoise"),
                "identity": (y_aff, y_shape, "identity")}[case]
    p = Projection(y_aff, y_shape, geometry[0], geometry[1], mode=geometry[2],
                   dtype=torch.float64)
    p.log_scale = 0.1
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(y_shape, dtype=torch.float64, generator=gen)
    x = torch.randn(p.x_shape, dtype=torch.float64, generator=gen)
    lhs = float((p.forward(y) * x).sum())
    rhs = float((y * p.adjoint(x)).sum())
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


def test_forward_of_ones_is_one_inside():
    p = Projection(_affine((1, 1, 1)), (21, 23, 40), _affine((1, 1, 4), (0, 0, 4)), (21, 23, 8),
                   dtype=torch.float64)
    ones = p.forward(torch.ones(21, 23, 40, dtype=torch.float64))
    np.testing.assert_allclose(ones.numpy(), 1.0, atol=1e-12)


def test_forward_outside_is_zero_without_extrapolation():
    p = Projection(_affine((1, 1, 1)), (10, 10, 10), _affine((1, 1, 1), (-0.5, 0, 0)),
                   (10, 10, 10), mode="denoise", dtype=torch.float64)
    out = p.forward(torch.ones(10, 10, 10, dtype=torch.float64))
    assert float(out[0].abs().max()) == 0.0 and float(out[1].min()) == 1.0


def test_interleave_factors_alternate():
    p = Projection(_affine((1, 1, 1)), (8, 8, 16), _affine((1, 1, 2)), (8, 8, 8))
    p.log_scale = float(np.log(1.1))
    f = p.interleave_factors().numpy()
    np.testing.assert_allclose(f[::2], 1.1, rtol=1e-6)
    np.testing.assert_allclose(f[1::2], 1 / 1.1, rtol=1e-6)
