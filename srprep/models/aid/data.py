"""Slice sequences for AID training: from anatomical NIfTI volumes (magnitude, 1 channel)
or from k-space files (coil-combined complex, 2 channels).

Differences from the reference loader (documented): each volume is normalised by its own
maximum as in the reference, but slices are zero-padded to a square before resizing (the
reference squashes 176x256 to 128x128, distorting the aspect ratio), resizing is
antialiased bilinear rather than nearest neighbour, empty end slices are trimmed, and a
sequence never straddles two volumes (the reference's running buffer glues the end of one
volume to the start of the next)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["volume_to_slices", "slices_to_volume", "SequenceDataset", "load_anat_slices"]


def _square(a: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Zero-pad the last two axes to a square; return the padding for the inverse."""
    h, w = a.shape[-2:]
    n = max(h, w)
    ph, pw = (n - h) // 2, (n - w) // 2
    pad = ((0, 0),) * (a.ndim - 2) + ((ph, n - h - ph), (pw, n - w - pw))
    return np.pad(a, pad), (ph, n - h - ph, pw, n - w - pw)


def volume_to_slices(data: np.ndarray, *, axis: int = 2, size: int = 64,
                     trim: float = 0.02) -> tuple[np.ndarray, dict]:
    """(X, Y, Z) volume -> (S, size, size) float32 slices along ``axis`` in [0, 1]
    (volume / max). Slices whose maximum is below ``trim`` x the volume maximum are dropped
    at both ends. Returns the slices and what :func:`slices_to_volume` needs to invert."""
    vol = np.moveaxis(np.asarray(data, dtype=np.float32), axis, 0)
    vmax = float(vol.max())
    if not np.isfinite(vmax) or vmax <= 0:
        raise ValueError("volume has no positive intensities")
    vol = np.clip(vol / vmax, 0, None)
    peaks = vol.reshape(vol.shape[0], -1).max(1)
    keep = np.flatnonzero(peaks >= trim)
    lo, hi = (int(keep[0]), int(keep[-1]) + 1) if keep.size else (0, vol.shape[0])
    sq, pad = _square(vol[lo:hi])
    t = torch.from_numpy(np.ascontiguousarray(sq))[:, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True,
                        align_corners=False)[:, 0].numpy()
    meta = dict(axis=axis, shape=vol.shape, range=(lo, hi), pad=pad, scale=vmax,
                square=sq.shape[-1])
    return np.clip(out, 0, None).astype(np.float32), meta


def slices_to_volume(slices: np.ndarray, meta: dict) -> np.ndarray:
    """Inverse of :func:`volume_to_slices` (resize back, unpad, restore scale and axis)."""
    n = meta["square"]
    t = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))[:, None]
    big = F.interpolate(t, size=(n, n), mode="bilinear", align_corners=False)[:, 0].numpy()
    ph0, ph1, pw0, pw1 = meta["pad"]
    big = big[:, ph0:n - ph1, pw0:n - pw1]
    vol = np.zeros(meta["shape"], dtype=np.float32)
    lo, hi = meta["range"]
    vol[lo:hi] = big * meta["scale"]
    return np.moveaxis(vol, 0, meta["axis"])


def load_anat_slices(paths, *, axis: int = 2, size: int = 64) -> list[np.ndarray]:
    """Slices (S, 1, size, size) of every NIfTI volume in ``paths``."""
    import nibabel as nib

    out = []
    for p in paths:
        img = nib.load(str(p))
        data = np.asarray(img.dataobj, dtype=np.float32)
        if data.ndim == 4:
            data = data[..., 0]
        slices, _ = volume_to_slices(data, axis=axis, size=size)
        out.append(slices[:, None])
    return out


class SequenceDataset(torch.utils.data.Dataset):
    """All windows of ``seq_length + 1`` consecutive slices of each volume (stride
    ``stride``), with optional random left-right flips of whole sequences."""

    def __init__(self, volumes: list[np.ndarray], seq_length: int, *, stride: int = 1,
                 flip: bool = True, seed: int = 0):
        self.volumes = [torch.as_tensor(np.asarray(v, dtype=np.float32)) for v in volumes]
        n = seq_length + 1
        self.index = [(i, s) for i, v in enumerate(self.volumes)
                      for s in range(0, v.shape[0] - n + 1, stride)]
        if not self.index:
            raise ValueError(f"no volume has the {n} slices a training sequence needs")
        self.n, self.flip = n, flip
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int) -> torch.Tensor:
        i, s = self.index[k]
        seq = self.volumes[i][s:s + self.n]
        if self.flip and self.rng.random() < 0.5:
            seq = seq.flip(-1)
        return seq


def kspace_to_slices(path, *, size: int = 64, crop: bool = True) -> np.ndarray:
    """Coil-combined complex slices of a fully sampled k-space file as (S, 2, size, size)
    real/imaginary channels, volume / max magnitude (the reference's fastMRI preparation,
    with ESPIRiT maps in place of BART caldir; single-coil data are used as they are)."""
    from srprep.core import kspace as K
    from srprep.core import rawdata

    raw = rawdata.read_kspace(path)
    ks = raw.kspace
    if crop and ks.shape[-2] > ks.shape[-1]:
        ks = rawdata.crop_readout(ks, ks.shape[-1])
    if not rawdata.acquired_lines(ks).all():
        raise ValueError(f"{Path(path).name}: training needs fully sampled k-space")
    if ks.shape[1] == 1:
        imgs = K.ifft2c(ks[:, 0])
    else:
        imgs = np.stack([K.adjoint(s, K.espirit_maps(s)) for s in ks])
    imgs = imgs / max(float(np.abs(imgs).max()), 1e-30)
    sq, _ = _square(np.stack([imgs.real, imgs.imag], 1).astype(np.float32))
    t = torch.from_numpy(np.ascontiguousarray(sq)).flatten(0, 1)[:, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.view(len(imgs), 2, size, size).numpy()
