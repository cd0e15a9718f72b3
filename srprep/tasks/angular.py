"""Angular (q-space) tasks shared by every angular method: the target scheme, and the
``sh`` baseline's prediction (PCCNN's is :class:`srprep.tasks.pccnn.PCCNNPredict`)."""
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
    from srprep.core.dwi import upsampled_scheme

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
