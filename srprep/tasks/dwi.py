"""Diffusion MRI tasks: per-shell xmax, (de)normalisation, NIfTI <-> q-first npy."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["xmax", "xmax_file"])
def XmaxPerShell(in_file: NiftiImage, bval: File, bvec: File, mask: NiftiImage,
                 percentile: float = 99.0) -> tuple[dict, File]:
    """Per-shell intensity scale (percentile of in-mask values of each shell).

    Args:
        in_file: dMRI series (X, Y, Z, Q).
        bval: FSL b-values.
        bvec: FSL b-vectors.
        mask: brain mask.
        percentile: percentile (default 99).

    Returns:
        xmax: {shell: value}.
        xmax_file: the same as JSON.
    """
    from srprep.core.dwi import xmax_file

    out = Path("xmax.json").absolute()
    return xmax_file(in_file, bval, bvec, mask, out, percentile=percentile), out


@define_python
def NormaliseDwi(in_file: NiftiImage, bval: File, xmax: dict, inverse: bool = False,
                 like: NiftiImage | None = None) -> NiftiImage:
    """x' = 2x/xmax - 1 per shell (or its inverse); b=0 volumes untouched.

    Args:
        in_file: dMRI series.
        bval: FSL b-values.
        xmax: per-shell scales.
        inverse: apply the inverse.
        like: image whose dtype the inverse output takes.

    Returns:
        out: (de)normalised series.
    """
    from srprep.core.dwi import normalise_dwi_file

    out = Path("denormalised.nii.gz" if inverse else "normalised.nii.gz").absolute()
    return normalise_dwi_file(in_file, bval, xmax, out, inverse=inverse, like_file=like)


@define_python
def DwiToNpy(in_file: NiftiImage) -> File:
    """Write a dMRI series as a float32 (Q, X, Y, Z) npy (angular axis first).

    Args:
        in_file: dMRI series (X, Y, Z, Q).

    Returns:
        out: the npy file.
    """
    from srprep.core.dwi import dwi_to_npy_file

    out = Path("dwi_qfirst.npy").absolute()
    dwi_to_npy_file(in_file, out)
    return out


@define_python
def NpyToDwi(in_npy: File, reference: NiftiImage) -> NiftiImage:
    """Turn a (Q, X, Y, Z) npy back into a NIfTI series on the reference's grid.

    Args:
        in_npy: q-first array.
        reference: image providing the affine.

    Returns:
        out: (X, Y, Z, Q) series.
    """
    from srprep.core.dwi import npy_to_dwi_file

    out = Path("dwi.nii.gz").absolute()
    return npy_to_dwi_file(in_npy, reference, out)
