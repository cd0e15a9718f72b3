"""Brain masks from the image itself (dipy's median Otsu)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def brain_mask(
    data: np.ndarray,
    *,
    volumes: Sequence[int] | None = None,
    median_radius: int = 2,
    numpass: int = 2,
    dilate: int = 1,
) -> np.ndarray:
    """Boolean brain mask by median filtering + Otsu threshold (dipy ``median_otsu``).

    Args:
        data: 3-D image or 4-D series (volumes last).
        volumes: for 4-D data, the volumes to average first (e.g. the b=0 volumes of a
            diffusion series); default all.
        median_radius, numpass: median filter radius (voxels) and passes.
        dilate: binary dilation iterations after hole filling (keeps the cortex rim).

    Returns:
        Boolean array of the spatial shape, the largest connected component with holes
        filled.
    """
    from dipy.segment.mask import median_otsu  # dipy's top level is lazy; keep it local

    if data.ndim == 4:
        idx = list(range(data.shape[3])) if volumes is None else list(volumes)
        if not idx:
            raise ValueError("no volumes selected for the mask")
        vol = np.mean(data[..., idx], axis=3)
    else:
        vol = np.asarray(data)
    vol = np.asarray(vol, dtype=np.float32)
    if not np.any(vol > 0):
        return np.zeros(vol.shape, dtype=bool)
    _, mask = median_otsu(vol, median_radius=median_radius, numpass=numpass)
    return _tidy(mask, dilate)


def _tidy(mask: np.ndarray, dilate: int) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    mask = ndimage.binary_fill_holes(mask)
    if dilate > 0:
        mask = ndimage.binary_dilation(mask, iterations=dilate)
    return mask.astype(bool)


def brain_mask_file(in_file, out_file, *, bval_file=None) -> float:
    """Write a uint8 brain mask for a 3-D image or a dMRI series (mean of its b=0
    volumes when ``bval_file`` is given).  Returns the mask volume in mL."""
    from .dwi import B0_THRESHOLD, _read_table
    from .nifti import load_image, save_image, voxel_sizes

    img = load_image(in_file)
    data = np.asarray(img.dataobj)
    volumes = None
    if bval_file is not None and data.ndim == 4:
        bvals = _read_table(bval_file, "bval").ravel()
        volumes = np.flatnonzero(bvals <= B0_THRESHOLD).tolist() or None
    mask = brain_mask(data, volumes=volumes)
    save_image(mask.astype(np.uint8), img.affine, out_file, dtype=np.uint8)
    return float(mask.sum() * np.prod(voxel_sizes(img.affine)) / 1000.0)
