"""Cartesian multi-coil k-space: centred orthonormal FFTs, undersampling masks, synthetic
coil sensitivities, coil sensitivity estimation (ESPIRiT) and the classical
reconstructions (zero-filled, SENSE with an l1-wavelet prior).

Conventions: images and k-space are (..., ny, nx) complex arrays, phase encoding along the
last axis (columns) as in fastMRI; coil axis first for multi-coil data."""
from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["fft2c", "ifft2c", "line_mask", "birdcage_maps", "forward",
           "adjoint", "zero_filled", "espirit_maps", "sense_l1", "rss",
           "normalise_maps"]


def fft2c(x: np.ndarray) -> np.ndarray:
    """Centred, orthonormal 2-D FFT over the last two axes."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def ifft2c(k: np.ndarray) -> np.ndarray:
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))


def line_mask(n: int, acceleration: int, *, kind: str = "equispaced", acs: int = 0,
              seed: int = 1234, offset: int = 0) -> np.ndarray:
    """Boolean mask of the ``n`` phase-encode lines to keep.

    ``equispaced``: every R-th line starting at ``offset``; ``random``: n // R lines drawn
    uniformly without replacement with NumPy's legacy generator seeded as the reference
    (``np.random.seed(1234)`` then ``choice``), so a seed gives the reference's very lines;
    ``acs`` central lines are added on top (the reference's ``--acs 8``)."""
    if acceleration < 1:
        raise InputError(f"acceleration must be >= 1, got {acceleration}")
    mask = np.zeros(n, dtype=bool)
    if kind == "equispaced":
        mask[offset % acceleration::acceleration] = True
    elif kind == "random":
        legacy = np.random.RandomState(seed)     # not default_rng: other lines for a seed
        mask[legacy.choice(n, size=max(1, n // acceleration), replace=False)] = True
    else:
        raise InputError(f"unknown mask kind {kind!r} (use equispaced or random)")
    if acs:
        c = n // 2
        mask[c - acs // 2: c - acs // 2 + acs] = True
    return mask


def birdcage_maps(ncoils: int, shape: tuple[int, int], *, radius: float = 1.5,
                  phase: bool = True) -> np.ndarray:
    """Smooth synthetic sensitivities of ``ncoils`` loops on a ring around the FOV
    (Biot-Savart-like 1/r fall-off with a position-dependent phase), normalised so that
    sum_c |S_c|^2 = 1 at every voxel (an orthonormal coil combination)."""
    ny, nx = shape
    y, x = np.meshgrid(np.linspace(-1, 1, ny), np.linspace(-1, 1, nx), indexing="ij")
    maps = np.empty((ncoils, ny, nx), dtype=np.complex64)
    for c in range(ncoils):
        ang = 2 * np.pi * c / ncoils
        cy, cx = radius * np.sin(ang), radius * np.cos(ang)
        dist = np.hypot(y - cy, x - cx)
        mag = 1.0 / (dist ** 2 + 0.5)
        ph = np.exp(1j * (np.arctan2(y - cy, x - cx) - ang)) if phase else 1.0
        maps[c] = mag * ph
    return normalise_maps(maps)


def normalise_maps(maps: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.sum(np.abs(maps) ** 2, axis=0, keepdims=True))
    return (maps / np.where(norm > 0, norm, 1)).astype(np.complex64)


def forward(image: np.ndarray, maps: np.ndarray | None, mask: np.ndarray) -> np.ndarray:
    """y = P F S x (single coil when ``maps`` is None); unsampled entries are 0."""
    coils = image[None] * maps if maps is not None else image[None]
    return fft2c(coils) * mask


def adjoint(kspace: np.ndarray, maps: np.ndarray | None, mask: np.ndarray | None = None) -> np.ndarray:
    """x = S^H F^H P y (coil-combined zero-filled image)."""
    k = kspace * mask if mask is not None else kspace
    coils = ifft2c(k)
    if maps is None:
        return coils[0] if coils.ndim == 3 else coils
    return np.sum(np.conj(maps) * coils, axis=0)


def rss(kspace: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(np.abs(ifft2c(kspace)) ** 2, axis=0))


def zero_filled(kspace: np.ndarray, mask: np.ndarray, maps: np.ndarray | None) -> np.ndarray:
    """The zero-filled reconstruction: coil-combined with the maps, or RSS without."""
    if maps is None:
        return rss(kspace * mask)
    return adjoint(kspace, maps, mask)


def espirit_maps(kspace: np.ndarray, *, calib: int = 24, thresh: float = 0.02,
                 crop: float = 0.95) -> np.ndarray:
    """ESPIRiT sensitivities (sigpy) from the calibration region of (coils, ny, nx) k-space.

    The reference used BART ``caldir 30`` on fully sampled data (smooth maps over the whole
    field of view). ESPIRiT's eigenvalue ``crop`` zeroes the maps outside the object; every
    reconstruction here treats that as the image support (zero outside), which the AID data
    consistency enforces explicitly (``crop=0`` keeps maps everywhere). ESPIRiT from the
    measured data's ACS region is what a prospective acquisition allows."""
    try:
        import sigpy.mri
    except ImportError as exc:        # pragma: no cover - sigpy is a dependency
        raise InputError("coil sensitivity estimation needs sigpy (pip install sigpy)") from exc
    maps = sigpy.mri.app.EspiritCalib(np.ascontiguousarray(kspace), calib_width=calib,
                                      thresh=thresh, crop=crop, show_pbar=False).run()
    return np.asarray(maps, dtype=np.complex64)


def sense_l1(kspace: np.ndarray, mask: np.ndarray, maps: np.ndarray, *, lamda: float = 0.005,
             iterations: int = 100) -> np.ndarray:
    """SENSE with an l1-wavelet regulariser (sigpy's L1WaveletRecon), lamda relative to the
    zero-filled image's maximum so one value suits data of any scale."""
    import sigpy.mri

    scale = float(np.abs(zero_filled(kspace, mask, maps)).max()) or 1.0
    y = np.ascontiguousarray((kspace * mask) / scale).astype(np.complex64)
    weights = np.broadcast_to(mask, y.shape[-2:]).astype(np.float32)
    img = sigpy.mri.app.L1WaveletRecon(y, maps, lamda, weights=weights, max_iter=iterations,
                                       show_pbar=False).run()
    return np.asarray(img) * scale


def calibration_width(mask: np.ndarray) -> int:
    """Number of contiguous acquired lines around the centre of k-space."""
    n = mask.shape[-1]
    c = n // 2
    if not mask[c]:
        return 0
    lo = c
    while lo > 0 and mask[lo - 1]:
        lo -= 1
    hi = c
    while hi < n - 1 and mask[hi + 1]:
        hi += 1
    return hi - lo + 1


def prepare_acquisition(kspace: np.ndarray, *, acceleration: int = 4, kind: str = "equispaced",
                        acs: int = 0, seed: int = 1234, maps_from: str = "auto",
                        calib: int = 24) -> dict:
    """Measured data, mask, coil maps and (retrospectively) the reference image.

    Fully sampled input (every phase-encode line present) is undersampled retrospectively
    with :func:`line_mask`; input with missing lines is taken as acquired (prospective) and
    its own line pattern is the mask. ``maps_from``: ``full`` (ESPIRiT on the fully sampled
    data: the reference's oracle maps), ``acquired`` (the measured calibration region only),
    ``auto`` (full when retrospective). Single-coil data get no maps (A = P F)."""
    ks = np.asarray(kspace, dtype=np.complex64)
    if ks.ndim != 4:
        raise InputError(f"k-space must be (slices, coils, readout, phase), got {ks.shape}")
    present = np.abs(ks).reshape(-1, ks.shape[-1]).max(0) > 0
    retrospective = bool(present.all())
    if retrospective:
        mask = line_mask(ks.shape[-1], acceleration, kind=kind, acs=acs, seed=seed)
    else:
        mask = present
        kind, acs = "acquired", calibration_width(mask)
    measured = (ks * mask).astype(np.complex64)
    coils = ks.shape[1]
    maps = None
    source = "none (single coil)"
    if coils > 1:
        if maps_from == "auto":
            maps_from = "full" if retrospective else "acquired"
        if maps_from == "full" and not retrospective:
            raise InputError("coil maps from fully sampled data need fully sampled input")
        if maps_from == "acquired":
            width = calibration_width(mask)
            if width < 8:
                raise InputError(f"the acquired data have {width} central calibration lines; "
                                 "ESPIRiT needs >= 8 (use --acs, or --maps-from full)")
            calib = min(calib, width)
        src = ks if maps_from == "full" else measured
        maps = np.stack([espirit_maps(s, calib=calib) for s in src])
        # voxels ESPIRiT leaves without sensitivity (outside the object) keep zero maps
        source = f"ESPIRiT (sigpy), calibration {calib} lines, from {maps_from} data"
    reference = None
    if retrospective:
        reference = np.stack([adjoint(s, None if maps is None else maps[i]) for i, s in enumerate(ks)])
    n_acq = int(mask.sum())
    info = {"retrospective": retrospective, "mask": kind, "acs_lines": int(acs),
            "acceleration": float(acceleration) if retrospective else round(ks.shape[-1] / n_acq, 3),
            "effective_acceleration": round(ks.shape[-1] / n_acq, 3), "lines": n_acq,
            "coils": int(coils), "coil_maps": source, "shape": list(ks.shape)}
    return {"kspace": measured, "mask": mask, "maps": maps, "reference": reference, "info": info}


def recon_metrics(image: np.ndarray, reference: np.ndarray, *, skip_first: bool = False) -> dict:
    """PSNR (dB, peak = max |reference| of the volume) and NRMSE of magnitudes, per volume,
    as fastMRI reports them; ``skip_first`` leaves out slice 0 (fully sampled in the
    reference's protocol)."""
    a, r = np.abs(image), np.abs(reference)
    if skip_first and len(a) > 1:
        a, r = a[1:], r[1:]
    mse = float(np.mean((a - r) ** 2))
    peak = float(r.max())
    return {"psnr": round(10 * np.log10(peak ** 2 / mse), 3) if mse > 0 else float("inf"),
            "nrmse": round(float(np.linalg.norm(a - r) / max(np.linalg.norm(r), 1e-30)), 5)}
