"""UniRes on NIfTI files: co-registration, optional atlas-aligned grid, fit, writing.

These are the functions the Pydra tasks call; each output keeps the dtype and intensity
scaling of its channel's first input.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srprep.core.nifti import load_image, save_like

from .fit import InputImage, Settings, fit

#: margin (mm) around the MNI152 brain for the ``common_output`` box
ATLAS_MARGIN_MM = 8.0


def _load(in_files) -> list:
    images = [load_image(f, allow_4d=False) for f in in_files]
    return images


def coregister_files(in_files: list, *, fast: bool = True) -> list[list[list[float]]]:
    """Rigid transforms of every image to the first (identity for the first)."""
    from srprep.core.register import coregister

    images = _load(in_files)
    mats = coregister([(np.asarray(im.dataobj), im.affine) for im in images], fast=fast)
    return [m.tolist() for m in mats]


def atlas_image() -> tuple[np.ndarray, np.ndarray]:
    """MNI152 2009 T1 template shipped with nilearn (1 mm, brain-masked)."""
    import nibabel as nib
    from nilearn import datasets

    img = nib.load(Path(datasets.__file__).parent / "data"
                   / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def atlas_grid(voxel_size: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """CNN-friendly grid (dims 2^k or 3*2^k, <= 256) over the MNI brain + margin."""
    from srprep.core.meanspace import cnn_friendly_grid

    data, affine = atlas_image()
    idx = np.argwhere(data > 0)
    lo_mm = affine[:3, :3] @ idx.min(0) + affine[:3, 3] - ATLAS_MARGIN_MM
    hi_mm = affine[:3, :3] @ idx.max(0) + affine[:3, 3] + ATLAS_MARGIN_MM
    vs = float(voxel_size)
    shape = tuple(int(np.floor((h - lo) / vs)) + 1 for lo, h in zip(lo_mm, hi_mm))
    grid = np.diag([vs, vs, vs, 1.0])
    grid[:3, 3] = lo_mm
    return cnn_friendly_grid(grid, shape, 256)


def align_to_atlas(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Rigid matrix (atlas point -> image point) aligning an image to the MNI template."""
    from srprep.core.register import register
    import tempfile

    atlas, atlas_affine = atlas_image()
    with tempfile.TemporaryDirectory() as tmp:
        reg = register(data, affine, atlas, atlas_affine, Path(tmp) / "atlas.mat",
                       transform="rigid", fast=True, init="centre-of-mass")
    return reg.matrix


def unires_files(in_files: list, channels: list[int], out_files: list,
                 transforms: list | None = None, *, common_output: bool = False,
                 grid_like=None, **settings) -> dict:
    """Reconstruct NIfTI inputs; write one output per channel.

    Args:
        in_files: input images (3-D).
        channels: channel index of each input (repeats share an index).
        out_files: one path per channel.
        transforms: per input, the RAS+ matrix from :func:`coregister_files` (affines
            become ``T^-1 M``); None: trust the headers.
        common_output: align to the MNI152 template (rigid) and use the atlas box with
            CNN-friendly dims at ``voxel_size``.
        grid_like: NIfTI whose grid the outputs use (e.g. a ground truth's).
        settings: :class:`~srprep.models.unires.fit.Settings` fields.

    Returns:
        Summary of the fit (mode, iterations, noise, timings, grid).
    """
    opts = Settings(**settings)
    sources = _load(in_files)
    affines = [im.affine for im in sources]
    if transforms is not None:
        affines = [np.linalg.solve(np.asarray(t, float), a) for t, a in zip(transforms, affines)]
    grid = None
    if common_output:
        to_atlas = align_to_atlas(np.asarray(sources[0].dataobj), affines[0])
        affines = [np.linalg.solve(to_atlas, a) for a in affines]
        grid = atlas_grid(opts.voxel_size if opts.voxel_size else 1.0)
    if grid_like is not None:
        import nibabel as nib

        ref = nib.load(os.fspath(grid_like))
        grid = (ref.affine, ref.shape[:3])
    images = [InputImage(np.asarray(im.dataobj, dtype=np.float32), a, int(c))
              for im, a, c in zip(sources, affines, channels)]
    result = fit(images, opts, grid=grid)
    n_channels = result.images.shape[0]
    if len(out_files) != n_channels:
        raise ValueError(f"{n_channels} channels but {len(out_files)} output paths")
    for c, path in enumerate(out_files):
        template = sources[channels.index(c)]
        save_like(result.images[c], result.affine, os.fspath(path), template)
    summary = result.summary()
    summary.update(grid_shape=list(result.shape),
                   grid_voxel_size=[round(float(v), 4) for v in
                                    np.sqrt((result.affine[:3, :3] ** 2).sum(0))],
                   coregistration_mm=[_shift_mm(t) for t in (transforms or [])])
    return summary


def _shift_mm(t) -> float:
    """Largest displacement (mm) a transform applies inside a 200 mm box."""
    t = np.asarray(t, float)
    corners = np.array([[x, y, z, 1.0] for x in (-100, 100) for y in (-100, 100)
                        for z in (-100, 100)]).T
    return round(float(np.abs((t @ corners - corners)[:3]).max()), 3)
