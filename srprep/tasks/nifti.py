"""Validation task."""
from __future__ import annotations

from .compose import define_python

from ._types import NiftiImage


@define_python
def ValidateImage(in_file: NiftiImage, allow_4d: bool = True) -> dict:
    """Load a NIfTI fully and check it (3-D/4-D, finite voxels, sane affine and zooms).

    Args:
        in_file: image to check.
        allow_4d: accept 4-D series.

    Returns:
        out: shape, zooms, axcodes and dtype of the image.
    """
    from dataclasses import asdict

    from srprep.core.nifti import _check_geometry, load_image

    img = load_image(in_file, allow_4d=allow_4d)
    return asdict(_check_geometry(in_file, img, allow_4d=allow_4d))
