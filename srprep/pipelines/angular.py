"""Angular super-resolution workflows (PCCNN and the SH baseline) for one dMRI series."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File, NiftiImage
from srprep.tasks.angular import SHPredict, TargetScheme
from srprep.tasks.pccnn import PCCNNPredict
from srprep.tasks.normalise import BrainMask


@define_workflow(outputs=["out_file", "bval", "bvec", "info", "scheme"])
def AngularWorkflow(in_file: NiftiImage, bval: File, bvec: File, source_name: str,
                    method: str = "pccnn", factor: int = 2, target_bval: File | None = None,
                    target_bvec: File | None = None, weights: File | None = None,
                    variant: str | None = "PCCNN", context_mode: str = "shell", batch_size: int = 4,
                    seed: int = 0, max_context: int = -1
                    ) -> tuple[NiftiImage, File, File, dict, dict]:
    """dMRI series -> the same series resampled in q-space onto a target scheme.

    Parameters
    ----------
    in_file : NiftiImage
        The acquired series.
    bval : File
        Its FSL b-values.
    bvec : File
        Its FSL b-vectors.
    source_name : str
        BIDS name of the input (keeps cache entries apart).
    method : str
        ``pccnn`` or ``sh``.
    factor : int
        Angular up-sampling factor when no target scheme is given.
    target_bval : File
        Explicit target scheme b-values (optional).
    target_bvec : File
        Explicit target scheme b-vectors (optional).
    weights : File
        PCCNN checkpoint (``pccnn`` only).
    variant : str
        PCCNN variant of ``weights`` (None: inferred from the file).
    context_mode : str
        ``shell``, ``all`` or ``reference`` (see
        :func:`srprep.models.pccnn.inference.predict_subject`).
    batch_size : int
        Tiles per forward pass.
    seed : int
        Seed of the uniform target directions (``factor``).
    max_context : int
        Largest context per forward pass; larger shells are split into averaged subsets
        (0: whole shells; -1: the model's training range).

    Returns
    -------
    out_file : NiftiImage
        The synthesised series.
    bval : File
        Its b-values.
    bvec : File
        Its b-vectors.
    info : dict
        Prediction report.
    scheme : dict
        Target scheme report.
    """
    scheme = workflow.add(TargetScheme(bval=bval, bvec=bvec, factor=factor,
                                       target_bval=target_bval, target_bvec=target_bvec,
                                       seed=seed),
                          name="scheme")
    if method == "pccnn":
        mask = workflow.add(BrainMask(in_file=in_file, bval=bval), name="mask")
        pred = workflow.add(PCCNNPredict(in_file=in_file, bval=bval, bvec=bvec,
                                         target_bval=scheme.bval, target_bvec=scheme.bvec,
                                         mask=mask.mask, weights=weights, variant=variant,
                                         context_mode=context_mode, batch_size=batch_size,
                                         max_context=max_context),
                            name="infer")
    elif method == "sh":
        pred = workflow.add(SHPredict(in_file=in_file, bval=bval, bvec=bvec,
                                      target_bval=scheme.bval, target_bvec=scheme.bvec),
                            name="infer")
    else:
        raise ValueError(f"unknown angular method {method!r}")
    return pred.out_file, scheme.bval, scheme.bvec, pred.info, scheme.info
