"""ADMM for the MTV-regularised least-squares problem (UniRes 4-5, 7).

Minimises ``sum_cn tau_cn/2 |x_cn - A_cn y_c|^2 + sum_i |(lambda_c D_d y_c)_i|_2`` with
the splitting ``z = lambda D y`` and an unscaled dual ``w``; the y-step is solved per
channel by warm-started conjugate gradients (<= 20 iterations, max-gain 1e-3 rule), the
regularisation follows the coarse-to-fine schedule, and iteration control is UniRes'
(6-iteration plateaus, minimum 22-23 iterations per level, stop below ``tolerance``).
"""
from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import prior
from .projection import Projection

log = logging.getLogger("srprep.unires")


@dataclass
class Observation:
    """One input image: data on its own grid, its channel, operator and noise precision."""

    data: torch.Tensor
    channel: int
    projection: Projection
    tau: float
    ct: bool = False
    _atx: torch.Tensor | None = field(default=None, repr=False)

    @property
    def nonzero(self) -> torch.Tensor:
        return self.data != 0

    def atx(self) -> torch.Tensor:
        """``A^T x`` (cached until the operator changes)."""
        if self._atx is None:
            self._atx = self.projection.adjoint(self.data)
        return self._atx

    def invalidate(self) -> None:
        self._atx = None

    def data_term(self, pred: torch.Tensor) -> float:
        """``tau/2 sum_{x != 0} (x - A y)^2``."""
        res = (self.data - pred) * self.nonzero
        return 0.5 * self.tau * float((res * res).sum(dtype=torch.float64))


@dataclass
class Options:
    """Fit settings (UniRes defaults)."""

    reg_scale: float = 4.0
    levels: int = 3
    max_iter: int = 512
    tolerance: float = 1e-4
    cg_max_iter: int = 20
    cg_tol: float = 1e-3
    scaling: bool = False
    unified_rigid: bool = False


@dataclass
class History:
    """Per-iteration record: objective, its parts, gain, regularisation multiplier."""

    objective: list[float] = field(default_factory=list)
    data_term: list[float] = field(default_factory=list)
    prior_term: list[float] = field(default_factory=list)
    gain: list[float] = field(default_factory=list)
    scale: list[float] = field(default_factory=list)
    cg_iterations: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.scale)


def conjugate_gradient(apply: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor,
                       x: torch.Tensor, *, max_iter: int = 20, tol: float = 1e-3
                       ) -> tuple[torch.Tensor, int]:
    """Warm-started CG without preconditioner and UniRes' max-gain stopping rule:
    with ``q_k = a_k (a_k p'Ap + 2 r'r)``, stop when ``|q_k-1 - q_k| / range(q) < tol``,
    where ``r`` is the residual *after* the step (as UniRes/nitorch)."""
    r = b - apply(x)
    p = r.clone()
    rr = float((r * r).sum(dtype=torch.float64))
    qs: list[float] = []
    k = 0
    for k in range(1, max_iter + 1):
        if rr == 0:
            break
        ap = apply(p)
        pap = float((p * ap).sum(dtype=torch.float64))
        if pap <= 0:
            break
        alpha = rr / pap
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = float((r * r).sum(dtype=torch.float64))
        qs.append(alpha * (alpha * pap + 2 * rr_new))
        if len(qs) > 1:
            spread = max(qs) - min(qs)
            if spread > 0 and abs(qs[-2] - qs[-1]) / spread < tol:
                break
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, k


class ADMM:
    """State and iterations of the MTV-ADMM fit.

    Args:
        observations: the inputs.
        y: initial images, (C, X, Y, Z) on the output grid (updated in place).
        lambda0: per-channel base weights ``C^-1/2 / mean(mu_c)`` (CT: mu/4).
        voxel_size: output voxel size (mm) for the finite differences.
    """

    def __init__(self, observations: list[Observation], y: torch.Tensor, lambda0: list[float],
                 voxel_size, options: Options):
        self.obs, self.y, self.opts = observations, y, options
        self.lambda0 = [float(v) for v in lambda0]
        self.h = [float(v) for v in voxel_size]
        self.n_channels = y.shape[0]
        n_images = len(observations)
        self.levels = prior.schedule(options.reg_scale, options.levels, n_images)
        shape = (self.n_channels, 3) + tuple(y.shape[1:])
        self.z = torch.zeros(shape, dtype=y.dtype, device=y.device)
        self.w = torch.zeros_like(self.z)
        self.level = 0
        self.history = History()
        self._set_level(0)

    # ---------------------------------------------------------------- parameters
    def _set_level(self, level: int) -> None:
        self.level = level
        s = self.levels[level]
        self.lam = [s * l0 for l0 in self.lambda0]
        taus = [o.tau for o in self.obs]
        if any(o.ct for o in self.obs):
            self.rho = 1.0
        else:
            self.rho = math.sqrt(sum(taus) / len(taus)) / (sum(self.lam) / len(self.lam))

    # ---------------------------------------------------------------- steps
    def _channel_obs(self, c: int) -> list[Observation]:
        return [o for o in self.obs if o.channel == c]

    def update_y(self) -> int:
        total = 0
        for c in range(self.n_channels):
            obs = self._channel_obs(c)
            lam, rho = self.lam[c], self.rho

            def apply(v, obs=obs, lam=lam, rho=rho):
                out = rho * lam**2 * prior.laplacian(v, self.h)
                for o in obs:
                    out += o.tau * o.projection.normal(v)
                return out

            b = -lam * prior.divergence_adjoint(self.w[c] - rho * self.z[c], self.h)
            for o in obs:
                b += o.tau * o.atx()
            self.y[c], n = conjugate_gradient(apply, b, self.y[c], max_iter=self.opts.cg_max_iter,
                                              tol=self.opts.cg_tol)
            total += n
        return total

    def scaled_gradients(self) -> torch.Tensor:
        return torch.stack([self.lam[c] * prior.gradient(self.y[c], self.h)
                            for c in range(self.n_channels)])

    def objective(self, ldy: torch.Tensor) -> tuple[float, float]:
        data = sum(o.data_term(o.projection.forward(self.y[o.channel])) for o in self.obs)
        reg = float(prior.joint_norm(ldy).sum(dtype=torch.float64))
        return data, reg

    def update_z_w(self, ldy: torch.Tensor) -> None:
        self.z = prior.shrink(ldy + self.w / self.rho, 1.0 / self.rho)
        self.w += self.rho * (ldy - self.z)

    # ---------------------------------------------------------------- loop
    def run(self, callback: Callable[[int, dict], None] | None = None) -> History:
        """Iterate until the last regularisation level has converged (or max_iter)."""
        from .interleave import update_interleave
        from .rigid import update_rigid

        opts, hist = self.opts, self.history
        at_level, small = 0, 0
        for it in range(opts.max_iter):
            start = time.perf_counter()
            cg_its = self.update_y()
            ldy = self.scaled_gradients()
            if opts.tolerance > 0:
                data, reg = self.objective(ldy)
            else:
                data = reg = 0.0
            self.update_z_w(ldy)
            del ldy
            energy = data + reg
            hist.objective.append(energy)
            hist.data_term.append(data)
            hist.prior_term.append(reg)
            hist.scale.append(self.levels[self.level])
            hist.cg_iterations.append(cg_its)
            gain = self._gain()
            hist.gain.append(gain)
            at_level += 1
            last = self.level == len(self.levels) - 1
            threshold = opts.tolerance if last else 1e-3
            # plateau counting starts after 16 (21 at the last level) iterations: minimum
            # 22 iterations per level and 27 at the last one (UniRes: >= 93 in total)
            if at_level > (21 if last else 16):
                small = small + 1 if abs(gain) < threshold else 0
            if opts.scaling:
                for o in self.obs:
                    if not o.ct and update_interleave(o, self.y[o.channel]):
                        o.invalidate()
            if opts.unified_rigid and it >= 1:      # UniRes: from the second iteration on
                for i, o in enumerate(self.obs):
                    if i > 0 and update_rigid(o, self.y[o.channel]):  # image 0 fixes the gauge
                        o.invalidate()
            hist.seconds.append(time.perf_counter() - start)
            if callback is not None:
                left = min(self._min_iterations_left(at_level, small), opts.max_iter - it - 1)
                callback(it, {"scale": hist.scale[-1], "objective": energy, "data": data,
                              "prior": reg, "gain": gain, "cg": cg_its,
                              "seconds": hist.seconds[-1], "min_left": left,
                              "eta_min_s": left * sum(hist.seconds) / len(hist.seconds)})
            if small >= 6:
                if last:
                    break
                self._set_level(self.level + 1)
                at_level, small = 0, 0
        return hist

    def _min_iterations_left(self, at_level: int, small: int) -> int:
        """Fewest iterations the stopping rule allows from here: the current level needs
        its plateau (6 small gains, counted after 16 iterations, 21 at the last level),
        each later level at least 22 (the last 27)."""
        last = len(self.levels) - 1
        start = 21 if self.level == last else 16
        here = (start - at_level + 6) if at_level <= start else 6 - small
        later = sum(27 if lv == last else 22 for lv in range(self.level + 1, last + 1))
        return max(0, here) + later

    def _gain(self) -> float:
        e = self.history.objective
        if len(e) < 2:
            return math.inf
        spread = max(e) - min(e)
        return 0.0 if spread == 0 else (e[-2] - e[-1]) / spread
