"""Patch coordinates for training and inference of through-plane networks.

Volumes are (X, Y, Z) arrays (memory-mapped ``.npy`` for training); patches are given by
their corner index.  Everything random takes an explicit ``numpy.random.Generator`` so
that a seed reproduces the same patches.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def grid_corners(shape: Sequence[int], patch: Sequence[int], stride: Sequence[int]
                 ) -> np.ndarray:
    """Corners of a regular patch grid that covers the whole volume.

    Along each axis the corners are ``0, s, 2s, ...`` and, if the last patch would not
    reach the end, one more patch flush with the end (every voxel is covered).

    Returns:
        (N, 3) int array.
    """
    axes = []
    for n, p, s in zip(shape, patch, stride):
        if p > n:
            raise ValueError(f"patch {p} larger than the volume ({n})")
        starts = list(range(0, n - p + 1, s))
        if starts[-1] != n - p:
            starts.append(n - p)
        axes.append(starts)
    return np.array(np.meshgrid(*axes, indexing="ij")).reshape(3, -1).T


def random_corners(shape: Sequence[int], patch: Sequence[int], n: int,
                   rng: np.random.Generator, *, foreground: np.ndarray | None = None,
                   foreground_fraction: float = 0.9) -> np.ndarray:
    """Random patch corners; a fraction of them centred on foreground voxels.

    Args:
        foreground: boolean mask (same shape); patches centred on it are drawn with
            probability ``foreground_fraction``, uniform positions otherwise.

    Returns:
        (n, 3) int array of valid corners.
    """
    shape, patch = np.asarray(shape), np.asarray(patch)
    high = shape - patch
    if np.any(high < 0):
        raise ValueError(f"patch {tuple(patch)} larger than the volume {tuple(shape)}")
    corners = np.stack([rng.integers(0, h + 1, size=n) for h in high], axis=1)
    if foreground is not None and foreground.any():
        fg = np.argwhere(foreground)
        pick = rng.random(n) < foreground_fraction
        centres = fg[rng.integers(0, len(fg), size=int(pick.sum()))]
        corners[pick] = np.clip(centres - patch // 2, 0, high)
    return corners


def extract(volume: np.ndarray, corner: Sequence[int], patch: Sequence[int]) -> np.ndarray:
    """Copy one patch out of a (possibly memory-mapped) volume as float32."""
    sl = tuple(slice(int(c), int(c) + int(p)) for c, p in zip(corner, patch))
    return np.array(volume[sl], dtype=np.float32)


def pad_to_multiple(data: np.ndarray, affine: np.ndarray, multiple: int = 32
                    ) -> tuple[np.ndarray, np.ndarray, tuple[slice, ...]]:
    """Zero-pad each spatial axis to a multiple of ``multiple`` (split floor/ceil as
    BABY-AI: 182x218x182 -> 192x224x192 with (5,5), (3,3), (5,5)); the affine is shifted
    so world coordinates are preserved.

    Returns:
        (padded, padded affine, slices that crop back to the input).
    """
    shape = np.asarray(data.shape[:3])
    target = np.ceil(shape / multiple).astype(int) * multiple
    before = (target - shape) // 2
    after = target - shape - before
    pad = [(int(b), int(a)) for b, a in zip(before, after)] + [(0, 0)] * (data.ndim - 3)
    padded = np.pad(data, pad)
    shift = np.eye(4)
    shift[:3, 3] = -before
    crop = tuple(slice(int(b), int(b) + int(n)) for b, n in zip(before, shape))
    return padded, np.asarray(affine, float) @ shift, crop
