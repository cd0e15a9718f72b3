"""Mean-space output grids: UniRes' verified values (spec 8.2-8.3)."""
import numpy as np
import pytest

from srprep.models.unires.meanspace import cnn_friendly_grid, cnn_friendly_size, mean_space


def _a(sizes, origin=(0, 0, 0)):
    a = np.diag(list(sizes) + [1.0])
    a[:3, 3] = origin
    return a


@pytest.mark.parametrize("affines, shapes, dims, origin", [
    ([_a((1, 1, 1))], [(80, 96, 80)], (80, 96, 80), (0, 0, 0)),
    ([_a((1, 1, 4))], [(80, 96, 20)], (80, 96, 77), (0, 0, 3)),
    ([_a((1, 1, 4))] * 2, [(80, 96, 20)] * 2, (80, 96, 77), (0, 0, 3)),
    ([_a((4, 1, 1)), _a((1, 4, 1)), _a((1, 1, 4))], [(20, 96, 80), (80, 24, 80), (80, 96, 20)],
     (81, 97, 81), (-0.4126, -0.4126, -0.4126)),
    ([_a((2, 2, 2), (-40, -48, -40))], [(40, 48, 40)], (79, 95, 79), (-39, -47, -39)),
])
def test_unires_reference_grids(affines, shapes, dims, origin):
    affine, shape = mean_space(affines, shapes, 1.0)
    assert shape == dims
    np.testing.assert_allclose(affine[:3, 3], origin, atol=1e-4)
    np.testing.assert_allclose(affine[:3, :3], np.eye(3), atol=1e-9)


def test_flipped_sagittal_input_gives_ras_grid():
    a = np.zeros((4, 4))
    a[1, 0], a[2, 1], a[0, 2], a[3, 3] = -1, -1, -4, 1   # voxel axes -> -y, -z, -x
    affine, shape = mean_space([a], [(200, 180, 40)], 1.0)
    assert shape == (157, 200, 180)
    np.testing.assert_allclose(affine[:3, :3], np.eye(3), atol=1e-9)


@pytest.mark.parametrize("d, expected", [(161, 192), (214, 256), (147, 192), (242, 256),
                                         (201, 256), (267, 256), (183, 192), (96, 96), (97, 128)])
def test_cnn_friendly_sizes(d, expected):
    assert cnn_friendly_size(d) == expected


def test_cnn_friendly_grid_recentres():
    affine, shape = cnn_friendly_grid(np.eye(4), (161, 214, 147))
    assert shape == (192, 256, 192)
    np.testing.assert_allclose(affine[:3, 3], [-16, -21, -22])  # round half to even
