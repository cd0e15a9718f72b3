"""BABY-AI workflow: atlas space in, super-resolved T2w on the native T1w grid out."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File, NiftiImage
from srprep.tasks.babyai import BabyAIAlign, BabyAIInfer, BabyAIToNative
from srprep.tasks.normalise import InversePercentileScale, PercentileScale
from srprep.tasks.register import ApplyTransform
from srprep.tasks.babyai import PrepareTrainingPair, TrainThroughPlane


@define_workflow(outputs=["out_file", "info", "alignment"])
def BabyAIWorkflow(t1w: NiftiImage, t2w: NiftiImage, atlas: NiftiImage, weights: File,
                   source_names: list[str], overlap: float = 0.5, mode: str = "constant",
                   batch_size: int = 4, seed: int | None = None
                   ) -> tuple[NiftiImage, dict, dict]:
    """Anisotropic T2w + isotropic T1w -> isotropic T2w (BABY-AI).

    The T1w is registered to the atlas and the T2w to the T1w (composed, so the channels
    agree with each other on the atlas grid); inputs already on their target's grid are
    used as they are.

    Parameters
    ----------
    t1w : NiftiImage
        Isotropic T1w (its grid is the output grid).
    t2w : NiftiImage
        Thick-slice T2w of the same session.
    atlas : NiftiImage
        Registration target on BABY-AI's grid (182x218x182 at 1 mm for the released model).
    weights : File
        BABY-AI checkpoint.
    source_names : list[str]
        BIDS names of the inputs (keeps cache entries apart).
    overlap : float
        Sliding-window overlap.
    mode : str
        Window blending (constant = reference, gaussian).
    batch_size : int
        Windows per forward pass.
    seed : int
        Seed of the registrations' metric sampling (None: srprep's fixed default).

    Returns
    -------
    out_file : NiftiImage
        Super-resolved T2w on the native T1w grid, in the T2w's intensity scale and dtype.
    info : dict
        Inference report.
    alignment : dict
        How each input reached the atlas grid.
    """
    align = workflow.add(BabyAIAlign(t1w=t1w, t2w=t2w, atlas=atlas, seed=seed), name="align")
    t1_atlas = workflow.add(ApplyTransform(moving=t1w, reference=atlas,
                                           transform=align.t1w_transform,
                                           interpolation="cubic"), name="t1w_to_atlas")
    t2_atlas = workflow.add(ApplyTransform(moving=t2w, reference=atlas,
                                           transform=align.t2w_transform,
                                           interpolation="cubic"), name="t2w_to_atlas")
    t1_scaled = workflow.add(PercentileScale(in_file=t1_atlas.out), name="scale_t1w")
    t2_scaled = workflow.add(PercentileScale(in_file=t2_atlas.out), name="scale_t2w")
    infer = workflow.add(BabyAIInfer(t1w=t1_scaled.out_file, t2w=t2_scaled.out_file,
                                     weights=weights, overlap=overlap, mode=mode,
                                     batch_size=batch_size), name="infer")
    rescaled = workflow.add(InversePercentileScale(in_file=infer.out_file,
                                                   params=t2_scaled.params, like=t2w),
                            name="rescale")
    native = workflow.add(BabyAIToNative(t1w=t1w, t2w=t2w, sr=rescaled.out,
                                         t2w_atlas=t2_atlas.out,
                                         t1w_transform=align.t1w_transform,
                                         t2w_transform=align.t2w_transform), name="to_native")
    return native.out, infer.info, align.info


@define_workflow(outputs=["weights", "report"])
def BabyAITraining(t1w: list[NiftiImage], t2w: list[NiftiImage], names: list[str],
                   atlas: NiftiImage, subject_split: dict, config: dict, register: bool = True,
                   resume: str | None = None) -> tuple[File, dict]:
    """Prepare every subject in atlas space, then train and evaluate.

    Parameters
    ----------
    t1w : list[NiftiImage]
        Isotropic T1w per subject.
    t2w : list[NiftiImage]
        Isotropic T2w per subject (targets).
    names : list[str]
        Subject names, the keys of ``split``.
    atlas : NiftiImage
        Registration target and training grid.
    subject_split : dict
        Subject-level train/val/test lists.
    config : dict
        Training settings (see :class:`srprep.models.babyai.train.TrainConfig`).
    register : bool
        Register subjects to the atlas (else resample by the headers).
    resume : str
        Lightning checkpoint to resume from.

    Returns
    -------
    weights : File
        Best model, official checkpoint format.
    report : dict
        Training and test figures.
    """
    prepared = workflow.add(
        PrepareTrainingPair(atlas=atlas, register=register).split(
            ("t1w", "t2w", "name"), t1w=t1w, t2w=t2w, name=names).combine("name"),
        name="prepare")
    trained = workflow.add(TrainThroughPlane(subjects=prepared.out, subject_split=subject_split,
                                             config=config,
                                             resume=resume), name="train")
    return trained.weights, trained.report
