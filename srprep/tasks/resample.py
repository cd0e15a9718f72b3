"""Reslicing and resampling tasks."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import NiftiImage


@define_python(outputs=["out_file", "geometry"])
def Reslice(in_file: NiftiImage, voxel_size: list[float], interpolation: str = "linear"
            ) -> tuple[NiftiImage, dict]:
    """Reslice an image to a voxel size (mm) over its own field of view.

    Args:
        in_file: 3-D image or 4-D series.
        voxel_size: target voxel size in mm (one value, or one per axis).
        interpolation: ``linear`` or ``cubic`` (B-spline).

    Returns:
        out_file: resliced image, in the input's axis order, dtype and scale.
        geometry: input and output shapes and voxel sizes.
    """
    from srprep.core.resample import reslice_file

    out = Path("resliced.nii.gz").absolute()
    geometry = reslice_file(in_file, out, voxel_size, order=interpolation)
    return out, geometry


@define_python
def ResampleToReference(in_file: NiftiImage, reference: NiftiImage, interpolation: str = "cubic"
                        ) -> NiftiImage:
    """Resample an image onto a reference image's grid (world coordinates).

    Args:
        in_file: image to resample.
        reference: image whose grid is used.
        interpolation: ``nearest``, ``linear`` or ``cubic``.

    Returns:
        out: resampled image.
    """
    from srprep.core.resample import resample_to_reference_file

    out = Path("resampled.nii.gz").absolute()
    resample_to_reference_file(in_file, reference, out, order=interpolation)
    return out
