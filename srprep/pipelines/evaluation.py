"""Evaluation workflows: one case = degrade -> reconstruct -> score.

Cases are submitted as one split over all (axis, thickness, noise, method) combinations
of an image; the degradation node of a combination is shared by every method through
Pydra's cache (same inputs, same checksum), so each degraded image is made once.
"""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File, NiftiImage
from srprep.tasks.evaluate import (AngularSubset, Degrade, PredictAndScoreAngular,
                                   ReconstructOnGrid, Score)
from srprep.tasks.normalise import BrainMask


@define_workflow(outputs=["metrics", "info", "estimate"])
def AnatomicalCase(truth: NiftiImage, contrast: str, source_name: str, axis: int,
                   thickness: float, noise: float, method: str, seed: int = 0,
                   segment: bool = True, options: dict | None = None
                   ) -> tuple[dict, dict, NiftiImage]:
    """Degrade a ground truth, reconstruct it with one method on its grid and score it.

    Parameters
    ----------
    truth : NiftiImage
        Isotropic ground truth (its brain mask is computed once, by median Otsu).
    contrast : str
        BIDS suffix of the truth (orders tissue classes).
    source_name : str
        File name of the truth (keeps cache entries of identical data apart).
    axis : int
        Thick axis (0 sagittal, 1 coronal, 2 axial).
    thickness : float
        Slice thickness in mm.
    noise : float
        Rician noise s.d. as a fraction of the 99th percentile.
    method : str
        Method to evaluate.
    seed : int
        Noise seed.
    segment : bool
        Also compare GM/WM volumes.
    options : dict
        Method settings.

    Returns
    -------
    metrics : dict
        PSNR, SSIM, NRMSE, RMSE and tissue volumes.
    info : dict
        Reconstruction report (timing).
    estimate : NiftiImage
        The reconstruction on the truth's grid.
    """
    mask = workflow.add(BrainMask(in_file=truth), name="mask")
    degraded = workflow.add(Degrade(in_file=truth, axis=axis, thickness=thickness, noise=noise,
                                    seed=seed), name="degrade")
    recon = workflow.add(ReconstructOnGrid(method=method, in_file=degraded.out_file,
                                           reference=truth, options=options), name="reconstruct")
    scored = workflow.add(Score(truth=truth, estimate=recon.out_file, mask=mask.mask,
                                contrast=contrast, segment=segment), name="score")
    return scored.out, recon.info, recon.out_file


@define_workflow
def AngularCase(truth: NiftiImage, bval: File, bvec: File, source_name: str, factor: int,
                method: str) -> dict:
    """Keep 1 direction in ``factor``, predict the rest with ``method``, score.

    Parameters
    ----------
    truth : NiftiImage
        Full dMRI series.
    bval : File
        Its b-values.
    bvec : File
        Its b-vectors.
    source_name : str
        File name of the series.
    factor : int
        Angular subsampling factor.
    method : str
        Angular method (sh).

    Returns
    -------
    out : dict
        Metrics over the predicted volumes.
    """
    subset = workflow.add(AngularSubset(in_file=truth, bval=bval, bvec=bvec, factor=factor),
                          name="subset")
    scored = workflow.add(PredictAndScoreAngular(
        method=method, subset=subset.out_file, subset_bval=subset.bval,
        subset_bvec=subset.bvec, truth=truth, bval=bval, bvec=bvec,
        held_out=subset.held_out), name="predict")
    return scored.out
