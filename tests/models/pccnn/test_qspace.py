"""PCCNN q-space geometry: coordinates, farthest-point sampling, order-independent
chunks, prediction scales and the reference's 10³ tiling."""
import numpy as np
import pytest

from srprep.models.pccnn import qspace
from srprep.core.errors import InputError


def _dirs(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_qcoords_scale_by_actual_b():
    b = np.array([0, 1985, 3010.0])
    v = np.array([[0.3, 0, 0], [0, 2.0, 0], [0, 0, -1.0]])
    a = qspace.qcoords(b, v)
    np.testing.assert_allclose(a, [[0, 0, 0], [0, 1.985, 0], [0, 0, -3.01]], atol=1e-6)


def test_fps_order_spreads_points():
    axes = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.99, 0.14, 0], [0, 0.99, 0.14]])
    order = qspace.fps_order(axes, start=0)
    assert order[0] == 0 and sorted(order) == list(range(5))
    assert set(order[:3]) == {0, 1, 2}                         # the orthogonal ones first
    anti = qspace.fps_order(np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0]]), 0, antipodal=True)
    assert list(anti) == [0, 2, 1]                             # -x is x for dMRI


def test_target_chunks_depend_only_on_the_set():
    bvals = np.concatenate([np.zeros(2), np.full(23, 1000.0), np.full(7, 2000.0)])
    bvecs = np.concatenate([np.zeros((2, 3)), _dirs(23, 1), _dirs(7, 2)])
    chunks = qspace.target_chunks(bvals, bvecs)
    assert sorted(len(c) for c in chunks) == [7, 7, 8, 8]     # 23 -> 8+8+7, 7 -> 7
    assert sorted(np.concatenate(chunks)) == list(range(2, 32))
    assert all(len(set(bvals[c])) == 1 for c in chunks)        # one shell per chunk
    perm = np.random.default_rng(3).permutation(len(bvals))
    again = qspace.target_chunks(bvals[perm], bvecs[perm] * np.where(
        np.random.default_rng(4).random(len(bvals)) < 0.5, -1, 1)[:, None])   # flipped signs
    as_sets = lambda cs, p=None: sorted(tuple(sorted(p[c] if p is not None else c)) for c in cs)  # noqa: E731
    assert as_sets(again, perm) == as_sets(chunks)


def test_prediction_xmax_and_ratio_table():
    rng = np.random.default_rng(0)
    data = rng.random((6, 6, 6, 7)).astype(np.float32) * 100
    bvals = np.array([0, 1000, 1000, 1000, 2000, 2000, 2000.0])
    mask = np.ones((6, 6, 6), bool)
    ctx = np.arange(1, 4)                                       # only b=1000 as context
    xin, xout = qspace.prediction_xmax(data, bvals, mask, ctx, np.array([1000.0, 3000.0]))
    assert xin[1000] == pytest.approx(np.percentile(data[..., 1:4], 99))
    assert xout[1000] == xin[1000] and xout[3000] == pytest.approx(xin[1000] / 2.19)
    with pytest.raises(InputError, match="b=2500"):
        qspace.prediction_xmax(data, bvals, mask, ctx, np.array([2500.0]))


def test_reference_tiling_rule():
    assert qspace.tile_padding(23) == (4, 3) and qspace.tile_padding(20) == (0, 0)
    assert qspace.tile_padding(7) == (2, 1)
    mask = np.zeros((23, 20, 7), bool)
    mask[1, 1, 1] = True
    mask[15, 12, 5] = True
    pads, corners = qspace.tile_grid(mask.shape, mask)
    assert pads == [(4, 3), (0, 0), (2, 1)]
    assert corners.tolist() == [[0, 0, 0], [10, 10, 0]]         # C order, brain tiles only
    pos = qspace.patch_centroids(np.diag([2.0, 2.0, 2.0, 1]), mask.shape, mask, pads, corners)
    assert pos.shape == (2, 3) and np.all(pos > -1) and np.all(pos < 2)
