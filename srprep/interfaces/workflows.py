"""nipype workflow factory, fMRIPrep style."""
from __future__ import annotations


def init_sr_wf(*, method: str = "unires", voxel_size: float = 1.0, coregister: bool = True,
               options: dict | None = None, name: str = "sr_wf"):
    """Super-resolution of one session's anatomical images, as a nipype workflow.

    Parameters
    ----------
    method : str
        ``unires`` (joint multi-contrast reconstruction), ``linear`` or ``cubic``.
    voxel_size : float
        Output voxel size in mm.
    coregister : bool
        UniRes only: rigidly co-register the inputs to the first one.
    options : dict
        UniRes settings (``reg_scale``, ``linear``, ``ct``, ``scaling``, ...).

    Inputs
    ------
    in_files
        List of NIfTI images (one session; the first is the reference).

    Outputs
    -------
    out_files
        One super-resolved image per input (per contrast for UniRes).
    summary
        UniRes only: the fit report (noise, iterations, grid, timings).
    """
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from .steps import Reslice, UniRes

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["in_files"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["out_files", "summary"]),
                         name="outputnode")
    if method == "unires":
        node = pe.Node(UniRes(voxel_size=voxel_size, coregister=coregister,
                              options=options or {}), name="unires")
        workflow.connect([(inputnode, node, [("in_files", "in_files")]),
                          (node, outputnode, [("out_files", "out_files"),
                                              ("summary", "summary")])])
    elif method in ("linear", "cubic"):
        node = pe.MapNode(Reslice(voxel_size=[voxel_size], interpolation=method),
                          iterfield=["in_file"], name="reslice")
        workflow.connect([(inputnode, node, [("in_files", "in_file")]),
                          (node, outputnode, [("out_file", "out_files")])])
    else:
        raise ValueError(f"method must be unires, linear or cubic, got {method!r}")
    return workflow
