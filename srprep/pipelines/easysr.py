"""EasySR workflow: thick-slice image in, through-plane super-resolved image out."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File, NiftiImage
from srprep.tasks.easysr import (EasySRInfer, EasySRPrepare, EasySRRestore, PrepareVolume,
                                 TrainEasySR)
from srprep.tasks.register import Register


@define_workflow(outputs=["out_file", "prepare_info", "infer_info"])
def EasySRWorkflow(in_file: NiftiImage, weights: File, factor: int, source_name: str,
                   resolution: float | None = None, template: NiftiImage | None = None,
                   seed: int | None = None) -> tuple[NiftiImage, dict, dict]:
    """Through-plane super-resolution of one image with an EasySR generator.

    Parameters
    ----------
    in_file : NiftiImage
        Thick-slice image (rat at ~0.15 mm in-plane or human at ~1 mm; any contrast the
        model was trained on).
    weights : File
        Generator checkpoint.
    factor : int
        The generator's up-sampling factor (3 for the released models).
    source_name : str
        BIDS name of the input (keeps cache entries apart).
    resolution : float, optional
        Output voxel size in mm (default: the in-plane voxel size).
    template : NiftiImage, optional
        Rigid registration target; the generator then runs on the template's axes and
        the result is resampled back to the native grid.
    seed : int, optional
        Seed of the registration's metric sampling (None: srprep's fixed default).

    Returns
    -------
    out_file : NiftiImage
        Isotropic image over the input's field of view, in its intensity scale and dtype.
    prepare_info, infer_info : dict
        Geometry, intensity map and inference reports (for the sidecar).
    """
    transform = None
    if template is not None:
        transform = workflow.add(Register(moving=in_file, fixed=template, transform="rigid",
                                          fast=True, seed=seed), name="register").transform
    prep = workflow.add(EasySRPrepare(in_file=in_file, factor=factor, resolution=resolution,
                                      template=template, transform=transform), name="prepare")
    infer = workflow.add(EasySRInfer(in_file=prep.out_file, weights=weights,
                                     prepared=prep.info), name="infer")
    back = workflow.add(EasySRRestore(in_file=infer.out_file, like=in_file, info=prep.info),
                        name="restore")
    return back.out, prep.info, infer.info


@define_workflow(outputs=["generator", "report"])
def EasySRTraining(images: list[NiftiImage], names: list[str], subject_split: dict,
                   config: dict, resolution: float | None = None,
                   template: NiftiImage | None = None, resume: str | None = None
                   ) -> tuple[File, dict]:
    """Prepare isotropic volumes, then train EasySR adversarially and evaluate it.

    Parameters
    ----------
    images : list[NiftiImage]
        Isotropic images (any structural contrast; several per subject allowed).
    names : list[str]
        ``sub-<label>[_ses-<label>]_<suffix>`` per image; the subject part keys the split.
    subject_split : dict
        Subject-level train/val/test lists.
    config : dict
        EasySRTrainConfig fields.
    resolution : float, optional
        Training voxel size in mm (default: each image's own).
    template : NiftiImage, optional
        Rigid registration target.
    resume : str, optional
        ``last.pt`` to continue from.

    Returns
    -------
    generator : File
        Best generator in the release's checkpoint format.
    report : dict
        Training history and test figures.
    """
    prepared = workflow.add(
        PrepareVolume(resolution=resolution, template=template).split(
            ("in_file", "name"), in_file=images, name=names).combine("name"),
        name="prepare")
    trained = workflow.add(TrainEasySR(volumes=prepared.out, subject_split=subject_split,
                                       config=config, resume=resume), name="train")
    return trained.generator, trained.report
