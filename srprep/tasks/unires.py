"""UniRes tasks: co-registration of the inputs, and the reconstruction itself."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python, memory_estimate

from ._types import NiftiImage


@define_python
def CoRegister(in_files: list[NiftiImage], fast: bool = True, seed: int | None = None) -> list:
    """Rigidly register every image to the first one (antspyx, Mattes MI).

    Args:
        in_files: images of one session; the first is the reference.
        fast: quicker optimisation pyramid.
        seed: seed of ANTs' metric sampling (None: srprep's fixed default).

    Returns:
        out: per image, the 4x4 RAS+ matrix (reference point -> image point).
    """
    from srprep.models.unires.files import coregister_files

    return coregister_files(in_files, fast=fast, seed=seed)


@define_python
def ResetOrigin(in_files: list[NiftiImage]) -> list[NiftiImage]:
    """CT inputs with badly-off scanner affines (UniRes ``--res_origin``): reslice each
    onto a rotation-free grid centred on the world origin.

    Args:
        in_files: CT images.

    Returns:
        out: the resliced images (same dtype), in input order.
    """
    from srprep.models.unires.files import reset_origin_file

    return [reset_origin_file(f, Path(f"reset_{i:02d}.nii.gz").absolute())
            for i, f in enumerate(in_files)]


@define_python(outputs=["out_files", "summary", "label_out_files"])
def UniResFit(in_files: list[NiftiImage], channels: list[int], names: list[str],
              transforms: list | None = None, options: dict | None = None,
              label_files: list[NiftiImage] | None = None,
              label_hosts: list[int] | None = None,
              ) -> tuple[list[NiftiImage], dict, list[NiftiImage]]:
    """Multi-contrast MTV super-resolution of co-registered images.

    Args:
        in_files: input images.
        channels: channel (contrast) index of each image.
        names: one name per channel (used for the output file names).
        transforms: output of CoRegister, or None to trust the headers.
        options: UniRes settings (voxel_size, reg_scale, linear, ct, scaling, ...).
        label_files: label maps to carry along onto the output grid.
        label_hosts: index of each label map's host image in ``in_files``.

    Returns:
        out_files: one image per channel on the common grid.
        summary: what the fit did (mode, iterations, noise, timings, grid).
        label_out_files: the label maps on the output grid (one-hot trilinear + argmax).
    """
    from srprep.core.device import configure_threads, gpu_slot, keep_freed_memory, select_device
    from srprep.models.unires.files import unires_files

    opts = dict(options or {})
    device = select_device(opts.pop("device", None))
    configure_threads()
    keep_freed_memory()   # the worker runs this fit only: no page-fault churn per iteration
    out_files = [Path(f"unires_{c:02d}_{n}.nii.gz").absolute() for c, n in enumerate(names)]
    labels = list(label_files or [])
    label_out = [Path(f"unires_label_{i:02d}.nii.gz").absolute() for i in range(len(labels))]
    with gpu_slot(device) as device:   # a free GPU of the node, or cpu
        summary = unires_files(in_files, channels, out_files, transforms, device=device,
                               label_files=labels, label_hosts=list(label_hosts or []),
                               label_out_files=label_out, **opts)
    summary["device"] = device
    return out_files, summary, label_out


def _fit_memory_gb(task) -> float:
    """The fit's working memory on its output grid (headers only), for ``--mem``."""
    import nibabel as nib
    import numpy as np

    from srprep.models.unires.grid import estimate_memory_gb, output_grid

    from .compose import BASE_JOB_GB

    heads = [nib.load(str(f)) for f in task.in_files]
    opts = task.options or {}
    _, shape, _, _ = output_grid([h.affine for h in heads], [h.shape[:3] for h in heads],
                                 opts.get("voxel_size"), opts.get("grid", "auto"))
    return BASE_JOB_GB + estimate_memory_gb(len(set(task.channels)), len(heads),
                                            int(np.prod(shape)))


memory_estimate(UniResFit, _fit_memory_gb)
