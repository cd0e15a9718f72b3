"""Training tasks for learned through-plane methods."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python
def PrepareTrainingPair(t1w: NiftiImage, t2w: NiftiImage, atlas: NiftiImage, name: str,
                        register: bool = True) -> dict:
    """Atlas-space, padded, [0, 1]-scaled T1w (guide) and T2w (target) as ``.npy``.

    Args:
        t1w: isotropic T1w.
        t2w: isotropic T2w (the target).
        atlas: registration target / output grid.
        name: subject name (keeps cache entries apart).
        register: rigidly register both to the atlas (else resample by the headers).

    Returns:
        out: paths of the volumes, their shape and voxel size.
    """
    from srprep.core.prepare import prepare_training_pair

    out = prepare_training_pair(t1w, t2w, atlas, Path("volumes").absolute(),
                                register_images=register)
    out["name"] = name
    return out


@define_python(outputs=["weights", "report"])
def TrainThroughPlane(subjects: list[dict], subject_split: dict, config: dict,
                      resume: str | None = None) -> tuple[File, dict]:
    """Train BABY-AI (any size) with Lightning and evaluate it on the test subjects.

    Args:
        subjects: outputs of PrepareTrainingPair.
        subject_split: {"train": [...], "val": [...], "test": [...]} subject names.
        config: TrainConfig fields (network, loss, lr, epochs, ...).
        resume: Lightning checkpoint to resume from.

    Returns:
        weights: official-format state_dict of the best model.
        report: best validation loss, epochs, files, and test metrics vs cubic.
    """
    from srprep.core.device import configure_threads
    from srprep.models.training_run import train_from_prepared

    configure_threads()
    return train_from_prepared(subjects, subject_split, config, Path("training").absolute(),
                               resume)


@define_python
def PrepareVolume(in_file: NiftiImage, name: str, resolution: float | None = None,
                  template: NiftiImage | None = None) -> dict:
    """An isotropic training volume (raw intensities, ``.npy``) for EasySR.

    Args:
        in_file: isotropic image.
        name: volume name (subject and contrast; keeps cache entries apart).
        resolution: training voxel size in mm (default: the image's).
        template: optional rigid registration target (its axes and field of view).

    Returns:
        out: volume path, voxel size, shape and name.
    """
    from srprep.core.prepare import prepare_volume

    out = prepare_volume(in_file, Path("volume").absolute(), resolution=resolution,
                         template=template)
    out["name"] = name
    return out


@define_python(outputs=["generator", "report"])
def TrainEasySR(volumes: list[dict], subject_split: dict, config: dict,
                resume: str | None = None) -> tuple[File, dict]:
    """Adversarial EasySR training, then evaluation on the test subjects vs cubic.

    Args:
        volumes: outputs of PrepareVolume (``name`` starts with the subject name).
        subject_split: {"train": [...], "val": [...], "test": [...]} subject names.
        config: EasySRTrainConfig fields.
        resume: ``checkpoints/last.pt`` of an earlier run.

    Returns:
        generator: best generator (release format) with its ``.json`` sidecar beside it.
        report: history, best validation PSNR and test metrics.
    """
    from srprep.core.device import configure_threads, select_device
    from srprep.models.easysr_train import run_training

    configure_threads()
    config = {**config, "device": config.get("device") or select_device()}
    report = run_training(volumes, subject_split, config, Path("training").absolute(), resume)
    return Path(report["generator"]), report


@define_python
def PrepareDWI(in_file: NiftiImage, bval: File, bvec: File, name: str) -> dict:
    """A PCCNN training subject: brain mask, per-shell xmax JSON and the q-first
    float32 ``.npy`` series (read lazily during training).

    Args:
        in_file, bval, bvec: dMRI series and its FSL gradient table.
        name: subject/run name (keeps cache entries apart).

    Returns:
        out: paths (npy, bval, bvec, mask, xmax) and the name.
    """
    import shutil

    from srprep.core.dwi import dwi_to_npy_file, xmax_file
    from srprep.core.mask import brain_mask_file

    out = Path("subject").absolute()
    out.mkdir(exist_ok=True)
    mask = out / "mask.nii.gz"
    brain_mask_file(in_file, mask, bval_file=bval)
    xmax_file(in_file, bval, bvec, mask, out / "xmax.json")
    dwi_to_npy_file(in_file, out / "dwi.npy")
    shutil.copy(bval, out / "dwi.bval")
    shutil.copy(bvec, out / "dwi.bvec")
    return {"npy": str(out / "dwi.npy"), "bval": str(out / "dwi.bval"),
            "bvec": str(out / "dwi.bvec"), "mask": str(mask), "xmax": str(out / "xmax.json"),
            "name": name}


@define_python(outputs=["weights", "report"])
def TrainPCCNN(subjects: list[dict], subject_split: dict, config: dict,
               resume: str | None = None) -> tuple[File, dict]:
    """Lightning training of a PCCNN variant on prepared subjects.

    Args:
        subjects: outputs of PrepareDWI (``name`` starts with the subject name).
        subject_split: {"train": [...], "val": [...], "test": [...]} subject names.
        config: PCCNNTrainConfig fields (``q`` as a dict).
        resume: Lightning checkpoint to resume from.

    Returns:
        weights: best model in the released checkpoint layout; report: figures.
    """
    from srprep.core.device import configure_threads
    from srprep.models.pccnn_train import run_training

    configure_threads()
    report = run_training(subjects, subject_split, config, Path("training").absolute(), resume)
    return Path(report["weights"]), report


@define_python
def PrepareAIDSlices(in_file: File, name: str, size: int = 64, axis: int = 2,
                     kspace: bool = False) -> dict:
    """Slices for AID training: a NIfTI volume (magnitude, 1 channel, along ``axis``) or a
    fully sampled k-space file (coil-combined complex, 2 channels).

    Args:
        in_file: NIfTI image or k-space file (fastMRI/ISMRMRD HDF5).
        name: volume name (subject first; keeps cache entries apart).
        size: slice size after padding to a square and resizing.
        axis: slicing axis of NIfTI volumes (2 = axial for RAS-like data).
        kspace: ``in_file`` is a k-space file.

    Returns:
        out: ``.npy`` slices (S, C, size, size), their count and channels, and the name.
    """
    import numpy as np

    from srprep.models.aid.data import kspace_to_slices, load_anat_slices

    slices = (kspace_to_slices(in_file, size=size) if kspace
              else load_anat_slices([in_file], axis=axis, size=size)[0])
    out = Path("slices.npy").absolute()
    np.save(out, slices)
    return {"file": str(out), "name": name, "slices": int(slices.shape[0]),
            "channels": int(slices.shape[1])}


@define_python(outputs=["weights", "report"])
def TrainAID(volumes: list[dict], subject_split: dict, config: dict) -> tuple[File, dict]:
    """AID training (Lightning, one or two stages) on the train subjects, then a test on
    the held-out subjects: teacher-forced eps-MSE with and without the preceding slices,
    and simulated 8-coil R=4 reconstructions (AID vs zero-filled vs SENSE-l1).

    Args:
        volumes: outputs of PrepareAIDSlices.
        subject_split: {"train": [...], "val": [...], "test": [...]} subject names.
        config: architecture (tiny_config arguments) and AIDTrainConfig fields, see
            :func:`srprep.models.aid.train.run_training`.

    Returns:
        weights: ``aid.pt`` (EMA weights, release format) with its ``aid.json`` sidecar.
        report: training history and test figures.
    """
    from srprep.core.device import configure_threads
    from srprep.models.aid.train import run_training

    configure_threads()
    report = run_training(volumes, subject_split, config, Path("training").absolute())
    return Path(report["weights"]), report
