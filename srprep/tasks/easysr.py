"""EasySR tasks: model-grid preparation, generator inference, return to native space;
training (volume preparation, adversarial training and held-out evaluation)."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["out_file", "info"])
def EasySRPrepare(in_file: NiftiImage, factor: int, resolution: float | None = None,
                  template: NiftiImage | None = None, transform: File | None = None
                  ) -> tuple[NiftiImage, dict]:
    """Resample a thick-slice image onto the generator's grid and scale it to [0, 255].

    Args:
        in_file: thick-slice image (the thick axis is read from its header).
        factor: the generator's up-sampling factor.
        resolution: output voxel size in mm (default: the in-plane voxel size).
        template: optional template whose axes and field of view the model grid follows.
        transform: rigid registration of ``in_file`` to ``template`` (Register's output).

    Returns:
        out_file: model-grid input (float32, 0-255).
        info: grids, intensity map and geometry for :class:`EasySRRestore`.
    """
    from srprep.core.throughplane import prepare_file

    out = Path("easysr_input.nii.gz").absolute()
    info = prepare_file(in_file, out, factor=factor, resolution=resolution, template=template,
                        transform=transform)
    return out, info


@define_python(outputs=["out_file", "info"])
def EasySRInfer(in_file: NiftiImage, weights: File, prepared: dict) -> tuple[NiftiImage, dict]:
    """Apply an EasySR generator along the model grid's thick axis (device from
    SRPREP_DEVICE; one process at a time on a GPU).

    Args:
        in_file: EasySRPrepare's output.
        weights: generator checkpoint (official or srprep-trained).
        prepared: EasySRPrepare's ``info`` (the grids).

    Returns:
        out_file: super-resolved image on the output grid (network units).
        info: factor, axes, shapes and device.
    """
    from srprep.core.device import configure_threads, gpu_slot, select_device
    from srprep.models.easysr import infer_file

    device = select_device()
    configure_threads()
    out = Path("easysr_sr.nii.gz").absolute()
    with gpu_slot(device) as device:   # a free GPU of the node, or cpu
        info = infer_file(in_file, weights, out, prepared["grids"], device=device)
    info["device"] = device
    return out, info


@define_python
def EasySRRestore(in_file: NiftiImage, like: NiftiImage, info: dict) -> NiftiImage:
    """Inverse intensity map and resampling onto the input's field of view at the
    output resolution, in the input's data type.

    Args:
        in_file: EasySRInfer's output.
        like: the original input image.
        info: EasySRPrepare's ``info``.

    Returns:
        out: the super-resolved image in the subject's native space and scale.
    """
    from srprep.core.throughplane import restore_file

    out = Path("easysr.nii.gz").absolute()
    restore_file(in_file, like, out, info)
    return out


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
    from srprep.models.easysr.train import run_training

    configure_threads()
    config = {**config, "device": config.get("device") or select_device()}
    report = run_training(volumes, subject_split, config, Path("training").absolute(), resume)
    return Path(report["generator"]), report
