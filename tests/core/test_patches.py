import numpy as np
import pytest

from srprep.core.patches import extract, grid_corners, pad_to_multiple, random_corners


def test_babyai_tiling_of_padded_volume():
    corners = grid_corners((192, 224, 192), (32, 32, 32), (16, 16, 16))
    assert len(corners) == 11 * 13 * 11 == 1573
    assert corners.max(0).tolist() == [160, 192, 160]


def test_grid_covers_every_voxel_with_flush_last_patch():
    corners = grid_corners((50, 40, 33), (32, 32, 32), (20, 20, 20))
    cover = np.zeros((50, 40, 33), int)
    for c in corners:
        cover[c[0]:c[0] + 32, c[1]:c[1] + 32, c[2]:c[2] + 32] += 1
    assert cover.min() >= 1
    assert sorted({int(c[0]) for c in corners}) == [0, 18]


def test_random_corners_are_seeded_and_foreground_biased():
    fg = np.zeros((64, 64, 64), bool)
    fg[40:60, 40:60, 40:60] = True
    a = random_corners(fg.shape, (16,) * 3, 200, np.random.default_rng(3), foreground=fg)
    b = random_corners(fg.shape, (16,) * 3, 200, np.random.default_rng(3), foreground=fg)
    np.testing.assert_array_equal(a, b)
    centres = a + 8
    inside = fg[tuple(np.clip(centres, 0, 63).T)]
    assert inside.mean() > 0.8
    assert a.min() >= 0 and a.max() <= 48


def test_pad_to_multiple_matches_babyai_and_keeps_world_coordinates():
    data = np.random.default_rng(0).random((182, 218, 182)).astype(np.float32)
    affine = np.diag([1.0, 1, 1, 1])
    affine[:3, 3] = [-90, -126, -72]
    padded, new_affine, crop = pad_to_multiple(data, affine)
    assert padded.shape == (192, 224, 192)
    assert [(c.start, padded.shape[i] - c.stop) for i, c in enumerate(crop)] == [(5, 5), (3, 3), (5, 5)]
    np.testing.assert_array_equal(padded[crop], data)
    # voxel (0,0,0) of the input is at the same world point in both grids
    np.testing.assert_allclose(new_affine @ [5, 3, 5, 1], affine @ [0, 0, 0, 1])


def test_extract_copies_float32():
    vol = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    patch = extract(vol, (1, 2, 3), (4, 4, 4))
    assert patch.dtype == np.float32 and patch[0, 0, 0] == vol[1, 2, 3]
    with pytest.raises(ValueError):
        grid_corners((10, 10, 10), (32, 32, 32), (16, 16, 16))
