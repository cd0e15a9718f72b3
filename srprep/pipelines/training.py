"""Training workflows on a BIDS dataset: BABY-AI (T1w/T2w pairs) and EasySR (isotropic images)."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File, NiftiImage
from srprep.tasks.training import (PrepareAIDSlices, PrepareDWI, PrepareTrainingPair,
                                  PrepareVolume, TrainAID, TrainEasySR, TrainPCCNN,
                                  TrainThroughPlane)


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
        Training settings (see :class:`srprep.models.training.TrainConfig`).
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


@define_workflow(outputs=["weights", "report"])
def PCCNNTraining(dwi: list[NiftiImage], bval: list[File], bvec: list[File], names: list[str],
                  subject_split: dict, config: dict, resume: str | None = None
                  ) -> tuple[File, dict]:
    """Prepare every dMRI run (mask, xmax, q-first npy), then train a PCCNN variant and
    compare it with SH on the held-out subjects.

    Parameters
    ----------
    dwi : list[NiftiImage]
        dMRI runs.
    bval : list[File]
        Their b-values.
    bvec : list[File]
        Their b-vectors.
    names : list[str]
        ``sub-<label>[_ses-<label>]_dwi`` per run; the subject part keys the split.
    subject_split : dict
        Subject-level train/val/test lists.
    config : dict
        PCCNNTrainConfig fields.
    resume : str, optional
        Lightning checkpoint.

    Returns
    -------
    weights : File
        Best model (released LightningModule state_dict layout).
    report : dict
        Training and test figures.
    """
    prepared = workflow.add(
        PrepareDWI().split(("in_file", "bval", "bvec", "name"), in_file=dwi, bval=bval,
                           bvec=bvec, name=names).combine("name"), name="prepare")
    trained = workflow.add(TrainPCCNN(subjects=prepared.out, subject_split=subject_split,
                                      config=config, resume=resume), name="train")
    return trained.weights, trained.report


@define_workflow(outputs=["weights", "report"])
def AIDTraining(images: list[File], names: list[str], subject_split: dict, config: dict,
                size: int = 64, axis: int = 2, kspace: bool = False) -> tuple[File, dict]:
    """Cut every volume (NIfTI or fully sampled k-space) into slices, then train AID and
    test it on the held-out subjects.

    Parameters
    ----------
    images : list[File]
        Anatomical NIfTI volumes, or k-space files when ``kspace``.
    names : list[str]
        ``sub-<label>...`` per volume; the subject part keys the split.
    subject_split : dict
        Subject-level train/val/test lists.
    config : dict
        Architecture and training settings (see :func:`srprep.models.aid.train.run_training`).
    size, axis, kspace :
        Slice size, slicing axis of NIfTI volumes, input kind.

    Returns
    -------
    weights : File
        ``aid.pt`` (EMA weights, release format) with its sidecar.
    report : dict
        Training history and test figures.
    """
    prepared = workflow.add(
        PrepareAIDSlices(size=size, axis=axis, kspace=kspace).split(
            ("in_file", "name"), in_file=images, name=names).combine("name"), name="prepare")
    trained = workflow.add(TrainAID(volumes=prepared.out, subject_split=subject_split,
                                    config=config), name="train")
    return trained.weights, trained.report
