"""Evaluation workflows: angular (dMRI) cases, subset -> predict -> score.

Anatomical cases need no workflow of their own: ``srprep-eval`` writes the degraded
sessions as a BIDS dataset and runs the App's own method workflows on it
(:mod:`srprep.bids_app.cli.evaluate`), so what is scored is what users get.
"""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File, NiftiImage
from srprep.tasks.evaluate import AngularSubset, PredictAndScoreAngular


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
