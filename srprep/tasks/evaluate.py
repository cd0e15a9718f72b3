"""Evaluation tasks of the angular (dMRI) cases: subset a series, predict, score."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["out_file", "bval", "bvec", "held_out"])
def AngularSubset(in_file: NiftiImage, bval: File, bvec: File, factor: int
                  ) -> tuple[NiftiImage, File, File, list]:
    """Keep b=0 and every ``factor``-th diffusion-weighted volume.

    Args:
        in_file: full dMRI series.
        bval: FSL b-values.
        bvec: FSL b-vectors.
        factor: keep one weighted direction in ``factor``.

    Returns:
        out_file: subset series.
        bval: its b-values.
        bvec: its b-vectors.
        held_out: indices (in the full series) of the volumes to predict.
    """
    from srprep.core.angular import angular_subset_file

    out, bv, bc = (Path(n).absolute() for n in ("subset.nii.gz", "subset.bval", "subset.bvec"))
    held = angular_subset_file(in_file, bval, bvec, factor, out, bv, bc)
    return out, bv, bc, held


@define_python
def PredictAndScoreAngular(method: str, subset: NiftiImage, subset_bval: File,
                           subset_bvec: File, truth: NiftiImage, bval: File, bvec: File,
                           held_out: list) -> dict:
    """Predict the held-out volumes and score them against the full series.

    Args:
        method: angular method (sh).
        subset: acquired subset.
        subset_bval: its b-values.
        subset_bvec: its b-vectors.
        truth: full series.
        bval: full b-values.
        bvec: full b-vectors.
        held_out: indices to predict.

    Returns:
        out: metrics and timing.
    """
    import time

    from srprep.core.angular import predict_angular_file, score_angular_file
    from srprep.core.dwi import read_bvals_bvecs
    from srprep.core.nifti import check_header

    n = check_header(truth).n_volumes
    bvals, bvecs = read_bvals_bvecs(bval, bvec, n)
    out = Path(f"{method}_prediction.nii.gz").absolute()
    start = time.perf_counter()
    predict_angular_file(method, subset, subset_bval, subset_bvec, bvals[held_out],
                         bvecs[held_out], out)
    seconds = time.perf_counter() - start
    metrics = score_angular_file(truth, bval, bvec, held_out, out)
    metrics["seconds"] = round(seconds, 3)
    return metrics
