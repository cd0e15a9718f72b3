"""Scoring a reconstruction against its ground truth (used by ``srprep-eval``)."""
from __future__ import annotations

import numpy as np

from .metrics import nrmse, psnr, rmse, ssim


def score(truth: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR (dB), SSIM, NRMSE and RMSE inside ``mask``."""
    return {"psnr": psnr(truth, estimate, mask), "ssim": ssim(truth, estimate, mask),
            "nrmse": nrmse(truth, estimate, mask), "rmse": rmse(truth, estimate, mask)}


def score_files(truth_file, estimate_file, mask_file, *, contrast: str = "T1w",
                segment: bool = True) -> dict[str, float]:
    """Image metrics plus, optionally, tissue-volume errors (GM/WM, % of the truth's;
    only for contrasts in :data:`srprep.core.segment.SEGMENTABLE`)."""
    import nibabel as nib

    from .nifti import load_image, voxel_sizes
    from .segment import SEGMENTABLE, tissue_volumes

    truth = load_image(truth_file, allow_4d=False)
    est = load_image(estimate_file, allow_4d=False)
    if est.shape != truth.shape or not np.allclose(est.affine, truth.affine, atol=1e-3):
        raise ValueError("estimate is not on the ground truth's grid")
    t, e = np.asarray(truth.dataobj), np.asarray(est.dataobj)
    mask = np.asarray(nib.load(str(mask_file)).dataobj) > 0
    out = score(t, e, mask)
    if segment and contrast in SEGMENTABLE:
        vox_ml = float(np.prod(voxel_sizes(truth.affine))) / 1000
        # tissue only: the mask's rim of partial-volume background would become a class
        tissue = mask & (t > 0.15 * np.percentile(t[mask], 99))
        ref = tissue_volumes(t, tissue, vox_ml, contrast)
        got = tissue_volumes(e, tissue, vox_ml, contrast)
        for tissue in ("gm", "wm"):
            out[f"{tissue}_ml_truth"] = ref[f"{tissue}_ml"]
            out[f"{tissue}_ml"] = got[f"{tissue}_ml"]
            out[f"{tissue}_error_pct"] = 100 * (got[f"{tissue}_ml"] - ref[f"{tissue}_ml"]) / ref[f"{tissue}_ml"]
    return out


def score_angular(truth: np.ndarray, estimate: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """dMRI: metrics over the predicted volumes (X, Y, Z, T) inside the brain mask."""
    m4 = np.repeat(np.asarray(mask, bool)[..., None], truth.shape[3], axis=3)
    return {"nrmse": nrmse(truth, estimate, m4), "rmse": rmse(truth, estimate, m4),
            "psnr": psnr(truth, estimate, m4)}
