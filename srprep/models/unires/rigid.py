"""Joint ("unified") rigid registration inside the fit (UniRes 6.3).

Each observation's world-space rigid matrix ``R`` enters its projection.  One
Gauss-Newton step per outer iteration, ``y`` fixed, on ``tau/2 sum_{x!=0} (x - A(R) y)^2``
with a left-multiplicative Lie update ``R <- expm(sum_j d_j B_j) R`` (3 translations in
mm, 3 rotations with generators of off-diagonal entries +-1/sqrt 2, as UniRes), followed
by a backtracking line search (up to 6 halvings, accept the first decrease).

Deviations from UniRes (documented): the Jacobian is exact (derivative of the trilinear
sampling through the real slice profile) instead of a diagonal approximation of the
blur; and the first image is held fixed (gauge fixing), where UniRes lets every image
drift together.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy import linalg
from torch.nn import functional as F


def generators() -> list[np.ndarray]:
    """SE(3) basis: translations x, y, z (mm), then rotations about x, y, z."""
    out = []
    for k in range(3):
        b = np.zeros((4, 4))
        b[k, 3] = 1.0
        out.append(b)
    s = 1 / math.sqrt(2)
    for i, j in ((1, 2), (0, 2), (0, 1)):
        b = np.zeros((4, 4))
        b[i, j], b[j, i] = -s, s
        out.append(b)
    return out


_BASIS = generators()


def rigid_matrix(params) -> np.ndarray:
    """``expm(sum_j q_j B_j)`` for six parameters."""
    return linalg.expm(sum(float(q) * b for q, b in zip(params, _BASIS)))


def _sample_with_gradient(proj, y: torch.Tensor):
    """Samples of ``y`` on the intermediate grid, their derivatives w.r.t. the sample
    positions in output voxel units (3, ...), and the world positions (3, ...)."""
    m = proj.index_map()
    dtype = y.dtype
    axes = [torch.arange(n, dtype=dtype, device=y.device) for n in proj.inter_shape]
    v = torch.meshgrid(*axes, indexing="ij")
    mt = torch.as_tensor(m, dtype=dtype, device=y.device)
    coords = [mt[a, 0] * v[0] + mt[a, 1] * v[1] + mt[a, 2] * v[2] + mt[a, 3] for a in range(3)]
    mask = torch.ones(proj.inter_shape, dtype=torch.bool, device=y.device)
    norm = []
    for a, c in enumerate(coords):
        d = proj.y_shape[a]
        mask &= (c >= -1e-5) & (c <= d - 1 + 1e-5)
        norm.append(2 * c / max(d - 1, 1) - 1)
    grid = torch.stack([norm[2], norm[1], norm[0]], dim=-1)[None].requires_grad_(True)
    with torch.enable_grad():
        out = F.grid_sample(y[None, None], grid, mode="bilinear", padding_mode="zeros",
                            align_corners=True)
        (dgrid,) = torch.autograd.grad(out, grid, grad_outputs=torch.ones_like(out))
    scale = [2.0 / max(proj.y_shape[a] - 1, 1) for a in range(3)]
    deriv = torch.stack([dgrid[0, ..., 2] * scale[0], dgrid[0, ..., 1] * scale[1],
                         dgrid[0, ..., 0] * scale[2]]) * mask
    wm = torch.as_tensor(proj.rigid @ proj.inter_affine, dtype=dtype, device=y.device)
    world = torch.stack([wm[a, 0] * v[0] + wm[a, 1] * v[1] + wm[a, 2] * v[2] + wm[a, 3]
                         for a in range(3)])
    return deriv, world


def _jacobian(proj, y: torch.Tensor) -> list[torch.Tensor]:
    deriv, world = _sample_with_gradient(proj, y)
    to_index = torch.as_tensor(np.linalg.inv(proj.y_affine)[:3, :3], dtype=y.dtype,
                               device=y.device)
    columns = []
    for b in _BASIS:
        bt = torch.as_tensor(b, dtype=y.dtype, device=y.device)
        dworld = [bt[a, 0] * world[0] + bt[a, 1] * world[1] + bt[a, 2] * world[2] + bt[a, 3]
                  for a in range(3)]
        dindex = [sum(to_index[a, k] * dworld[k] for k in range(3)) for a in range(3)]
        directional = sum(deriv[a] * dindex[a] for a in range(3))
        columns.append(proj.blur_down(directional))
    return columns


def update_rigid(obs, y: torch.Tensor, max_halvings: int = 6) -> bool:
    """One Gauss-Newton step on the observation's rigid matrix; True if accepted."""
    proj = obs.projection
    pred = proj.forward(y)
    mask = (obs.data != 0) & (pred != 0)
    resid = (pred - obs.data) * mask
    cols = [c * mask for c in _jacobian(proj, y)]
    grad = np.array([float((c * resid).sum(dtype=torch.float64)) for c in cols])
    hess = np.array([[float((a * b).sum(dtype=torch.float64)) for b in cols] for a in cols])
    hess += 1e-9 * np.trace(hess) * np.eye(6)
    try:
        delta = -np.linalg.solve(hess, grad)
    except np.linalg.LinAlgError:
        return False
    current = obs.data_term(pred)
    saved = proj.rigid.copy()
    for k in range(max_halvings):
        proj.set_rigid(rigid_matrix(delta / 2**k) @ saved)
        if obs.data_term(proj.forward(y)) < current:
            return True
    proj.set_rigid(saved)
    return False
