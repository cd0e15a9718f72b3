"""Synthesis of thick-slice (anisotropic) images from isotropic ones.

Used by the demo dataset, the evaluation tool and every learned method's training data.
Two models are provided:

* :func:`thick_slices` -- a physical model: each thick slice integrates the isotropic
  image over a slice profile (box or Gaussian, FWHM = thickness) centred on a real
  thick-slice lattice with optional gap; the result carries its true header.
* :func:`decimate_and_zoom` -- the BABY-AI reference's "keep every k-th slice and zoom
  back with a cubic spline" model, kept for compatibility with its training pairs.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .nifti import voxel_sizes
from .resample import resample


def thick_slice_grid(
    affine: np.ndarray, shape: tuple[int, ...], axis: int, thickness: float, gap: float = 0.0
) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    """Lattice of thick slices covering the field of view along ``axis``.

    Args:
        thickness: slice thickness in mm (any positive float).
        gap: gap between slices in mm (slice spacing = thickness + gap).

    Returns:
        (affine of the thick-slice image, its shape, slice centres in input voxel
        index units).  The stack is centred in the input's field of view.
    """
    if thickness <= 0 or gap < 0:
        raise ValueError(f"need thickness > 0 and gap >= 0, got {thickness}, {gap}")
    h = float(voxel_sizes(affine)[axis])
    extent = shape[axis] * h
    spacing = thickness + gap
    n = max(1, int(np.floor(extent / spacing + 1e-9)))
    offset = (extent - n * spacing) / 2
    centres = -0.5 + (offset + (np.arange(n) + 0.5) * spacing) / h
    index_map = np.eye(4)
    index_map[axis, axis] = spacing / h
    index_map[axis, 3] = centres[0]
    lr_shape = list(shape[:3])
    lr_shape[axis] = n
    return np.asarray(affine, float) @ index_map, tuple(lr_shape), centres


def slice_profile_weights(n_in: int, centres: np.ndarray, width_vox: float,
                          profile: str = "box") -> np.ndarray:
    """(n_slices, n_in) weights of each input voxel in each thick slice (rows sum to 1).

    ``box`` integrates a rectangle of width ``width_vox`` over each voxel's extent;
    ``gaussian`` (or ``gauss``, UniRes' name) samples a Gaussian with FWHM ``width_vox`` at voxel centres.
    """
    i = np.arange(n_in)[None, :]
    c = np.asarray(centres)[:, None]
    if profile == "box":
        lo = np.maximum(i - 0.5, c - width_vox / 2)
        hi = np.minimum(i + 0.5, c + width_vox / 2)
        w = np.clip(hi - lo, 0.0, None)
    elif profile in ("gaussian", "gauss"):
        sigma = width_vox / np.sqrt(8 * np.log(2))
        w = np.exp(-0.5 * ((i - c) / sigma) ** 2)
        w[np.abs(i - c) > 4 * sigma + 0.5] = 0.0
    else:
        raise ValueError(f"profile must be 'box' or 'gaussian', got {profile!r}")
    sums = w.sum(axis=1, keepdims=True)
    return w / np.where(sums > 0, sums, 1.0)


def thick_slices(
    data: np.ndarray,
    affine: np.ndarray,
    *,
    axis: int,
    thickness: float,
    gap: float = 0.0,
    profile: str = "box",
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate a thick-slice acquisition of an isotropic 3-D image.

    Returns:
        (float32 array on the thick-slice lattice, its affine).
    """
    lr_affine, _, centres = thick_slice_grid(affine, data.shape, axis, thickness, gap)
    h = float(voxel_sizes(affine)[axis])
    weights = slice_profile_weights(data.shape[axis], centres, thickness / h, profile)
    moved = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    lr = np.tensordot(weights.astype(np.float32), moved, axes=(1, 0))
    return np.moveaxis(lr, 0, axis).astype(np.float32), lr_affine


def upsample_to(data: np.ndarray, affine: np.ndarray, target_affine: np.ndarray,
                target_shape: tuple[int, ...], order: int = 3) -> np.ndarray:
    """Interpolate a thick-slice image back onto an isotropic grid (edge-replicating)."""
    return resample(data, affine, target_affine, target_shape, order=order, mode="nearest")


def add_rician_noise(data: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of complex Gaussian noise: ``sqrt((x + n1)^2 + n2^2)``."""
    n1 = rng.normal(0.0, sigma, data.shape)
    n2 = rng.normal(0.0, sigma, data.shape)
    return np.sqrt((data + n1) ** 2 + n2 ** 2).astype(np.float32)


def decimate_and_zoom(data: np.ndarray, k: int, axis: int, start: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """BABY-AI reference model: keep slices ``start, start+k, ...`` and zoom back.

    The zoom is :func:`scipy.ndimage.zoom` with order 3 and the reference's corner-aligned
    factor ``N / ceil(N / k)`` (its geometric drift of up to ~1 voxel at the far end is
    reproduced on purpose, to match the official training pairs).

    Returns:
        (decimated slices, volume zoomed back to the input shape).
    """
    if k < 1:
        raise ValueError(f"decimation factor must be >= 1, got {k}")
    index = [slice(None)] * data.ndim
    index[axis] = slice(start, None, k)
    lr = np.asarray(data, dtype=np.float64)[tuple(index)]
    n = data.shape[axis]
    factors = [1.0] * data.ndim
    factors[axis] = n / np.ceil(n / k)
    up = ndimage.zoom(lr, factors, order=3)
    if up.shape != data.shape:  # zoom rounds the output size; pad/crop to the input
        fixed = np.zeros(data.shape, dtype=up.dtype)
        common = tuple(slice(0, min(a, b)) for a, b in zip(up.shape, data.shape))
        fixed[common] = up[common]
        up = fixed
    return lr, up


def tilt_axis(axis: int) -> int:
    """World axis an oblique stack thick along ``axis`` is tilted about: left-right (x)
    for coronal and axial stacks (as an AC-PC or hippocampal angulation), anterior-
    posterior (y) for sagittal ones."""
    return 1 if axis == 0 else 0


def tilted_grid(data: np.ndarray, affine: np.ndarray, axis: int, degrees: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """``data`` resampled (cubic B-spline, zero outside) onto a grid of the same voxel
    sizes rotated by ``degrees`` about world axis :func:`tilt_axis` through the field of
    view's centre, large enough to hold the whole field of view: the fine grid an oblique
    slice stack integrates over."""
    theta = np.deg2rad(degrees)
    u = tilt_axis(axis)
    a, b = [i for i in range(3) if i != u]
    rot = np.eye(3)
    rot[a, a] = rot[b, b] = np.cos(theta)
    rot[a, b], rot[b, a] = -np.sin(theta), np.sin(theta)
    affine = np.asarray(affine, float)
    shape = np.asarray(data.shape[:3])
    corners = np.array(list(np.ndindex(2, 2, 2))) * (shape - 1)
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    centre = world.mean(0)
    matrix = rot @ affine[:3, :3]
    local = np.linalg.solve(matrix, (world - centre).T).T     # corners in new voxel units
    lo, hi = np.floor(local.min(0) + 1e-6), np.ceil(local.max(0) - 1e-6)
    out_affine = np.eye(4)
    out_affine[:3, :3] = matrix
    out_affine[:3, 3] = centre + matrix @ lo
    out_shape = tuple(int(n) for n in hi - lo + 1)
    moved = resample(data, affine, out_affine, out_shape, order=3, mode="constant")
    return np.clip(moved, min(0.0, float(data.min())), None), out_affine


def degrade_file(in_file, out_file, *, axis: int, thickness: float, noise: float = 0.0,
                 seed: int = 0, profile: str = "box", gap: float = 0.0, tilt: float = 0.0,
                 inplane: float = 0.0) -> dict:
    """Simulate a thick-slice acquisition of an isotropic NIfTI (for evaluation).

    ``axis`` is a world axis of the closest canonical (RAS) orientation: 0 sagittal (x),
    1 coronal (y), 2 axial (z).  ``tilt`` (degrees) makes the stack oblique: the slices
    are integrated on a grid rotated about :func:`tilt_axis`, and the output's affine
    carries the rotation.  ``inplane`` (mm, 0 = the truth's voxel size) lowers the
    in-plane resolution: each in-plane axis box-averaged onto voxels of that size, as a
    coarser acquisition matrix.  ``noise`` is the Rician noise s.d. as a fraction of the
    99th percentile of the non-zero voxels.  Writes float32 on the thick-slice grid.
    """
    from .nifti import load_image, save_image, to_canonical

    ras, _ = to_canonical(load_image(in_file, allow_4d=False))
    data = np.asarray(ras.dataobj, dtype=np.float32)
    fine, fine_affine = (tilted_grid(data, ras.affine, axis, tilt) if tilt
                         else (data, ras.affine))
    lr, lr_affine = thick_slices(fine, fine_affine, axis=axis, thickness=thickness, gap=gap,
                                 profile=profile)
    if inplane < 0:
        raise ValueError(f"in-plane voxel size must be >= 0 mm, got {inplane}")
    for ax in (i for i in range(3) if i != axis and inplane > 0):
        if inplane > float(voxel_sizes(lr_affine)[ax]) * 1.001:
            lr, lr_affine = thick_slices(lr, lr_affine, axis=ax, thickness=inplane)
    sigma = 0.0
    if noise > 0:
        positive = data[data > 0]
        sigma = float(noise * (np.percentile(positive, 99) if positive.size else 1.0))
        lr = add_rician_noise(lr, sigma, np.random.default_rng(seed))
    save_image(lr, lr_affine, out_file, dtype=np.float32)
    return {"shape": list(lr.shape), "sigma": sigma, "tilt_deg": float(tilt),
            "tilt_axis": tilt_axis(axis) if tilt else None,
            "zooms": [float(z) for z in np.sqrt((lr_affine[:3, :3] ** 2).sum(0))]}


def synthesize_file(in_file, out_thick, out_interpolated, *, axis: int, thickness: float,
                    gap: float = 0.0, profile: str = "box", model: str = "physical",
                    order: int = 3) -> dict:
    """Thick-slice version of an isotropic NIfTI, on its real grid and interpolated back.

    Args:
        axis: canonical (RAS) axis of the slices: 0 sagittal, 1 coronal, 2 axial.
        thickness: slice thickness in mm (any float; ``model="reference"`` needs an
            integer multiple of the voxel size).
        model: ``physical`` (slice profile on a real thick-slice lattice) or
            ``reference`` (BABY-AI: keep every k-th slice, cubic zoom back).
        order: spline order of the interpolation back to the isotropic grid.

    Returns:
        Geometry of the thick-slice image.
    """
    from .nifti import load_image, save_image, to_canonical, voxel_sizes

    ras, _ = to_canonical(load_image(in_file, allow_4d=False))
    data = np.asarray(ras.dataobj, dtype=np.float32)
    if model == "reference":
        k = thickness / float(voxel_sizes(ras.affine)[axis])
        if abs(k - round(k)) > 1e-6:
            raise ValueError(f"the reference model needs a whole number of voxels, got {k:.3f}")
        lr, up = decimate_and_zoom(data, int(round(k)), axis)
        lr_affine = ras.affine.copy()
        lr_affine[:3, axis] *= int(round(k))
    elif model == "physical":
        lr, lr_affine = thick_slices(data, ras.affine, axis=axis, thickness=thickness, gap=gap,
                                     profile=profile)
        up = upsample_to(lr, lr_affine, ras.affine, data.shape, order=order)
    else:
        raise ValueError(f"model must be 'physical' or 'reference', got {model!r}")
    save_image(lr, lr_affine, out_thick, dtype=np.float32)
    save_image(up, ras.affine, out_interpolated, dtype=np.float32)
    return {"thick_shape": list(lr.shape),
            "thick_zooms": [float(z) for z in voxel_sizes(lr_affine)]}
