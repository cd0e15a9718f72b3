"""Noise-free multi-contrast head phantoms from data nilearn ships (MNI152 2009 1 mm T1
and GM/WM maps): the ground truth of the demo dataset, the UniRes phantoms and the tests.

T2w- and PDw-like contrasts are tissue mixtures (CSF = brain - GM - WM) with the
intensities in :data:`CONTRASTS`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

#: tissue intensities (CSF, GM, WM) of the synthetic contrasts
CONTRASTS = {"T2w": (2000.0, 1100.0, 800.0), "PDw": (1400.0, 1200.0, 1000.0)}

def _mni_arrays() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """T1/GM/WM maps cropped to the head with a 6-voxel margin, and their affine."""
    import nibabel as nib
    from nilearn import datasets

    folder = Path(datasets.__file__).parent / "data"
    maps, affine = {}, None
    for key in ("t1", "gm", "wm"):
        img = nib.load(folder / f"mni_icbm152_{key}_tal_nlin_sym_09a_converted.nii.gz")
        maps[key] = np.asarray(img.dataobj, dtype=np.float32) / 255.0
        affine = img.affine
    idx = np.argwhere(maps["t1"] > 0)
    lo = np.maximum(idx.min(0) - 6, 0)
    hi = np.minimum(idx.max(0) + 7, maps["t1"].shape)
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    return {k: v[crop] for k, v in maps.items()}, shifted


def truth_images(resolution: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Noise-free T1w/T2w/PDw in MNI space at ``resolution`` mm."""
    from scipy import ndimage

    from srprep.core.resample import reslice

    maps, affine = _mni_arrays()
    brain = ndimage.binary_fill_holes(maps["t1"] > 0.02)
    gm, wm = maps["gm"], maps["wm"]
    csf = np.clip(brain - gm - wm, 0.0, 1.0)
    images = {"T1w": 1100.0 * maps["t1"]}
    for suffix, (c, g, w) in CONTRASTS.items():
        images[suffix] = c * csf + g * gm + w * wm
    if abs(resolution - 1.0) > 1e-6:
        out = {}
        for k, v in images.items():
            out[k], new_affine = reslice(v, affine, resolution, order=3)
        images, affine = {k: np.clip(v, 0, None) for k, v in out.items()}, new_affine
    return images, affine
