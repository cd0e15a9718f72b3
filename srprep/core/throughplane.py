"""Geometry and intensity helpers for single-axis (through-plane) super-resolution.

A generator that upsamples ``f``x along one axis turns every low-resolution voxel into
``f`` sub-voxels.  :func:`sr_grids` runs it on the image's *own* grid: the model grid is
the acquired one (nothing is resampled before the network, so no acquired sample is
discarded or blurred) and the output grid its ``f`` sub-voxels per slice (spacing
thickness / f along the slice axis).  The result is resampled once to the requested voxel
size afterwards; when that voxel equals the sub-voxel spacing and the in-plane voxel,
nothing is resampled at all.  :func:`box_downsample` is the matching forward model (a
slice of thickness ``f·r`` is the mean of its ``f`` sub-slices), used for training pairs.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .nifti import voxel_sizes
from .resample import grid_for_voxel_size


def thick_axis(affine: np.ndarray, *, min_ratio: float = 1.2) -> int:
    """The voxel axis with the largest spacing; raises ``ValueError`` if the image is
    (nearly) isotropic, so that no thick-slice axis can be told from its header."""
    zooms = voxel_sizes(affine)
    axis = int(np.argmax(zooms))
    inplane = np.delete(zooms, axis)
    if zooms[axis] < min_ratio * inplane.max():
        raise ValueError(f"no thick-slice axis: voxel size {tuple(np.round(zooms, 3))} mm is "
                         f"(nearly) isotropic")
    return axis


def inplane_resolution(affine: np.ndarray, axis: int) -> float:
    """Finest voxel size (mm) across the thick-slice axis: the default output voxel."""
    return float(np.delete(voxel_sizes(affine), axis).min())


@dataclass
class SRGrids:
    """Model (low-resolution) and output grids of a through-plane SR run."""

    lr_affine: np.ndarray
    lr_shape: tuple[int, int, int]
    hr_affine: np.ndarray        # the generator's output grid (lr_shape with axis × f)
    hr_shape: tuple[int, int, int]
    axis: int                    # the model grid's thick axis
    factor: int

    def to_dict(self) -> dict:
        d = asdict(self)
        d["lr_affine"] = np.asarray(self.lr_affine).tolist()
        d["hr_affine"] = np.asarray(self.hr_affine).tolist()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SRGrids:
        return cls(np.asarray(d["lr_affine"], float), tuple(d["lr_shape"]),
                   np.asarray(d["hr_affine"], float), tuple(d["hr_shape"]), int(d["axis"]),
                   int(d["factor"]))


def lr_grid_for(hr_affine: np.ndarray, hr_shape, axis: int, factor: int) -> SRGrids:
    """Model grid whose ``factor`` sub-voxels along ``axis`` tile ``hr_shape`` (the
    last group may overhang the output grid; :func:`crop_to` removes it)."""
    hr_shape = tuple(int(s) for s in hr_shape)
    n_lr = -(-hr_shape[axis] // factor)
    scale = np.eye(4)
    scale[axis, axis] = factor
    scale[axis, 3] = (factor - 1) / 2          # centre of the first group of sub-voxels
    lr_shape = list(hr_shape)
    lr_shape[axis] = n_lr
    full = list(hr_shape)
    full[axis] = n_lr * factor
    return SRGrids(np.asarray(hr_affine, float) @ scale, tuple(lr_shape),
                   np.asarray(hr_affine, float), tuple(full), int(axis), int(factor))


def sr_grids(affine: np.ndarray, shape, factor: int, axis: int | None = None) -> SRGrids:
    """Grids for super-resolving an image on its own voxel axes.

    The model grid is the image's grid itself; the output grid splits every slice along
    the thick axis (read from the header unless given) into ``factor`` sub-slices.
    Why not a model grid at ``factor`` x the output voxel: when the slice thickness is
    not ``factor`` x the in-plane voxel (4 mm slices, 2 mm in-plane, x3), such a grid
    resamples the acquired slices (to 6 mm) before the network and throws data away.
    """
    axis = thick_axis(affine) if axis is None else int(axis)
    shape = tuple(int(n) for n in shape[:3])
    split = np.eye(4)
    split[axis, axis] = 1.0 / factor
    split[axis, 3] = -(factor - 1) / (2.0 * factor)   # sub-slice k of slice j: j - 1/2 + (k + 1/2)/f
    hr_shape = list(shape)
    hr_shape[axis] = shape[axis] * factor
    return SRGrids(np.asarray(affine, float), shape, np.asarray(affine, float) @ split,
                   tuple(hr_shape), axis, int(factor))


def template_grids(template_affine: np.ndarray, template_shape, slice_normal: np.ndarray,
                   factor: int, resolution: float, thickness: float | None = None) -> SRGrids:
    """Grids in a template's space: the template's field of view and axes, with the thick
    axis the template axis closest to the (template-space) slice normal of the image.
    In-plane the voxel is ``resolution`` mm; along the thick axis the model grid samples
    every ``thickness`` mm (the acquired spacing, so no slice is skipped) and the output
    every ``thickness / factor`` (``factor x resolution`` when no thickness is given)."""
    dirs = template_affine[:3, :3] / np.linalg.norm(template_affine[:3, :3], axis=0)
    n = np.asarray(slice_normal, float) / np.linalg.norm(slice_normal)
    axis = int(np.argmax(np.abs(dirs.T @ n)))
    voxel = [float(resolution)] * 3
    if thickness is not None:
        voxel[axis] = float(thickness) / factor
    hr_affine, hr_shape = grid_for_voxel_size(template_affine, template_shape, voxel)
    return lr_grid_for(hr_affine, hr_shape, axis, factor)


def slice_normal(affine: np.ndarray, axis: int) -> np.ndarray:
    """World direction of voxel axis ``axis`` (unit vector)."""
    v = np.asarray(affine, float)[:3, axis]
    return v / np.linalg.norm(v)


def crop_to(data: np.ndarray, shape) -> np.ndarray:
    """Drop the overhanging sub-voxels of the last low-resolution slice."""
    return data[tuple(slice(0, int(s)) for s in shape)]


def box_downsample(data: np.ndarray, axis: int, factor: int) -> np.ndarray:
    """Thick slices as means of ``factor`` consecutive thin slices (box profile; the
    trailing incomplete group is dropped)."""
    data = np.asarray(data, dtype=np.float32)
    n = data.shape[axis] // factor
    moved = np.moveaxis(data, axis, 0)[: n * factor]
    out = moved.reshape(n, factor, *moved.shape[1:]).mean(axis=1)
    return np.moveaxis(out, 0, axis)


@dataclass(frozen=True)
class AffineScale:
    """``x' = (x - offset) * gain``: z-score then min-max to [0, top] in one affine map
    (the EasySR inference recipe), exactly invertible."""

    offset: float
    gain: float

    def apply(self, data: np.ndarray) -> np.ndarray:
        return ((np.asarray(data, np.float32) - np.float32(self.offset)) * np.float32(self.gain))

    def invert(self, data: np.ndarray) -> np.ndarray:
        return np.asarray(data, np.float32) / np.float32(self.gain) + np.float32(self.offset)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AffineScale:
        return cls(float(d["offset"]), float(d["gain"]))


def zscore_minmax(data: np.ndarray, top: float = 255.0) -> AffineScale:
    """Parameters mapping ``data`` to [0, top] after a whole-volume z-score.

    z-scoring before a min-max rescale cancels out, so this is min-max to [0, top];
    it is kept in this form to document the reference's recipe.  A constant volume
    maps to 0.
    """
    data = np.asarray(data, dtype=np.float64)
    lo, hi = float(data.min()), float(data.max())
    return AffineScale(lo, float(top) / (hi - lo) if hi > lo else 1.0)


def prepare_file(in_file, out_file, *, factor: int, resolution: float | None = None,
                 template=None, transform=None, order: int = 3) -> dict:
    """Resample an image onto its model grid and normalise it for the generator.

    Without a template the model grid follows the image's own voxel axes; with
    ``template`` and ``transform`` (rigid, template point -> image point, RAS) it
    follows the template's axes over the template's field of view.

    Returns the JSON-able description :func:`restore_file` needs (grids, scale).
    """
    from .nifti import load_image, save_image
    from .register import read_ras_matrix
    from .resample import resample

    img = load_image(in_file, allow_4d=False)
    data, affine = np.asarray(img.dataobj, dtype=np.float32), img.affine
    axis = thick_axis(affine)
    r = inplane_resolution(affine, axis) if resolution is None else float(resolution)
    if template is not None:
        if transform is None:
            raise ValueError("a template needs the registration transform")
        matrix = read_ras_matrix(transform)
        tpl = load_image(template, allow_4d=False)
        normal = np.linalg.inv(matrix)[:3, :3] @ slice_normal(affine, axis)
        grids = template_grids(tpl.affine, tpl.shape, normal, factor, r,
                               thickness=float(voxel_sizes(affine)[axis]))
        lr = resample(data, affine, matrix @ grids.lr_affine, grids.lr_shape, order=order,
                      mode="constant", cval=float(data.min()))
    else:
        matrix = None
        grids = sr_grids(affine, img.shape, factor, axis)
        lr = data                      # the acquired samples themselves, not resampled
    scale = zscore_minmax(lr)
    save_image(scale.apply(lr), grids.lr_affine, out_file, dtype=np.float32)
    out_affine, out_shape = grid_for_voxel_size(affine, img.shape, r)
    return {"grids": grids.to_dict(), "scale": scale.to_dict(), "resolution": r,
            "thick_axis": axis, "thickness_mm": float(voxel_sizes(affine)[axis]),
            "factor": int(factor), "template": None if template is None else str(template),
            "transform": None if matrix is None else matrix.tolist(),
            "out_affine": out_affine.tolist(), "out_shape": list(out_shape)}


def restore_file(sr_file, like_file, out_file, info: dict, *, order: int = 3) -> dict:
    """Bring a generator output back: inverse intensity map, then onto the image's
    field of view at the output resolution (through the inverse registration when a
    template was used), written in the source image's data type."""
    from .nifti import load_image, save_like
    from .resample import resample

    sr = load_image(sr_file, allow_4d=False)
    like = load_image(like_file, allow_4d=False)
    grids = SRGrids.from_dict(info["grids"])
    data = AffineScale.from_dict(info["scale"]).invert(np.asarray(sr.dataobj, np.float32))
    out_affine = np.asarray(info["out_affine"], float)
    out_shape = tuple(info["out_shape"])
    if info.get("transform") is not None:
        inv = np.linalg.inv(np.asarray(info["transform"], float))
        lo = float(np.asarray(like.dataobj).min())
        out = resample(data, grids.hr_affine, inv @ out_affine, out_shape, order=order,
                       mode="constant", cval=lo)
    elif np.allclose(grids.hr_affine, out_affine, atol=1e-4) and \
            all(h >= o for h, o in zip(grids.hr_shape, out_shape)):
        out = crop_to(data, out_shape)          # the sub-slices are the output voxels
    else:   # sub-slice spacing or in-plane voxel differ from the requested voxel size
        out = resample(data, grids.hr_affine, out_affine, out_shape, order=order,
                       mode="nearest")
    save_like(out, out_affine, out_file, like)
    zooms = voxel_sizes(out_affine)
    return {"shape": list(out.shape), "voxel_mm": [round(float(z), 4) for z in zooms]}
