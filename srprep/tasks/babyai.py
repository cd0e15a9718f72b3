"""BABY-AI tasks: inference, and training (pair preparation on the atlas grid, training
and held-out evaluation)."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["t1w_transform", "t2w_transform", "info"])
def BabyAIAlign(t1w: NiftiImage, t2w: NiftiImage, atlas: NiftiImage, fast: bool = True,
                seed: int | None = None) -> tuple[File, File, dict]:
    """Transforms to the atlas grid: T1w -> atlas, and T2w -> T1w composed with it.

    Args:
        t1w, t2w: the session's pair.
        atlas: the network's grid.
        fast: quicker registration settings.
        seed: seed of ANTs' metric sampling (None: srprep's fixed default).

    Returns:
        t1w_transform, t2w_transform: ANTs affine files (atlas point -> image point).
        info: what was registered and what was already on its target's grid.
    """
    from srprep.models.babyai.inference import align_to_atlas

    t1_out, t2_out = Path("t1w_to_atlas.mat").absolute(), Path("t2w_to_atlas.mat").absolute()
    info = align_to_atlas(t1w, t2w, atlas, t1_out, t2_out, fast=fast, seed=seed)
    return t1_out, t2_out, info


@define_python
def BabyAIToNative(t1w: NiftiImage, t2w: NiftiImage, sr: NiftiImage, t2w_atlas: NiftiImage,
                   t1w_transform: File, t2w_transform: File) -> NiftiImage:
    """The atlas-grid output on the native T1w grid, the T2w interpolated once (see
    :func:`srprep.models.babyai.inference.residual_to_native`).

    Returns:
        out: super-resolved T2w on the T1w grid, in the T2w's dtype and scaling.
    """
    from srprep.models.babyai.inference import residual_to_native

    out = Path("native.nii.gz").absolute()
    return residual_to_native(t1w, t2w, sr, t2w_atlas, t1w_transform, t2w_transform, out)


@define_python(outputs=["out_file", "info"])
def BabyAIInfer(t1w: NiftiImage, t2w: NiftiImage, weights: File, overlap: float = 0.5,
                mode: str = "constant", batch_size: int = 4) -> tuple[NiftiImage, dict]:
    """BABY-AI on atlas-space T1w/T2w scaled to [0, 1] (device from SRPREP_DEVICE).

    Args:
        t1w: T1w on the atlas grid, scaled to [0, 1].
        t2w: interpolated thick-slice T2w on the same grid, scaled to [0, 1].
        weights: BABY-AI checkpoint (raw state_dict).
        overlap: sliding-window overlap (reference 0.5).
        mode: constant (reference uniform averaging) or gaussian blending.
        batch_size: windows per forward pass.

    Returns:
        out_file: isotropic T2w on the atlas grid (normalised units).
        info: inference settings and device.
    """
    from srprep.core.device import configure_threads, gpu_slot, select_device
    from srprep.models.babyai import infer_files

    device = select_device()
    configure_threads()
    out = Path("babyai.nii.gz").absolute()
    with gpu_slot(device) as device:   # a free GPU of the node, or cpu
        info = infer_files(t1w, t2w, weights, out, overlap=overlap, mode=mode,
                           batch_size=batch_size, device=device)
    info["device"] = device
    return out, info


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
    from srprep.models.babyai.train import train_from_prepared

    configure_threads()
    return train_from_prepared(subjects, subject_split, config, Path("training").absolute(),
                               resume)
