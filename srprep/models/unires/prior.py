"""Multi-channel total variation (UniRes 3): gradients, their adjoint, joint shrinkage,
and the regularisation weights with their coarse-to-fine schedule."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def gradient(y: torch.Tensor, voxel_size: Sequence[float]) -> torch.Tensor:
    """Forward differences ``(y[i+1] - y[i]) / h`` with zero outside the grid (the last
    voxel sees a jump to 0).  ``y``: (X, Y, Z) -> (3, X, Y, Z)."""
    out = torch.empty((3,) + tuple(y.shape), dtype=y.dtype, device=y.device)
    for d in range(3):
        g = out[d]
        n = y.shape[d]
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        last = [slice(None)] * 3
        lo[d], hi[d], last[d] = slice(0, n - 1), slice(1, n), slice(n - 1, n)
        g[tuple(lo)] = (y[tuple(hi)] - y[tuple(lo)]) / voxel_size[d]
        g[tuple(last)] = -y[tuple(last)] / voxel_size[d]
    return out


def divergence_adjoint(g: torch.Tensor, voxel_size: Sequence[float]) -> torch.Tensor:
    """Exact adjoint ``D^T`` of :func:`gradient`: ``(g[i-1] - g[i]) / h`` with ``g[-1] = 0``.
    ``g``: (3, X, Y, Z) -> (X, Y, Z)."""
    out = torch.zeros(g.shape[1:], dtype=g.dtype, device=g.device)
    for d in range(3):
        gd = g[d] / voxel_size[d]
        out -= gd
        n = gd.shape[d]
        dst = [slice(None)] * 3
        src = [slice(None)] * 3
        dst[d], src[d] = slice(1, n), slice(0, n - 1)
        out[tuple(dst)] += gd[tuple(src)]
    return out


def laplacian(y: torch.Tensor, voxel_size: Sequence[float]) -> torch.Tensor:
    """``D^T D y``."""
    return divergence_adjoint(gradient(y, voxel_size), voxel_size)


def joint_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-voxel Euclidean norm over channels and directions: (C, 3, ...) -> (...)."""
    return torch.sqrt((v * v).sum(dim=(0, 1)))


def shrink(v: torch.Tensor, threshold: float) -> torch.Tensor:
    """Joint soft-thresholding: ``v * max(|v| - t, 0) / (|v| + 1e-7)``."""
    norm = joint_norm(v)
    factor = torch.clamp(norm - threshold, min=0) / (norm + 1e-7)
    return v * factor


def schedule(reg_scale: float, levels: int, n_images: int) -> list[float]:
    """Coarse-to-fine multipliers: powers of two from 2^(p+K) down to 2^(p+1), then
    ``reg_scale``, where 2^p is the power of two closest to ``reg_scale`` (by distance,
    as UniRes: 5.8 -> 4, so 32, 16, 8, 5.8; on a tie the smaller power).
    Defaults (4, 3) give 32, 16, 8, 4.  A single image uses ``reg_scale`` only."""
    if n_images <= 1 or levels <= 0:
        return [float(reg_scale)]
    lo = math.floor(math.log2(reg_scale))
    p = lo + 1 if 2 ** (lo + 1) - reg_scale < reg_scale - 2 ** lo else lo
    return [float(2 ** (p + k)) for k in range(levels, 0, -1)] + [float(reg_scale)]
