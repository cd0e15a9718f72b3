"""Even/odd slice intensity correction for interleaved 2-D acquisitions (UniRes 7).

Slices 0, 2, 4, ... along the thick axis are modelled as ``e^s`` times the prediction
and slices 1, 3, 5, ... as ``e^-s``; ``s`` is updated by one Fisher-scoring step with a
backtracking line search, ``y`` fixed, over voxels where the observation is non-zero.
"""
from __future__ import annotations

import torch


def _cost(obs, base: torch.Tensor, factors: torch.Tensor, shape) -> float:
    pred = base * factors.view(shape)
    return obs.data_term(pred)


def update_interleave(obs, y: torch.Tensor, max_halvings: int = 6) -> bool:
    """One scoring step on ``obs.projection.log_scale``; returns True if it changed."""
    proj = obs.projection
    saved = proj.log_scale
    proj.log_scale = 0.0
    base = proj.forward(y)              # unscaled prediction
    proj.log_scale = saved
    shape = [1, 1, 1]
    shape[proj.thick_axis] = -1
    factors = proj.interleave_factors()
    pred = base * factors.view(shape)
    mask = obs.nonzero
    n = obs.data.shape[proj.thick_axis]
    even = (torch.arange(n, device=y.device) % 2 == 0).view(shape)
    resid = (obs.data - pred) * mask
    prod = pred * resid
    grad = obs.tau * float((prod * ~even).sum(dtype=torch.float64)
                           - (prod * even).sum(dtype=torch.float64))
    hess = obs.tau * float(((pred * mask) ** 2).sum(dtype=torch.float64))
    if hess <= 0:
        return False
    current = obs.data_term(pred)
    step = grad / hess
    for k in range(max_halvings):
        candidate = saved - step / 2**k
        proj.log_scale = candidate
        if _cost(obs, base, proj.interleave_factors(), shape) < current:
            return True
    proj.log_scale = saved
    return False
