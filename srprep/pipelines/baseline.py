"""``linear`` and ``cubic``: reslicing baselines every method is compared against."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import NiftiImage
from srprep.tasks.resample import Reslice

INTERPOLATIONS = {"linear": "linear", "cubic": "cubic"}


@define_workflow(outputs=["out_file", "geometry"])
def ResliceWorkflow(in_file: NiftiImage, source_name: str, voxel_size: list[float],
                    interpolation: str = "linear") -> tuple[NiftiImage, dict]:
    """Reslice one image (3-D or 4-D) to an isotropic or anisotropic voxel size.

    Parameters
    ----------
    in_file : NiftiImage
        Image to reslice; it is loaded and fully validated by the reslice step.
    source_name : str
        BIDS file name of the source.  Not used numerically: it keeps cache entries of
        byte-identical inputs from different participants apart.
    voxel_size : list[float]
        Target voxel size (mm).
    interpolation : str
        ``linear`` or ``cubic`` (B-spline).

    Returns
    -------
    out_file : NiftiImage
        Resliced image in the source's axis order, dtype and intensity scale.
    geometry : dict
        Input/output shapes and voxel sizes.
    """
    node = workflow.add(Reslice(in_file=in_file, voxel_size=voxel_size,
                                interpolation=interpolation), name="reslice")
    return node.out_file, node.geometry
