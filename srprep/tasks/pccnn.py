"""PCCNN tasks: prediction of a target scheme, and training (series preparation,
training and held-out angular evaluation).  The target scheme and the ``sh`` baseline
are in :mod:`srprep.tasks.angular`."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["out_file", "info"])
def PCCNNPredict(in_file: NiftiImage, bval: File, bvec: File, target_bval: File,
                 target_bvec: File, mask: NiftiImage, weights: File, variant: str | None = "PCCNN",
                 context_mode: str = "shell", batch_size: int = 4,
                 max_context: int = -1) -> tuple[NiftiImage, dict]:
    """PCCNN prediction of a target scheme from a dMRI series (device from SRPREP_DEVICE).

    Args:
        in_file, bval, bvec: the acquired series.
        target_bval, target_bvec: the scheme to synthesise (b=0 entries are copied).
        mask: brain mask (tiles without brain are skipped).
        weights: PCCNN checkpoint of ``variant``.
        context_mode: ``shell`` (per-shell context, as trained), ``all`` (all shells
            at once) or ``reference`` (the reference's whole protocol).
        batch_size: tiles per forward pass.
        max_context: split larger shells into averaged subsets of at most this many
            context volumes; 0: whole shells; -1: the model's training range (see
            :func:`srprep.models.pccnn.inference.predict_files`).

    Returns:
        out_file: float32 series of the target scheme; info: xmax values, tiles, chunks.
    """
    from srprep.core.device import configure_threads, gpu_slot, select_device
    from srprep.models.pccnn.inference import predict_files

    device = select_device()
    configure_threads()
    out = Path("pccnn_dwi.nii.gz").absolute()
    with gpu_slot(device) as device:   # a free GPU of the node, or cpu
        info = predict_files(in_file, bval, bvec, target_bval, target_bvec, mask, weights, out,
                             variant=variant, batch_size=batch_size, device=device,
                             context_mode=context_mode, max_context=max_context)
    return out, info


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
    from srprep.models.pccnn.train import run_training

    configure_threads()
    report = run_training(subjects, subject_split, config, Path("training").absolute(), resume)
    return Path(report["weights"]), report
