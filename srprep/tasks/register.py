"""Registration tasks (antspyx) and transform application ("post-registration")."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["transform", "matrix"])
def Register(moving: NiftiImage, fixed: NiftiImage, transform: str = "rigid", fast: bool = False,
             init: str = "centre-of-mass", seed: int | None = None) -> tuple[File, list]:
    """Register ``moving`` to ``fixed`` with antspyx.

    Args:
        moving: image to align.
        fixed: reference (e.g. an atlas).
        transform: ``rigid`` or ``affine``.
        fast: coarser, quicker optimisation.
        init: ``centre-of-mass`` or ``identity`` initial alignment.
        seed: seed of ANTs' metric sampling (None: srprep's fixed default).

    Returns:
        transform: ANTs affine file (fixed-space point -> moving-space point).
        matrix: the same mapping as a 4x4 RAS+ matrix (nested lists).
    """
    from srprep.core.register import register_files

    out = Path("transform.mat").absolute()
    matrix = register_files(moving, fixed, out, transform=transform, fast=fast, init=init,
                            seed=seed)
    return out, matrix.tolist()


@define_python
def ApplyTransform(moving: NiftiImage, reference: NiftiImage, transform: File,
                   invert: bool = False, interpolation: str = "cubic") -> NiftiImage:
    """Pull an image onto a reference grid through a registration transform.

    Args:
        moving: image to resample.
        reference: image defining the output grid.
        transform: ANTs affine file from :class:`Register`.
        invert: apply the inverse (back to the registration's moving space).
        interpolation: ``nearest``, ``linear`` or ``cubic``.

    Returns:
        out: transformed image.
    """
    from srprep.core.register import apply_transform_file

    out = Path("transformed.nii.gz").absolute()
    apply_transform_file(moving, reference, transform, out, invert=invert, order=interpolation)
    return out
