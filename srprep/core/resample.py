"""Reslicing to a voxel size and resampling onto a reference grid.

Interpolation is linear (``order=1``) or cubic B-spline (``order=3``, with the exact
spline prefilter) via :func:`scipy.ndimage.affine_transform`.  All grids are described
by a 4x4 voxel-to-world affine (0-based voxel indices, mm) and a shape.
"""
from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from .nifti import voxel_sizes

ORDERS = {"nearest": 0, "linear": 1, "cubic": 3}


def as_order(interpolation: str | int) -> int:
    """Spline order for a name (``nearest``, ``linear``, ``cubic``) or an int 0-5."""
    if isinstance(interpolation, str):
        try:
            return ORDERS[interpolation]
        except KeyError:
            raise ValueError(f"unknown interpolation {interpolation!r}; use {sorted(ORDERS)}") from None
    if not 0 <= int(interpolation) <= 5:
        raise ValueError(f"spline order must be 0..5, got {interpolation}")
    return int(interpolation)


def grid_for_voxel_size(
    affine: np.ndarray, shape: Sequence[int], voxel_size: float | Sequence[float]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Grid with ``voxel_size`` (mm) covering the same field of view as the input grid.

    The field of view is the voxels' extent (edges, not centres): a 1x1x4 mm image
    with 20 slices spans 80 mm along z, so at 1 mm it gets 80 slices whose outer edges
    coincide with the input's.  When the extent is not a multiple of the new voxel size,
    the new grid is centred on the old one.  Axis directions (and obliquity) are kept.
    """
    affine = np.asarray(affine, dtype=float)
    shape = np.asarray(shape[:3], dtype=float)
    new_vs = np.broadcast_to(np.asarray(voxel_size, dtype=float), (3,))
    if np.any(new_vs <= 0):
        raise ValueError(f"voxel size must be positive, got {tuple(new_vs)}")
    old_vs = voxel_sizes(affine)
    new_shape = np.maximum(1, np.round(shape * old_vs / new_vs)).astype(int)
    ratio = new_vs / old_vs  # new voxel step in old voxel units
    centre_old = (shape - 1) / 2
    centre_new = (new_shape - 1) / 2
    index_map = np.eye(4)
    index_map[:3, :3] = np.diag(ratio)
    index_map[:3, 3] = centre_old - centre_new * ratio
    return affine @ index_map, tuple(int(s) for s in new_shape)


def resample(
    data: np.ndarray,
    affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: Sequence[int],
    *,
    order: int | str = 1,
    mode: str = "constant",
    cval: float = 0.0,
    dtype: type = np.float32,
) -> np.ndarray:
    """Pull ``data`` (3-D, or 4-D with volumes last) onto a target grid.

    Args:
        data: source voxels, shape (X, Y, Z) or (X, Y, Z, T).
        affine: source voxel-to-world matrix.
        target_affine, target_shape: the grid to sample.
        order: 0, 1 (linear), 3 (cubic B-spline) or a name from :data:`ORDERS`.
        mode: what lies beyond the source grid (``constant`` = ``cval``; ``nearest`` =
            edge value, right for the half-voxel rim when reslicing one image's own
            field of view).
        dtype: output dtype.

    Returns:
        Array of shape ``target_shape`` (+ the volume axis for 4-D input).
    """
    order = as_order(order)
    index_map = np.linalg.solve(np.asarray(affine, float), np.asarray(target_affine, float))
    matrix, offset = index_map[:3, :3], index_map[:3, 3]
    target_shape = tuple(int(s) for s in target_shape[:3])
    if data.ndim == 4:
        out = np.empty(target_shape + (data.shape[3],), dtype=dtype)
        for t in range(data.shape[3]):
            out[..., t] = resample(data[..., t], affine, target_affine, target_shape,
                                   order=order, mode=mode, cval=cval, dtype=dtype)
        return out
    if _is_axis_aligned(matrix) and not (mode == "constant" and cval != 0):
        return _resample_separable(data, np.diag(matrix), offset, target_shape,
                                   order=order, mode=mode).astype(dtype, copy=False)
    src = np.asarray(data, dtype=np.float64 if order > 1 else np.float32)
    if order > 1:
        # Prefilter once with a boundary rule consistent with `mode`.
        src = ndimage.spline_filter(src, order=order, mode=_filter_mode(mode))
    out = ndimage.affine_transform(
        src, matrix, offset=offset, output_shape=target_shape, order=order,
        mode=mode, cval=cval, prefilter=False,
    )
    return out.astype(dtype, copy=False)


def _is_axis_aligned(matrix: np.ndarray) -> bool:
    """True when the voxel-index map scales/shifts each axis on its own (no rotation,
    shear or permutation), so the tensor-product spline can be evaluated axis by axis."""
    return bool(np.all(np.abs(matrix - np.diag(np.diag(matrix))) < 1e-9))


def _resample_separable(data: np.ndarray, scales: np.ndarray, offsets: np.ndarray,
                        target_shape: tuple[int, ...], *, order: int, mode: str) -> np.ndarray:
    """:func:`resample` for an axis-aligned index map, one 1-D matrix per changed axis.

    Why: a 3-D spline prefilter + evaluation costs the same whether one axis changes or
    three; resampling a thick-slice stack onto its isotropic grid (every training draw of
    BABY-AI, every cubic baseline) changes only the slice axis.  Each 1-D operator is
    built by running the same scipy spline code on unit vectors, so the values equal the
    3-D path's (to rounding; ``tests/core/test_resample.py`` compares them)."""
    out = np.asarray(data, dtype=np.float64 if order > 1 else np.float32)
    # the axis that shrinks the array most goes first: a slab or a downsampling costs
    # what its output needs, not three passes over the whole source
    for axis in sorted(range(3), key=lambda a: target_shape[a] / max(out.shape[a], 1)):
        n_in, n_out = out.shape[axis], target_shape[axis]
        scale, shift = float(scales[axis]), float(offsets[axis])
        if n_in == n_out and abs(scale - 1) < 1e-12 and abs(shift) < 1e-12:
            continue                                         # identity along this axis
        weights = _interpolation_matrix(n_in, n_out, scale, shift, order, mode)
        moved = np.tensordot(weights.astype(out.dtype), np.moveaxis(out, axis, 0), axes=(1, 0))
        out = np.moveaxis(moved, 0, axis)
    return np.ascontiguousarray(out)


def _interpolation_matrix(n_in: int, n_out: int, scale: float, shift: float, order: int,
                          mode: str) -> np.ndarray:
    """(n_out, n_in) matrix of 1-D spline interpolation at ``scale * i + shift``.

    Column j is the interpolation of the unit vector e_j, each evaluated on its own: a
    2-D call over all columns would also run the (unfiltered) spline across columns."""
    coords = (scale * np.arange(n_out, dtype=np.float64) + shift)[None]
    matrix = np.empty((n_out, n_in), dtype=np.float64)
    for j in range(n_in):
        unit = np.zeros(n_in, dtype=np.float64)
        unit[j] = 1.0
        if order > 1:
            unit = ndimage.spline_filter1d(unit, order=order, mode=_filter_mode(mode))
        matrix[:, j] = ndimage.map_coordinates(unit, coords, order=order, mode=mode, cval=0.0,
                                               prefilter=False)
    return matrix


def _filter_mode(mode: str) -> str:
    return {"constant": "grid-constant", "nearest": "nearest", "reflect": "reflect",
            "mirror": "mirror", "wrap": "grid-wrap"}.get(mode, "mirror")


def reslice(
    data: np.ndarray,
    affine: np.ndarray,
    voxel_size: float | Sequence[float],
    *,
    order: int | str = 1,
    dtype: type = np.float32,
) -> tuple[np.ndarray, np.ndarray]:
    """Reslice to ``voxel_size`` (mm) over the same field of view (see
    :func:`grid_for_voxel_size`).  Returns (data, affine)."""
    target_affine, target_shape = grid_for_voxel_size(affine, data.shape, voxel_size)
    out = resample(data, affine, target_affine, target_shape, order=order,
                   mode="nearest", dtype=dtype)
    return out, target_affine


def reslice_file(
    in_file: str | os.PathLike,
    out_file: str | os.PathLike,
    voxel_size: float | Sequence[float],
    *,
    order: int | str = 1,
) -> dict:
    """Reslice a NIfTI file to ``voxel_size`` mm over its own field of view.

    Works in the closest canonical orientation and writes the result back in the
    input's voxel axis order, dtype and intensity scaling (3-D or 4-D).

    Returns:
        Geometry of input and output: ``{"in_shape", "in_zooms", "out_shape",
        "out_zooms"}``.
    """
    from .nifti import from_canonical, load_image, save_like, to_canonical

    src = load_image(in_file)
    ras, source_ornt = to_canonical(src)
    data, affine = reslice(np.asarray(ras.dataobj), ras.affine, voxel_size, order=order)
    # Cubic B-splines overshoot at edges; keep values within the input's range.
    lo, hi = float(np.min(ras.dataobj)), float(np.max(ras.dataobj))
    np.clip(data, lo, hi, out=data)
    out = from_canonical(nib.Nifti1Image(data, affine), source_ornt)
    save_like(np.asarray(out.dataobj), out.affine, out_file, src)
    return {
        "in_shape": list(src.shape), "in_zooms": [float(z) for z in voxel_sizes(src.affine)],
        "out_shape": list(out.shape), "out_zooms": [float(z) for z in voxel_sizes(out.affine)],
    }


def resample_to_reference_file(
    in_file: str | os.PathLike,
    reference_file: str | os.PathLike,
    out_file: str | os.PathLike,
    *,
    order: int | str = 3,
    mode: str = "constant",
) -> Path:
    """Resample a NIfTI onto another image's grid (world coordinates; zero outside, or
    edge values with ``mode="nearest"``)."""
    from .nifti import check_header, load_image, save_like

    src = load_image(in_file)
    check_header(reference_file)
    ref = nib.load(str(reference_file))
    data = resample(np.asarray(src.dataobj), src.affine, ref.affine, ref.shape[:3], order=order,
                    mode=mode)
    return save_like(data, ref.affine, out_file, src)


def resample_labels(labels: np.ndarray, affine: np.ndarray, target_affine: np.ndarray,
                    target_shape: Sequence[int], *, max_labels: int = 255) -> np.ndarray:
    """Resample a label map: trilinear interpolation of each label's one-hot map, arg-max.

    Unlike nearest-neighbour resampling this keeps thin structures' partial-volume
    extent consistent with the intensity images (UniRes 8.5).  Voxels outside the source
    field of view get 0.  The output keeps the input's integer dtype.

    Raises:
        ValueError: non-integer values, or more than ``max_labels`` non-zero labels.
    """
    data = np.asarray(labels)
    if data.ndim != 3:
        raise ValueError(f"a label map must be 3-D, got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise ValueError("a label map must hold integer values")
        data = data.astype(np.int32)
    values = [v for v in np.unique(data) if v != 0]
    if len(values) > max_labels:
        raise ValueError(f"{len(values)} labels in the label map; at most {max_labels} "
                         "are supported")
    shape = tuple(int(s) for s in target_shape[:3])
    best = resample((data == 0).astype(np.float32), affine, target_affine, shape,
                    order=1, mode="constant", cval=0.0)   # background's weight to beat
    out = np.zeros(shape, data.dtype)
    for value in values:
        weight = resample((data == value).astype(np.float32), affine, target_affine, shape,
                          order=1, mode="constant", cval=0.0)
        better = weight > best
        out[better] = value
        best[better] = weight[better]
    return out


def _signed_permutations() -> list[np.ndarray]:
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            p = np.zeros((3, 3))
            p[list(perm), range(3)] = signs
            out.append(p)
    return out


_PERMUTATIONS = _signed_permutations()


def reorient_affine(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Post-multiply by the signed permutation closest to the affine's rotation and by
    UniRes' (nitorch ``_mean_space``) translation, which only sets the mean space's phase.

    In the permuted frame the translation is ``-(d - 1)`` voxels along an axis kept in
    its direction and ``-2 (d - 1)`` along a flipped one, ``d`` being the size of the
    input axis that the permuted axis reads.  Checked against the reference on LAS, LPS,
    PSR, ASL and oblique inputs (tests/models/unires/test_meanspace.py)."""
    vs = np.sqrt((affine[:3, :3] ** 2).sum(0))
    rotation = affine[:3, :3] / vs
    best = min(_PERMUTATIONS, key=lambda p: np.linalg.norm(rotation - p))
    to_input = best.T                       # permuted voxel -> input voxel (a rotation)
    dims = np.abs(best) @ (np.asarray(shape[:3], float) - 1)
    flipped = to_input.sum(axis=0) < 0
    perm4 = np.eye(4)
    perm4[:3, :3] = to_input
    shift = np.eye(4)
    shift[:3, 3] = np.where(flipped, -2.0, -1.0) * dims
    return np.asarray(affine, float) @ perm4 @ shift


def world_aligned_grid(affine: np.ndarray, shape: Sequence[int]
                       ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Axis-aligned (RAS+) grid with the image's voxel sizes covering its field of view,
    centred on world (0, 0, 0): the grid UniRes' ``--res_origin`` gives a CT whose
    scanner affine is badly off (gantry tilt, odd origins)."""
    affine = np.asarray(affine, float)
    shape = tuple(int(s) for s in shape[:3])
    reoriented = reorient_affine(affine, shape)
    vs = np.sqrt((reoriented[:3, :3] ** 2).sum(0))
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5)
                        for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[2] - 0.5)]).T
    world = (affine @ corners)[:3]
    extent = world.max(1) - world.min(1)
    dims = np.maximum(1, np.round(extent / vs)).astype(int)
    grid = np.diag([*vs, 1.0])
    grid[:3, 3] = -vs * (dims - 1) / 2
    return grid, tuple(int(d) for d in dims)


def reset_origin(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reslice an image onto :func:`world_aligned_grid` (trilinear; outside = the image
    minimum, i.e. air for CT).  Returns (data, affine) with a centred, rotation-free
    affine."""
    shape = data.shape[:3]
    grid, dims = world_aligned_grid(affine, shape)
    out = resample(np.asarray(data, np.float32), _content_frame(affine, shape), grid, dims,
                   order=1, mode="constant", cval=float(np.min(data)))
    return out, grid


def _content_frame(affine: np.ndarray, shape) -> np.ndarray:
    """The image's affine moved so that its field of view is centred on the world
    origin with the rotation part kept: reslicing from it onto the centred axis-aligned
    grid removes the obliquity and the translation together."""
    affine = np.asarray(affine, float)
    centre_vox = (np.asarray(shape[:3], float) - 1) / 2
    centre = affine[:3, :3] @ centre_vox + affine[:3, 3]
    moved = affine.copy()
    moved[:3, 3] -= centre
    return moved
