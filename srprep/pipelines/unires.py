"""UniRes workflow: co-register the inputs to the first, then reconstruct all channels."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks._types import NiftiImage
from srprep.tasks.unires import CoRegister, UniResFit


@workflow.define(outputs=["out_files", "summary"])
def UniResWorkflow(in_files: list[NiftiImage], channels: list[int], names: list[str],
                   source_names: list[str], options: dict, coregister: bool = True
                   ) -> tuple[list[NiftiImage], dict]:
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
        ``common_output``).
    coregister : bool
        Rigidly register every image to the first before the fit (antspyx).

    Returns
    -------
    out_files : list[NiftiImage]
        One super-resolved image per channel on a common grid.
    summary : dict
        Fit report (mode, iterations, noise s.d., contrast, timings, grid).
    """
    transforms = None
    if coregister and len(in_files) > 1:
        transforms = workflow.add(CoRegister(in_files=in_files), name="coregister").out
    fit = workflow.add(UniResFit(in_files=in_files, channels=channels, names=names,
                                 transforms=transforms, options=options), name="fit")
    return fit.out_files, fit.summary
