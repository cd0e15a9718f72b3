"""Thin nipype interfaces over :mod:`srprep.core` (for fMRIPrep-style nipype pipelines).

Each interface is a ``SimpleInterface`` whose ``_run_interface`` makes one call into the
same core function the Pydra task uses; outputs are written into the node's working
directory.  :func:`init_sr_wf` builds a ready-made nipype workflow.  nipype is only
imported when this package is used.
"""
from __future__ import annotations

from .steps import (ApplyTransform, BrainMask, PercentileScale, Register, Reslice, UniRes,
                    XmaxPerShell)
from .workflows import init_sr_wf

__all__ = ["ApplyTransform", "BrainMask", "PercentileScale", "Register", "Reslice", "UniRes",
           "XmaxPerShell", "init_sr_wf"]
