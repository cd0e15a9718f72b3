"""Angular (q-space) subsets and predictions of dMRI series for evaluation."""
from __future__ import annotations

import numpy as np

from .dwi import B0_THRESHOLD, read_bvals_bvecs, write_bvals_bvecs


def subset_indices(bvals: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) volume indices: all b=0 plus every ``factor``-th weighted volume
    are kept; the other weighted volumes are the ones to predict."""
    if factor < 2:
        raise ValueError(f"angular factor must be >= 2, got {factor}")
    b0 = np.flatnonzero(bvals <= B0_THRESHOLD)
    dw = np.flatnonzero(bvals > B0_THRESHOLD)
    keep = np.sort(np.concatenate([b0, dw[::factor]]))
    held = np.setdiff1d(dw, dw[::factor])
    return keep, held


def angular_subset_file(dwi_file, bval_file, bvec_file, factor: int, out_dwi, out_bval,
                        out_bvec) -> list[int]:
    """Write the kept subset; return the held-out indices (into the full series)."""
    from .nifti import load_image, save_like

    img = load_image(dwi_file)
    bvals, bvecs = read_bvals_bvecs(bval_file, bvec_file, img.shape[3])
    keep, held = subset_indices(bvals, factor)
    save_like(np.asarray(img.dataobj)[..., keep], img.affine, out_dwi, img)
    write_bvals_bvecs(bvals[keep], bvecs[keep], out_bval, out_bvec)
    return held.tolist()


def predict_angular_file(method: str, dwi_file, bval_file, bvec_file, target_bvals,
                         target_bvecs, out_file) -> dict:
    """Predict volumes at target (b, direction) pairs with ``method`` (``sh``)."""
    from .nifti import load_image, save_image
    from .sh import sh_interpolate

    img = load_image(dwi_file)
    bvals, bvecs = read_bvals_bvecs(bval_file, bvec_file, img.shape[3])
    if method != "sh":
        raise ValueError(f"unknown angular method {method!r}")
    pred = sh_interpolate(np.asarray(img.dataobj), bvals, bvecs, np.asarray(target_bvals, float),
                          np.asarray(target_bvecs, float))
    save_image(pred, img.affine, out_file, dtype=np.float32)
    return {"method": method, "targets": len(target_bvals)}


def score_angular_file(truth_file, bval_file, bvec_file, held_out: list[int], pred_file) -> dict:
    """Metrics of predicted held-out volumes inside a b=0 brain mask."""
    import nibabel as nib

    from .evaluate import score_angular
    from .mask import brain_mask
    from .nifti import load_image

    truth = load_image(truth_file)
    bvals, _ = read_bvals_bvecs(bval_file, bvec_file, truth.shape[3])
    data = np.asarray(truth.dataobj)
    mask = brain_mask(data, volumes=np.flatnonzero(bvals <= B0_THRESHOLD).tolist() or None)
    pred = np.asarray(nib.load(str(pred_file)).dataobj, dtype=np.float32)
    return score_angular(data[..., held_out], pred, mask)
