"""Bring a T1w/T2w pair into atlas space for learned through-plane methods.

Steps shared by training-data preparation and inference: rigid registration of each image
to the atlas (antspyx), cubic B-spline resampling onto the atlas grid, zero padding to a
multiple of 32 and robust [0, 1] scaling (1st/99th percentiles of the positive voxels).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .nifti import load_image
from .normalise import percentile_scale
from .patches import pad_to_multiple
from .register import apply_transform, register


def to_atlas(image_file, atlas_file, *, transform_out=None, fast: bool = True
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigidly register an image to the atlas and resample it there (cubic).

    Returns:
        (data on the atlas grid, atlas affine, RAS matrix atlas point -> image point).
    """
    img = load_image(image_file, allow_4d=False)
    atlas = load_image(atlas_file, allow_4d=False)
    data = np.asarray(img.dataobj)
    out = transform_out or Path(tempfile.mkdtemp()) / "to_atlas.mat"
    reg = register(data, img.affine, np.asarray(atlas.dataobj), atlas.affine, out,
                   transform="rigid", fast=fast, init="centre-of-mass")
    resampled = apply_transform(data, img.affine, reg.matrix, atlas.affine, atlas.shape,
                                order=3)
    return np.clip(resampled, float(data.min()), float(data.max())), atlas.affine, reg.matrix


def prepare_training_pair(t1w, t2w, atlas, out_dir: str | os.PathLike, *,
                          register_images: bool = True) -> dict:
    """Save padded, normalised T1w (guide) and T2w (target) ``.npy`` volumes in atlas space.

    Returns:
        Paths, padded shape and voxel size.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    volumes = {}
    atlas_img = load_image(atlas, allow_4d=False)
    for name, path in (("guide", t1w), ("target", t2w)):
        if register_images:
            data, affine, _ = to_atlas(path, atlas)
        else:
            from .resample import resample
            img = load_image(path, allow_4d=False)
            data = resample(np.asarray(img.dataobj), img.affine, atlas_img.affine,
                            atlas_img.shape, order=3)
            affine = atlas_img.affine
        padded, _, crop = pad_to_multiple(data, affine, 32)
        scaled, params = percentile_scale(padded)
        target = out / f"{name}.npy"
        np.save(target, np.ascontiguousarray(scaled, dtype=np.float32))
        volumes[name] = str(target)
        volumes[f"{name}_scale"] = params.to_dict()
        if name == "target":   # BABY-AI's reference synthesis starts from the unscaled volume
            np.save(out / "target_raw.npy", np.ascontiguousarray(data, dtype=np.float32))
            volumes["target_raw"] = str(out / "target_raw.npy")
            volumes["pad"] = [[c.start, n - c.stop] for c, n in zip(crop, padded.shape)]
    vs = float(np.sqrt((atlas_img.affine[:3, :3] ** 2).sum(0)).mean())
    volumes.update(shape=list(np.load(volumes["target"], mmap_mode="r").shape), voxel_mm=vs)
    return volumes


def prepare_volume(in_file, out_dir: str | os.PathLike, *, resolution: float | None = None,
                   template=None) -> dict:
    """An isotropic training volume as raw-intensity float32 ``volume.npy`` (+ ``.json``
    with its voxel size): optionally rigidly registered to ``template``, then resampled
    (cubic) to ``resolution`` mm (default: the image's finest voxel size)."""
    from .nifti import voxel_sizes
    from .resample import grid_for_voxel_size, resample

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    img = load_image(in_file, allow_4d=False)
    r = round(float(resolution) if resolution else float(voxel_sizes(img.affine).min()), 6)
    if template is not None:
        tpl = load_image(template, allow_4d=False)
        data = np.asarray(img.dataobj)
        reg = register(data, img.affine, np.asarray(tpl.dataobj), tpl.affine,
                       out / "to_template.mat", transform="rigid", fast=True,
                       init="centre-of-mass")
        grid, shape = grid_for_voxel_size(tpl.affine, tpl.shape, r)
        vol = apply_transform(data, img.affine, reg.matrix, grid, shape, order=3)
        vol = np.clip(vol, float(data.min()), float(data.max()))
    else:
        grid, shape = grid_for_voxel_size(img.affine, img.shape, r)
        vol = resample(np.asarray(img.dataobj), img.affine, grid, shape, order=3, mode="nearest")
    target = out / "volume.npy"
    np.save(target, np.ascontiguousarray(vol, dtype=np.float32))
    (out / "volume.json").write_text(f'{{"voxel_mm": {r}}}\n')
    return {"volume": str(target), "voxel_mm": r, "shape": list(vol.shape)}
