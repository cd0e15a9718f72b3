"""Angular (q-space) super-resolution tasks: target scheme, PCCNN and SH prediction."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


@define_python(outputs=["bval", "bvec", "info"])
def TargetScheme(bval: File, bvec: File, factor: int = 2, target_bval: File | None = None,
                 target_bvec: File | None = None, seed: int = 0) -> tuple[File, File, dict]:
    """The gradient scheme to synthesise: given files, or ``factor`` × the acquired
    directions per shell (uniform, electrostatic repulsion) after the acquired b=0s.

    Args:
        bval, bvec: the acquired scheme.
        factor: angular up-sampling factor when no target files are given.
        target_bval, target_bvec: an explicit target scheme (FSL format).
        seed: seed of the uniform directions.

    Returns:
        bval, bvec: target scheme files; info: counts per shell.
    """
    import numpy as np

    from srprep.core.dwi import read_bvals_bvecs, shell_labels, write_bvals_bvecs
    from srprep.core.qspace import upsampled_scheme

    if target_bval is not None:
        tb, tv = read_bvals_bvecs(target_bval, target_bvec)
    else:
        b, v = read_bvals_bvecs(bval, bvec)
        tb, tv = upsampled_scheme(b, v, factor, seed)
    out_bval, out_bvec = Path("target.bval").absolute(), Path("target.bvec").absolute()
    write_bvals_bvecs(tb, tv, out_bval, out_bvec)
    labels = shell_labels(tb)
    info = {"source": "files" if target_bval is not None else f"x{factor} uniform per shell",
            "volumes": int(len(tb)),
            "per_shell": {str(int(s)): int((labels == s).sum()) for s in np.unique(labels)}}
    return out_bval, out_bvec, info


@define_python(outputs=["out_file", "info"])
def PCCNNPredict(in_file: NiftiImage, bval: File, bvec: File, target_bval: File,
                 target_bvec: File, mask: NiftiImage, weights: File, variant: str | None = "PCCNN",
                 context_mode: str = "shell", batch_size: int = 4) -> tuple[NiftiImage, dict]:
    """PCCNN prediction of a target scheme from a dMRI series (device from SRPREP_DEVICE).

    Args:
        in_file, bval, bvec: the acquired series.
        target_bval, target_bvec: the scheme to synthesise (b=0 entries are copied).
        mask: brain mask (tiles without brain are skipped).
        weights: PCCNN checkpoint of ``variant``.
        context_mode: ``shell`` (per-shell context, as trained) or ``all`` (reference).
        batch_size: tiles per forward pass.

    Returns:
        out_file: float32 series of the target scheme; info: xmax values, tiles, chunks.
    """
    from srprep.core.device import configure_threads, gpu_lock, select_device
    from srprep.models.pccnn_predict import predict_files

    device = select_device()
    configure_threads()
    out = Path("pccnn_dwi.nii.gz").absolute()
    with gpu_lock(device):
        info = predict_files(in_file, bval, bvec, target_bval, target_bvec, mask, weights, out,
                             variant=variant, batch_size=batch_size, device=device,
                             context_mode=context_mode)
    return out, info


@define_python(outputs=["out_file", "info"])
def SHPredict(in_file: NiftiImage, bval: File, bvec: File, target_bval: File,
              target_bvec: File) -> tuple[NiftiImage, dict]:
    """Spherical-harmonic angular interpolation per shell (the ``sh`` baseline).

    Args:
        in_file, bval, bvec: the acquired series.
        target_bval, target_bvec: the scheme to synthesise (b=0 entries get the mean b=0).

    Returns:
        out_file: float32 series of the target scheme; info: method and counts.
    """
    from srprep.core.angular import predict_angular_file
    from srprep.core.dwi import read_bvals_bvecs

    tb, tv = read_bvals_bvecs(target_bval, target_bvec)
    out = Path("sh_dwi.nii.gz").absolute()
    info = predict_angular_file("sh", in_file, bval, bvec, tb, tv, out)
    return out, info
