"""Rigid and affine registration with antspyx, and application of linear transforms.

Transforms are written as ANTs ``*GenericAffine.mat`` files (readable by ANTs, antspyx
and nitransforms).  ANTs works in LPS world coordinates and stores the *fixed-to-moving*
point mapping; :func:`read_ras_matrix` converts a file to the 4x4 RAS+ (NIfTI world)
matrix with the same meaning, which is what :func:`apply_transform` uses to pull the
moving image onto any grid with srprep's own resampler (linear or cubic B-spline), and
what "post-registration" inverts to return to the native grid.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError
from .resample import resample

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])

#: seed of ANTs' random metric sampling when none is given (``srprep --random-seed``
#: replaces it): registrations are reproducible run to run
DEFAULT_SEED = 20240521

#: antspyx settings per (transform, fast) pair: (type_of_transform, iterations,
#: shrink factors, smoothing sigmas in voxels).  The fast settings stop at half
#: resolution with fewer iterations; measured ~5x faster with <0.3 mm extra error on
#: 1 mm data (tests/core/test_register.py).
_SETTINGS = {
    ("rigid", False): ("Rigid", (1000, 500, 250, 100), (8, 4, 2, 1), (3, 2, 1, 0)),
    ("rigid", True): ("Rigid", (200, 100, 50), (4, 2, 1), (2, 1, 0)),
    ("affine", False): ("Affine", (1000, 500, 250, 100), (8, 4, 2, 1), (3, 2, 1, 0)),
    ("affine", True): ("Affine", (200, 100, 50), (4, 2, 1), (2, 1, 0)),
    # rigid + one isotropic scale (7 dof; UniRes' atlas alignment, as its reference)
    ("similarity", False): ("Similarity", (1000, 500, 250, 100), (8, 4, 2, 1), (3, 2, 1, 0)),
    ("similarity", True): ("Similarity", (200, 100, 50), (4, 2, 1), (2, 1, 0)),
}


@dataclass(frozen=True)
class Registration:
    """Result of :func:`register`.

    Attributes:
        transform: ANTs affine file mapping fixed-space points to moving-space points
            (use it to pull the moving image onto the fixed grid).
        matrix: the same mapping as a 4x4 RAS+ matrix (mm).
    """

    transform: Path
    matrix: np.ndarray


def _ants_image(data: np.ndarray, affine: np.ndarray):
    import ants  # heavy import kept local

    from .nifti import voxel_sizes

    spacing = voxel_sizes(affine)
    direction = (_LPS[:3, :3] @ affine[:3, :3]) / spacing
    origin = (_LPS @ affine[:, 3])[:3]
    return ants.from_numpy(np.ascontiguousarray(data, dtype=np.float32), origin=tuple(origin),
                           spacing=tuple(spacing), direction=direction)


def register(
    moving: np.ndarray,
    moving_affine: np.ndarray,
    fixed: np.ndarray,
    fixed_affine: np.ndarray,
    out_file: str | os.PathLike,
    *,
    transform: str = "rigid",
    fast: bool = False,
    seed: int | None = None,
    init: str = "centre-of-mass",
) -> Registration:
    """Register ``moving`` to ``fixed`` (3-D arrays with their affines).

    Args:
        transform: ``rigid`` (6 dof), ``similarity`` (7: rigid + isotropic scale) or
            ``affine`` (12 dof).
        fast: coarser pyramid and fewer iterations (see :data:`_SETTINGS`).
        seed: seed of ANTs' random metric sampling, for reproducible results (None:
            :data:`DEFAULT_SEED`; ``srprep --random-seed`` passes its own).
        init: ``centre-of-mass`` (ANTs' default initial alignment) or ``identity``
            (trust the headers; right when images are already roughly aligned).
        out_file: where the ``.mat`` transform is written.

    Returns:
        :class:`Registration` with the transform file and its RAS+ matrix.
    """
    import ants
    import ants.config

    key = (transform.lower(), bool(fast))
    if key not in _SETTINGS:
        raise ValueError("transform must be 'rigid', 'similarity' or 'affine', got "
                         f"{transform!r}")
    if moving.ndim != 3 or fixed.ndim != 3:
        raise InputError("registration needs 3-D images")
    kind, iters, shrink, smooth = _SETTINGS[key]
    # passed to antsRegistration as --random-seed
    ants.config._random_seed = DEFAULT_SEED if seed is None else int(seed)
    fixed_img = _ants_image(fixed, fixed_affine)
    moving_img = _ants_image(moving, moving_affine)
    initial = None
    tmpdir = Path(tempfile.mkdtemp(prefix="srprep-reg-"))
    try:
        if init == "identity":
            initial = str(tmpdir / "identity.mat")
            ants.write_transform(ants.create_ants_transform(dimension=3), initial)
        elif init != "centre-of-mass":
            raise ValueError(f"init must be 'centre-of-mass' or 'identity', got {init!r}")
        result = ants.registration(
            fixed_img, moving_img, type_of_transform=kind, initial_transform=initial,
            outprefix=str(tmpdir / "reg_"), aff_iterations=iters, aff_shrink_factors=shrink,
            aff_smoothing_sigmas=smooth, verbose=False,
        )
        produced = [p for p in result["fwdtransforms"] if p.endswith(".mat")]
        if not produced:
            raise RuntimeError("antsRegistration produced no affine transform")
        out_file = Path(out_file)
        out_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced[-1], out_file)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return Registration(out_file, read_ras_matrix(out_file))


def read_ras_matrix(transform_file: str | os.PathLike) -> np.ndarray:
    """4x4 RAS+ matrix of an ANTs affine file (fixed-space point -> moving-space point)."""
    import ants

    tx = ants.read_transform(str(transform_file))
    params = np.asarray(tx.parameters, dtype=float)
    centre = np.asarray(tx.fixed_parameters, dtype=float)
    linear = params[:9].reshape(3, 3)
    translation = params[9:12]
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = translation + centre - linear @ centre
    return _LPS @ lps @ _LPS


def write_ras_matrix(matrix: np.ndarray, transform_file: str | os.PathLike) -> Path:
    """Write a 4x4 RAS+ (fixed -> moving) matrix as an ANTs affine file."""
    import ants

    lps = _LPS @ np.asarray(matrix, dtype=float) @ _LPS
    tx = ants.create_ants_transform(transform_type="AffineTransform", dimension=3)
    tx.set_parameters(np.concatenate([lps[:3, :3].ravel(), lps[:3, 3]]))
    tx.set_fixed_parameters(np.zeros(3))
    ants.write_transform(tx, str(transform_file))
    return Path(transform_file)


def apply_transform(
    moving: np.ndarray,
    moving_affine: np.ndarray,
    matrix: np.ndarray,
    reference_affine: np.ndarray,
    reference_shape: tuple[int, ...],
    *,
    invert: bool = False,
    order: int | str = 3,
) -> np.ndarray:
    """Pull ``moving`` onto a reference grid through a RAS+ (fixed -> moving) matrix.

    With ``invert=False`` the reference grid is in the *fixed* space of the
    registration (moving image brought to the atlas).  With ``invert=True`` the roles
    swap: ``moving`` lives in the fixed space and the reference grid in the original
    moving space -- the "post-registration" back to a subject's native grid.
    """
    mapping = np.linalg.inv(matrix) if invert else np.asarray(matrix, dtype=float)
    pulled = mapping @ np.asarray(reference_affine, dtype=float)
    if tuple(np.shape(moving)[:3]) == tuple(reference_shape[:3]) and \
            np.allclose(pulled, moving_affine, atol=1e-5):
        # the reference grid is the moving image's own: voxel for voxel, no interpolation
        return np.array(moving, dtype=np.float32)
    return resample(moving, moving_affine, pulled, reference_shape[:3],
                    order=order, mode="constant")


def same_grid(a_file: str | os.PathLike, b_file: str | os.PathLike, *, atol: float = 1e-4) -> bool:
    """Whether two NIfTI files share one voxel grid (shape and affine)."""
    import nibabel as nib

    a, b = nib.load(str(a_file)), nib.load(str(b_file))
    return a.shape[:3] == b.shape[:3] and bool(np.allclose(a.affine, b.affine, atol=atol))


def compose_transform_files(first: str | os.PathLike, then: str | os.PathLike,
                            out_file: str | os.PathLike) -> Path:
    """One transform file for two registrations in a chain.

    ``first`` maps points of the final fixed space into an intermediate space (e.g. atlas
    -> T1w) and ``then`` maps the intermediate space into the moving image's (T1w -> T2w);
    the result maps the final fixed space straight into the moving image's (atlas -> T2w),
    so the moving image is interpolated once."""
    return write_ras_matrix(read_ras_matrix(then) @ read_ras_matrix(first), out_file)


def register_files(
    moving_file: str | os.PathLike,
    fixed_file: str | os.PathLike,
    out_transform: str | os.PathLike,
    *,
    transform: str = "rigid",
    fast: bool = False,
    init: str = "centre-of-mass",
    seed: int | None = None,
) -> np.ndarray:
    """File-level :func:`register` (4-D moving images use their first volume)."""
    from .nifti import load_image

    mov, fix = load_image(moving_file), load_image(fixed_file)
    mdata, fdata = np.asarray(mov.dataobj), np.asarray(fix.dataobj)
    mdata = mdata[..., 0] if mdata.ndim == 4 else mdata
    fdata = fdata[..., 0] if fdata.ndim == 4 else fdata
    return register(mdata, mov.affine, fdata, fix.affine, out_transform,
                    transform=transform, fast=fast, init=init, seed=seed).matrix


def apply_transform_file(
    moving_file: str | os.PathLike,
    reference_file: str | os.PathLike,
    transform_file: str | os.PathLike,
    out_file: str | os.PathLike,
    *,
    invert: bool = False,
    order: int | str = 3,
) -> Path:
    """File-level :func:`apply_transform`: output on the reference grid, in the moving
    image's dtype and intensity scaling (4-D series are transformed volume by volume)."""
    import nibabel as nib

    from .nifti import check_header, load_image, save_like

    mov = load_image(moving_file)
    check_header(reference_file)
    ref = nib.load(str(reference_file))
    data = apply_transform(np.asarray(mov.dataobj), mov.affine, read_ras_matrix(transform_file),
                           ref.affine, ref.shape[:3], invert=invert, order=order)
    return save_like(data, ref.affine, out_file, mov)


def coregister(
    images: list[tuple[np.ndarray, np.ndarray]],
    *,
    reference: int = 0,
    fast: bool = True,
    transform: str = "rigid",
    seed: int | None = None,
) -> list[np.ndarray]:
    """Rigidly register every image to ``images[reference]`` (multi-contrast: Mattes MI).

    Headers are trusted as the starting point (``init="identity"``): images of one
    session are roughly aligned already, and centre-of-mass initialisation is fooled by
    thick-slice stacks covering different parts of the head.

    Returns:
        Per image, the RAS+ matrix ``T`` mapping reference-space points to that image's
        space (identity for the reference); its corrected affine is ``T^-1 @ affine``.
    """
    fixed, fixed_affine = images[reference]
    out = []
    tmp = Path(tempfile.mkdtemp(prefix="srprep-coreg-"))
    try:
        for i, (data, affine) in enumerate(images):
            if i == reference:
                out.append(np.eye(4))
                continue
            reg = register(data, affine, fixed, fixed_affine, tmp / f"{i}.mat",
                           transform=transform, fast=fast, init="identity", seed=seed)
            out.append(reg.matrix)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
