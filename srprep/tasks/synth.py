"""Synthesis of thick-slice images (training data and evaluation)."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import NiftiImage


@define_python(outputs=["thick", "interpolated", "geometry"])
def SynthesizeThickSlices(in_file: NiftiImage, axis: int, thickness: float, gap: float = 0.0,
                          profile: str = "box", model: str = "physical"
                          ) -> tuple[NiftiImage, NiftiImage, dict]:
    """Thick-slice version of an isotropic image.

    Args:
        in_file: isotropic image.
        axis: 0 sagittal, 1 coronal, 2 axial (canonical RAS axes).
        thickness: slice thickness (mm).
        gap: slice gap (mm).
        profile: box or gaussian.
        model: physical (slice profile) or reference (BABY-AI decimation + cubic zoom).

    Returns:
        thick: the image on its real thick-slice grid.
        interpolated: the same, interpolated back to the isotropic grid (cubic).
        geometry: shape and voxel size of the thick image.
    """
    from srprep.core.synth import synthesize_file

    thick, up = Path("thick.nii.gz").absolute(), Path("interpolated.nii.gz").absolute()
    geometry = synthesize_file(in_file, thick, up, axis=axis, thickness=thickness, gap=gap,
                               profile=profile, model=model)
    return thick, up, geometry
