"""Run a method on one degraded image with the output on a given grid (evaluation).

Scores must compare images voxel for voxel, so every method writes its result directly
on the ground truth's grid instead of its own.
"""
from __future__ import annotations

from pathlib import Path

#: methods ``srprep-eval`` can run on anatomical images
ANAT_METHODS = ("linear", "cubic", "unires")
#: methods for angular (dMRI) evaluation
ANGULAR_METHODS = ("sh",)


def reconstruct_on_grid(method: str, in_file, reference_file, out_file, *,
                        options: dict | None = None) -> dict:
    """Reconstruct ``in_file`` with ``method`` onto ``reference_file``'s grid."""
    opts = dict(options or {})
    if method in ("linear", "cubic"):
        from srprep.core.resample import resample_to_reference_file

        resample_to_reference_file(in_file, reference_file, out_file,
                                   order=1 if method == "linear" else 3, mode="nearest")
        return {"method": method}
    if method == "unires":
        from srprep.models.unires.files import unires_files

        return unires_files([in_file], [0], [Path(out_file)], None, grid_like=reference_file,
                            **opts)
    raise ValueError(f"method {method!r} cannot be evaluated on anatomical images; "
                     f"choose from {', '.join(ANAT_METHODS)}")
