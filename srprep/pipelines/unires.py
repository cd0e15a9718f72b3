"""UniRes workflow: co-register the inputs to the first, then reconstruct all channels."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import NiftiImage
from srprep.tasks.unires import CoRegister, ResetOrigin, UniResFit


@define_workflow(outputs=["out_files", "summary", "label_out_files"])
def UniResWorkflow(in_files: list[NiftiImage], channels: list[int], names: list[str],
                   source_names: list[str], options: dict, coregister: bool = True,
                   label_files: list[NiftiImage] | None = None,
                   label_hosts: list[int] | None = None,
                   ) -> tuple[list[NiftiImage], dict, list[NiftiImage]]:
    """Model-based multi-contrast super-resolution of one session.

    Parameters
    ----------
    in_files : list[NiftiImage]
        Images of one session; repeats of a contrast share a channel index.
    channels : list[int]
        Channel index (0..C-1) of each image.
    names : list[str]
        One name per channel (e.g. its BIDS suffix), for output file names.
    source_names : list[str]
        BIDS names of the inputs; keeps cache entries of identical data apart.
    options : dict
        UniRes settings (see :class:`srprep.models.unires.fit.Settings`, plus
        ``common_output``, ``crop``, ``fov``, ``res_origin`` and ``seed``, the seed of the
        registrations' metric sampling).
    coregister : bool
        Rigidly register every image to the first before the fit (antspyx).
    label_files : list[NiftiImage]
        Label maps to carry along (each on the grid of its host image).
    label_hosts : list[int]
        Index of each label map's host image in ``in_files``.

    Returns
    -------
    out_files : list[NiftiImage]
        One super-resolved image per channel on a common grid.
    summary : dict
        Fit report (mode, iterations, noise s.d., contrast, timings, grid).
    label_out_files : list[NiftiImage]
        The label maps on the output grid.
    """
    options = dict(options)
    n_images = len(in_files)
    if options.pop("res_origin", False):
        if not options.get("ct"):
            raise ValueError("res_origin is for CT inputs (set ct)")
        if label_files:   # a label map would lose its host's grid
            raise ValueError("res_origin cannot be combined with label maps")
        in_files = workflow.add(ResetOrigin(in_files=in_files), name="reset_origin").out
    transforms = None
    if coregister and n_images > 1:
        transforms = workflow.add(CoRegister(in_files=in_files, seed=options.get("seed")),
                                  name="coregister").out
    fit = workflow.add(UniResFit(in_files=in_files, channels=channels, names=names,
                                 transforms=transforms, options=options,
                                 label_files=label_files or [], label_hosts=label_hosts or []),
                       name="fit")
    return fit.out_files, fit.summary, fit.label_out_files
