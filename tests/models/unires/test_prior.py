import numpy as np
import pytest
import torch

from srprep.models.unires import prior


def test_gradient_adjoint_identity():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(7, 8, 9, dtype=torch.float64, generator=gen)
    g = torch.randn(3, 7, 8, 9, dtype=torch.float64, generator=gen)
    h = [1.0, 1.5, 2.0]
    lhs = float((prior.gradient(y, h) * g).sum())
    rhs = float((y * prior.divergence_adjoint(g, h)).sum())
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)


def test_gradient_values_and_dirichlet_boundary():
    y = torch.arange(4.0).reshape(4, 1, 1).expand(4, 2, 2).contiguous()
    g = prior.gradient(y, [2.0, 1.0, 1.0])
    np.testing.assert_allclose(g[0, :, 0, 0].numpy(), [0.5, 0.5, 0.5, -1.5])  # last: 0 - 3
    np.testing.assert_allclose(g[1, :, 0, 0].numpy(), 0)
    np.testing.assert_allclose(g[1, :, 1, 0].numpy(), [0, -1, -2, -3])  # last y: jump to 0


@pytest.mark.parametrize("final, expected", [(4, [32, 16, 8, 4]), (10, [64, 32, 16, 10]),
                                             (1, [8, 4, 2, 1]),
                                             # nearest power of two by distance, not by log2:
                                             # 5.8 is nearer 4 than 8 (log2 rounding gave 8)
                                             (5.8, [32, 16, 8, 5.8]), (7, [64, 32, 16, 7]),
                                             (2.9, [16, 8, 4, 2.9]), (0.3, [2, 1, 0.5, 0.3])])
def test_schedule(final, expected):
    assert prior.schedule(final, 3, 3) == expected
    assert prior.schedule(final, 3, 1) == [final]


def test_joint_shrinkage():
    v = torch.zeros(2, 3, 1, 1, 1)
    v[0, 0] = 3.0
    v[1, 2] = 4.0                    # joint norm 5
    out = prior.shrink(v, 1.0)
    np.testing.assert_allclose(out[0, 0].item(), 3 * 4 / 5, rtol=1e-6)
    np.testing.assert_allclose(out[1, 2].item(), 4 * 4 / 5, rtol=1e-6)
    assert float(prior.shrink(v, 6.0).abs().max()) == 0.0
