"""Evaluation tasks: degrade a ground truth, reconstruct on its grid, score."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["out_file", "info"])
def Degrade(in_file: NiftiImage, axis: int, thickness: float, noise: float = 0.0,
            seed: int = 0) -> tuple[NiftiImage, dict]:
    """Thick-slice acquisition of an isotropic image (box profile, Rician noise).

    Args:
        in_file: isotropic ground truth.
        axis: 0 sagittal, 1 coronal, 2 axial (canonical RAS axes).
        thickness: slice thickness (mm).
        noise: Rician noise s.d. as a fraction of the 99th percentile.
        seed: noise seed.

    Returns:
        out_file: degraded image on its thick-slice grid.
        info: its shape, voxel size and noise s.d.
    """
    from srprep.core.synth import degrade_file

    out = Path("degraded.nii.gz").absolute()
    return out, degrade_file(in_file, out, axis=axis, thickness=thickness, noise=noise, seed=seed)


@define_python(outputs=["out_file", "info"])
def ReconstructOnGrid(method: str, in_file: NiftiImage, reference: NiftiImage,
                      options: dict | None = None) -> tuple[NiftiImage, dict]:
    """Run a method and write its result on the reference (ground truth) grid.

    Args:
        method: linear, cubic or unires.
        in_file: degraded image.
        reference: image whose grid the output takes.
        options: method settings.

    Returns:
        out_file: reconstruction.
        info: method report (time included).
    """
    import time

    from srprep.core.device import configure_threads
    from srprep.models.ongrid import reconstruct_on_grid

    configure_threads()
    out = Path(f"{method}.nii.gz").absolute()
    start = time.perf_counter()
    info = dict(reconstruct_on_grid(method, in_file, reference, out, options=options))
    info["seconds"] = round(time.perf_counter() - start, 3)
    return out, info


@define_python
def Score(truth: NiftiImage, estimate: NiftiImage, mask: NiftiImage, contrast: str = "T1w",
          segment: bool = True) -> dict:
    """PSNR, SSIM, NRMSE in the mask and GM/WM volume errors.

    Args:
        truth: ground truth.
        estimate: reconstruction on the truth's grid.
        mask: brain mask.
        contrast: BIDS suffix (orders the tissue classes).
        segment: compute tissue volumes.

    Returns:
        out: metrics.
    """
    from srprep.core.evaluate import score_files

    return score_files(truth, estimate, mask, contrast=contrast, segment=segment)


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
