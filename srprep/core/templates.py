"""Bundled templates: the MNI152 2009 T1 shipped with nilearn, on standard grids.

BABY-AI's reference grid is the MNI 1 mm box of 182x218x182 voxels (the FSL MNI152
grid); :func:`mni152` resamples nilearn's template (cubic B-spline) onto that box, in RAS+
voxel order, at any voxel size.  No download is involved.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: the MNI box of the FSL 1 mm grid: world corner (mm) and size (mm)
MNI_BOX_ORIGIN = (-90.0, -126.0, -72.0)
MNI_BOX_SHAPE_1MM = (182, 218, 182)


def nilearn_mni() -> tuple[np.ndarray, np.ndarray]:
    """nilearn's MNI152 2009 T1 (197x233x189, 1 mm, brain-masked) as float32 + affine."""
    import nibabel as nib
    from nilearn import datasets

    img = nib.load(Path(datasets.__file__).parent / "data"
                   / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    return np.asarray(img.dataobj, dtype=np.float32), img.affine.copy()


def mni152(voxel_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The MNI T1 on the 182x218x182 mm box at ``voxel_mm`` (1 mm: 182x218x182)."""
    from .resample import resample

    data, affine = nilearn_mni()
    shape = tuple(int(round(n / voxel_mm)) for n in MNI_BOX_SHAPE_1MM)
    grid = np.diag([voxel_mm] * 3 + [1.0])
    grid[:3, 3] = MNI_BOX_ORIGIN
    out = resample(data, affine, grid, shape, order=3)
    return np.clip(out, 0, None), grid


def write_mni152(path: str | os.PathLike, voxel_mm: float = 1.0) -> Path:
    """Write :func:`mni152` as NIfTI (atomic); reused if it exists."""
    from .nifti import save_image

    path = Path(path)
    if not path.is_file():
        data, affine = mni152(voxel_mm)
        save_image(data, affine, path, dtype=np.float32)
    return path
