"""Three-class tissue segmentation for downstream evaluation (antspyx Atropos, k-means).

Used to compare grey/white-matter volumes segmented from a method's output with those
from the ground truth: a super-resolution method should change tissue volumes as little
as possible.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

#: tissue of the k-means classes sorted by increasing mean intensity, per contrast
CLASS_ORDER = {
    "T1w": ("csf", "gm", "wm"), "UNIT1": ("csf", "gm", "wm"),
    "T2w": ("wm", "gm", "csf"), "FLAIR": ("csf", "wm", "gm"),
}
#: contrasts whose three tissues separate reliably by intensity alone (proton density
#: images do not: GM/WM/CSF differ by ~15 % and k-means splits partial volumes instead)
SEGMENTABLE = tuple(CLASS_ORDER)


@contextmanager
def _private_tempdir() -> Iterator[None]:
    """Route ``tempfile.mktemp`` into a folder removed afterwards.

    ``ants.atropos`` writes its class probability maps to ``mktemp`` names in the system
    temporary folder and never deletes them (~1.8 MB per call): an evaluation of a dataset
    filled /tmp with hundreds of ``antsr*prob0?.nii.gz`` files.
    """
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="srprep-atropos-") as folder:
        tempfile.tempdir = folder
        try:
            yield
        finally:
            tempfile.tempdir = previous


def segment_tissues(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Atropos k-means (3 classes, MRF 0.2) inside ``mask``: labels 1-3 by increasing
    mean intensity, 0 outside."""
    import ants

    img = ants.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    msk = ants.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))
    with _private_tempdir():
        seg = ants.atropos(a=img, x=msk, i="kmeans[3]", m="[0.2,1x1x1]", c="[5,0]",
                           verbose=0)
    labels = np.asarray(seg["segmentation"].numpy(), dtype=np.int16)
    # relabel by mean intensity so that label k is the k-th darkest class
    means = [data[labels == k].mean() if np.any(labels == k) else np.inf for k in (1, 2, 3)]
    out = np.zeros_like(labels)
    for rank, k in enumerate(np.argsort(means), start=1):
        out[labels == k + 1] = rank
    return out


def tissue_volumes(data: np.ndarray, mask: np.ndarray, voxel_volume_ml: float,
                   contrast: str = "T1w") -> dict[str, float]:
    """CSF/GM/WM volumes (mL) of an image segmented inside ``mask``."""
    order = CLASS_ORDER.get(contrast, CLASS_ORDER["T1w"])
    labels = segment_tissues(data, mask)
    return {f"{tissue}_ml": float((labels == k).sum() * voxel_volume_ml)
            for k, tissue in enumerate(order, start=1)}
