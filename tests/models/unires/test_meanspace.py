"""Mean-space output grids: UniRes' verified values (spec 8.2-8.3)."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

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


def _oriented(axes, sizes, origin):
    """Affine whose voxel axes point along the signed world axes in ``axes`` (columns)."""
    a = np.eye(4)
    a[:3, :3] = np.asarray(axes, float) @ np.diag(sizes)
    a[:3, 3] = origin
    return a


_LAS, _LPS = np.diag([-1.0, 1, 1]), np.diag([-1.0, -1, 1])
_PSR = np.array([[0, 0, 1], [-1, 0, 0], [0, 1, 0.0]])     # i -> P, j -> S, k -> R
_ASL = np.array([[0, 0, -1], [1, 0, 0], [0, 1, 0.0]])    # i -> A, j -> S, k -> L
_OBL_LAS = Rotation.from_euler("xyz", [12, -7, 20], degrees=True).as_matrix() @ _LAS
_OBL_LPS = Rotation.from_euler("xyz", [-9, 4, 15], degrees=True).as_matrix() @ _LPS


# Output grids at 1 mm computed with the reference implementation itself (nitorch
# `_mean_space`, as UniRes calls it) for these inputs.  Before the flip fix srprep gave
# 231 instead of 232 voxels along x (origin 0.5 mm off) for the LAS/LPS inputs and 1 mm
# off for PSR/ASL.
@pytest.mark.parametrize("inputs, dims, origin", [
    ([(_LAS, (0.9, 0.9, 3.3), (115, -120, -60), (256, 256, 40))],
     (232, 231, 130), (-117.0, -120.5, -57.7)),
    ([(_LPS, (0.9, 0.9, 3.3), (115, 110, -60), (256, 256, 40))],
     (232, 232, 130), (-117.0, -122.0, -57.7)),
    ([(_PSR, (1.2, 0.7, 0.7), (-80.3, 100.2, -90.15), (150, 259, 255))],
     (180, 181, 182), (-81.1, -81.4, -90.75)),
    ([(_ASL, (3.3, 0.85, 0.85), (-100, -70, 80), (48, 240, 200))],
     (171, 157, 205), (-271.3, -68.1, 79.85)),
    ([(_OBL_LAS, (0.9, 0.9, 3.3), (110, -118, -55), (256, 256, 40))],
     (232, 231, 130), (-106.2986, -197.7556, -81.1439)),
    ([(_OBL_LPS, (1.1, 1.1, 4.4), (120, 130, -50), (200, 210, 32))],
     (221, 232, 139), (-31.6876, -148.2685, 4.363)),
    ([(_LAS, (0.9, 0.9, 3.3), (115, -120, -60), (256, 256, 40)),
      (np.eye(3), (1.1, 1.1, 1.1), (-90, -125, -70), (164, 200, 150)),
      (_PSR, (3.5, 0.8, 0.8), (-80, 100, -90), (46, 220, 200))],
     (231, 236, 186), (-116.7443, -125.5724, -90.8967)),
])
def test_matches_the_reference_for_flipped_and_permuted_axes(inputs, dims, origin):
    affines = [_oriented(axes, sizes, o) for axes, sizes, o, _ in inputs]
    affine, shape = mean_space(affines, [s for *_, s in inputs], 1.0)
    assert shape == dims
    np.testing.assert_allclose(affine[:3, 3], origin, atol=1e-3)


def test_oblique_mean_space_keeps_the_inputs_rotation():
    a = _oriented(_OBL_LPS, (1.1, 1.1, 4.4), (120, 130, -50))
    affine, _ = mean_space([a], [(200, 210, 32)], 1.0)
    # reference: the LPS input reoriented to RAS+, columns rescaled to 1 mm
    np.testing.assert_allclose(affine[:3, :3], [[0.963573, -0.266173, 0.026062],
                                                [0.258189, 0.951209, 0.168936],
                                                [-0.069756, -0.156053, 0.985282]], atol=1e-6)
