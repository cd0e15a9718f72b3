"""UniRes tasks: co-registration of the inputs, and the reconstruction itself."""
from __future__ import annotations

from pathlib import Path

from pydra.compose import python

from ._types import NiftiImage


@python.define
def CoRegister(in_files: list[NiftiImage], fast: bool = True) -> list:
    """Rigidly register every image to the first one (antspyx, Mattes MI).

    Args:
        in_files: images of one session; the first is the reference.
        fast: quicker optimisation pyramid.

    Returns:
        out: per image, the 4x4 RAS+ matrix (reference point -> image point).
    """
    from srprep.models.unires.files import coregister_files

    return coregister_files(in_files, fast=fast)


@python.define(outputs=["out_files", "summary"])
def UniResFit(in_files: list[NiftiImage], channels: list[int], names: list[str],
              transforms: list | None = None, options: dict | None = None
              ) -> tuple[list[NiftiImage], dict]:
    """Multi-contrast MTV super-resolution of co-registered images.

    Args:
        in_files: input images.
        channels: channel (contrast) index of each image.
        names: one name per channel (used for the output file names).
        transforms: output of CoRegister, or None to trust the headers.
        options: UniRes settings (voxel_size, reg_scale, linear, ct, scaling, ...).

    Returns:
        out_files: one image per channel on the common grid.
        summary: what the fit did (mode, iterations, noise, timings, grid).
    """
    from srprep.core.device import configure_threads, gpu_lock, select_device
    from srprep.models.unires.files import unires_files

    opts = dict(options or {})
    device = select_device(opts.pop("device", None))
    configure_threads()
    out_files = [Path(f"unires_{c:02d}_{n}.nii.gz").absolute() for c, n in enumerate(names)]
    with gpu_lock(device):
        summary = unires_files(in_files, channels, out_files, transforms, device=device, **opts)
    summary["device"] = device
    return out_files, summary
