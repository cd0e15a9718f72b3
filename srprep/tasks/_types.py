"""File types shared by task signatures."""
from __future__ import annotations

from fileformats.generic import File
from fileformats.medimage import Nifti1, NiftiGz

#: a NIfTI-1 image, compressed or not
NiftiImage = NiftiGz | Nifti1

__all__ = ["File", "NiftiImage"]
