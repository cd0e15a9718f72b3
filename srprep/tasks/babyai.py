"""BABY-AI inference task."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File, NiftiImage


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
    from srprep.core.device import configure_threads, gpu_lock, select_device
    from srprep.models.babyai import infer_files

    device = select_device()
    configure_threads()
    out = Path("babyai.nii.gz").absolute()
    with gpu_lock(device):
        info = infer_files(t1w, t2w, weights, out, overlap=overlap, mode=mode,
                           batch_size=batch_size, device=device)
    info["device"] = device
    return out, info
