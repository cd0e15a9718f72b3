"""Intensity normalisation tasks and brain masks."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["out_file", "params"])
def PercentileScale(in_file: NiftiImage, lower: float = 1.0, upper: float = 99.0,
                    clip: bool = True) -> tuple[NiftiImage, dict]:
    """Map the lower/upper percentiles of the positive voxels to 0 and 1.

    Args:
        in_file: image to scale.
        lower: lower percentile.
        upper: upper percentile.
        clip: clip to [0, 1].

    Returns:
        out_file: scaled float32 image.
        params: what InversePercentileScale needs.
    """
    from srprep.core.normalise import percentile_scale_file

    out = Path("scaled.nii.gz").absolute()
    return out, percentile_scale_file(in_file, out, lower=lower, upper=upper, clip=clip)


@define_python
def InversePercentileScale(in_file: NiftiImage, params: dict, like: NiftiImage) -> NiftiImage:
    """Return a [0, 1] image to the intensity scale and dtype of the original.

    Args:
        in_file: image in normalised units.
        params: output of PercentileScale.
        like: image whose dtype and scaling the output takes.

    Returns:
        out: image in the original intensity scale.
    """
    from srprep.core.normalise import inverse_percentile_scale_file

    out = Path("rescaled.nii.gz").absolute()
    inverse_percentile_scale_file(in_file, out, params, like_file=like)
    return out


@define_python(outputs=["mask", "volume_ml"])
def BrainMask(in_file: NiftiImage, bval: File | None = None) -> tuple[NiftiImage, float]:
    """Brain mask by median Otsu (on the mean b=0 volume for dMRI).

    Args:
        in_file: 3-D image or dMRI series.
        bval: FSL b-values of a dMRI series (selects the b=0 volumes).

    Returns:
        mask: uint8 mask image.
        volume_ml: mask volume in millilitres.
    """
    from srprep.core.mask import brain_mask_file

    out = Path("mask.nii.gz").absolute()
    return out, brain_mask_file(in_file, out, bval_file=bval)
