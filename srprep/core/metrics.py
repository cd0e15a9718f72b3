"""Image-quality metrics against a ground truth, restricted to a mask.

The data range for PSNR and SSIM is the ground truth's in-mask range (max - min), so
scores do not depend on background values or on the method's output range.
"""
from __future__ import annotations

import numpy as np


def _prepare(truth: np.ndarray, estimate: np.ndarray, mask: np.ndarray | None):
    truth = np.asarray(truth, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if truth.shape != estimate.shape:
        raise ValueError(f"shape mismatch: truth {truth.shape} vs estimate {estimate.shape}")
    mask = np.ones(truth.shape, bool) if mask is None else np.asarray(mask, bool)
    if mask.shape != truth.shape or not mask.any():
        raise ValueError("mask must have the image shape and select at least one voxel")
    return truth, estimate, mask


def data_range(truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    t = np.asarray(truth)[mask] if mask is not None else np.asarray(truth)
    return float(t.max() - t.min())


def rmse(truth, estimate, mask=None) -> float:
    """Root mean squared error inside ``mask``."""
    t, e, m = _prepare(truth, estimate, mask)
    return float(np.sqrt(np.mean((t[m] - e[m]) ** 2)))


def nrmse(truth, estimate, mask=None) -> float:
    """RMSE divided by the ground truth's in-mask RMS (scale-free)."""
    t, e, m = _prepare(truth, estimate, mask)
    return float(np.sqrt(np.mean((t[m] - e[m]) ** 2) / np.mean(t[m] ** 2)))


def psnr(truth, estimate, mask=None) -> float:
    """Peak signal-to-noise ratio (dB) with the in-mask data range of ``truth``."""
    t, e, m = _prepare(truth, estimate, mask)
    mse = np.mean((t[m] - e[m]) ** 2)
    rng = data_range(t, m)
    return float("inf") if mse == 0 else float(10 * np.log10(rng**2 / mse))


def ssim(truth, estimate, mask=None) -> float:
    """Mean structural similarity over the voxels in ``mask`` (7^3 Gaussian-free window)."""
    from skimage.metrics import structural_similarity

    t, e, m = _prepare(truth, estimate, mask)
    _, smap = structural_similarity(t, e, data_range=data_range(t, m), full=True)
    return float(np.mean(smap[m]))


def stripe_power(truth, estimate, axis: int, period_vox: float, mask=None) -> float:
    """Mean power per voxel of the error ``estimate - truth`` at the slice frequency
    along ``axis`` (``1 / period_vox`` cycles per voxel; the period is the slice spacing
    in voxels of the truth's grid): the energy of the bright/dark stripes that a
    thick-slice reconstruction can leave, measured inside ``mask``'s bounding box with the
    error set to zero outside ``mask``."""
    t, e, m = _prepare(truth, estimate, mask)
    idx = np.argwhere(m)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(idx.min(0), idx.max(0)))
    err = ((e - t) * m)[box]
    n = err.shape[axis]
    spectrum = np.abs(np.fft.rfft(err, axis=axis)) ** 2
    per_frequency = np.moveaxis(spectrum, axis, 0).reshape(spectrum.shape[axis], -1).sum(1)
    k = int(np.argmin(np.abs(np.fft.rfftfreq(n) - 1.0 / period_vox)))
    return float(per_frequency[k] / err.size)
