"""Gaussian diffusion as AID uses it (improved-DDPM conventions): linear betas over 1000
steps, eps prediction, learned-range variance, the hybrid loss (MSE + variational bound
with a stop-gradient mean) averaged over frames, timestep respacing and EMA weights.

Schedules are held in float64 numpy and gathered per step, so a respaced process (e.g. 50
of 1000 steps) is exactly the reference's ``SpacedDiffusion``: new betas from the kept
alpha-bars, the network still called with the original timestep indices."""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch

__all__ = ["GaussianDiffusion", "EMA", "linear_betas", "space_timesteps"]


def linear_betas(steps: int = 1000) -> np.ndarray:
    scale = 1000.0 / steps
    return np.linspace(scale * 1e-4, scale * 0.02, steps, dtype=np.float64)


def space_timesteps(num_timesteps: int, spacing: int | str) -> list[int]:
    """Timesteps kept by a respacing: an int/"N" = N steps spread evenly (ends included),
    "ddimN" = the stride-based DDIM grid, "a,b,c" = per-section counts (guided diffusion)."""
    if isinstance(spacing, str) and spacing.startswith("ddim"):
        n = int(spacing[4:])
        for stride in range(1, num_timesteps):
            if len(range(0, num_timesteps, stride)) == n:
                return list(range(0, num_timesteps, stride))
        raise ValueError(f"cannot make exactly {n} steps with an integer stride")
    sections = [int(s) for s in str(spacing).split(",")]
    if any(s < 1 for s in sections) or sum(sections) > num_timesteps:
        raise ValueError(f"bad respacing {spacing!r} for {num_timesteps} steps")
    size, extra = divmod(num_timesteps, len(sections))
    start, kept = 0, []
    for i, count in enumerate(sections):
        length = size + (1 if i < extra else 0)
        if count == 1:
            kept.append(start)
        else:
            stride = (length - 1) / (count - 1)
            kept += [start + round(stride * j) for j in range(count)]
        start += length
    return sorted(set(kept))


def _gather(arr: np.ndarray, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """arr[t] broadcast to ``like`` (t indexes the batch axis)."""
    out = torch.as_tensor(arr, device=t.device)[t].to(like.dtype)
    return out.view(-1, *([1] * (like.ndim - 1)))


def _normal_kl(m1, lv1, m2, lv2):
    return 0.5 * (-1.0 + lv2 - lv1 + torch.exp(lv1 - lv2) + (m1 - m2) ** 2 * torch.exp(-lv2))


def _std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _discretised_gaussian_loglik(x, mean, log_scale):
    """Log-likelihood of data in [-1, 1] quantised to 256 bins (the decoder term at t=0)."""
    centred = x - mean
    inv = torch.exp(-log_scale)
    cdf_plus = _std_normal_cdf(inv * (centred + 1.0 / 255))
    cdf_min = _std_normal_cdf(inv * (centred - 1.0 / 255))
    log_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    delta = cdf_plus - cdf_min
    return torch.where(x < -0.999, log_plus,
                       torch.where(x > 0.999, log_one_minus_min, torch.log(delta.clamp(min=1e-12))))


def _mean_flat(x):
    return x.mean(dim=tuple(range(1, x.ndim)))


class GaussianDiffusion:
    """A (possibly respaced) DDPM. ``timestep_map[i]`` is the original index of step i,
    which is what the network is conditioned on."""

    def __init__(self, betas: np.ndarray, *, learn_sigma: bool = True,
                 timestep_map: Iterable[int] | None = None):
        self.betas = b = np.asarray(betas, dtype=np.float64)
        self.num_timesteps = len(b)
        self.learn_sigma = learn_sigma
        self.timestep_map = np.asarray(list(timestep_map) if timestep_map is not None
                                       else range(len(b)), dtype=np.int64)
        a = 1.0 - b
        self.alphas_cumprod = ac = np.cumprod(a)
        self.alphas_cumprod_prev = acp = np.append(1.0, ac[:-1])
        self.sqrt_ac, self.sqrt_1mac = np.sqrt(ac), np.sqrt(1.0 - ac)
        self.sqrt_recip_ac, self.sqrt_recipm1_ac = np.sqrt(1.0 / ac), np.sqrt(1.0 / ac - 1)
        self.posterior_variance = pv = b * (1.0 - acp) / (1.0 - ac)
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:]))
        self.posterior_mean_coef1 = b * np.sqrt(acp) / (1.0 - ac)
        self.posterior_mean_coef2 = (1.0 - acp) * np.sqrt(a) / (1.0 - ac)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def linear(cls, steps: int = 1000, *, learn_sigma: bool = True,
               respacing: int | str | None = None) -> "GaussianDiffusion":
        base = cls(linear_betas(steps), learn_sigma=learn_sigma)
        return base.respaced(respacing) if respacing not in (None, "", steps, str(steps)) else base

    def respaced(self, spacing: int | str) -> "GaussianDiffusion":
        keep = set(space_timesteps(self.num_timesteps, spacing))
        last, betas, tmap = 1.0, [], []
        for i, ac in enumerate(self.alphas_cumprod):
            if i in keep:
                betas.append(1.0 - ac / last)
                last = ac
                tmap.append(int(self.timestep_map[i]))
        return GaussianDiffusion(np.array(betas), learn_sigma=self.learn_sigma, timestep_map=tmap)

    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(self.timestep_map, device=t.device)[t]

    # -- forward process ----------------------------------------------------------------
    def q_sample(self, x0, t, noise):
        return _gather(self.sqrt_ac, t, x0) * x0 + _gather(self.sqrt_1mac, t, x0) * noise

    def q_posterior(self, x0, xt, t):
        mean = _gather(self.posterior_mean_coef1, t, xt) * x0 + _gather(self.posterior_mean_coef2, t, xt) * xt
        return mean, _gather(self.posterior_log_variance_clipped, t, xt)

    def predict_x0(self, xt, t, eps):
        return _gather(self.sqrt_recip_ac, t, xt) * xt - _gather(self.sqrt_recipm1_ac, t, xt) * eps

    # -- reverse process ----------------------------------------------------------------
    def p_mean_variance(self, out: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, *,
                        clip: bool = False, channel_dim: int = 1):
        """Network output (eps | v along ``channel_dim``) -> mean, log-variance, x0."""
        if self.learn_sigma:
            eps, v = out.chunk(2, dim=channel_dim)
            lo = _gather(self.posterior_log_variance_clipped, t, xt)
            hi = _gather(np.log(self.betas), t, xt)
            frac = (v + 1) / 2
            log_var = frac * hi + (1 - frac) * lo
        else:
            eps = out
            log_var = _gather(self.posterior_log_variance_clipped, t, xt).expand_as(xt)
        x0 = self.predict_x0(xt, t, eps)
        if clip:
            x0 = x0.clamp(-1, 1)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, log_var, x0, eps

    def p_sample(self, out, xt, t, *, clip=False, channel_dim=1, generator=None):
        mean, log_var, x0, _ = self.p_mean_variance(out, xt, t, clip=clip, channel_dim=channel_dim)
        noise = torch.randn(xt.shape, generator=generator, device=xt.device, dtype=xt.dtype)
        nonzero = (t != 0).to(xt.dtype).view(-1, *([1] * (xt.ndim - 1)))
        return mean + nonzero * torch.exp(0.5 * log_var) * noise, x0

    # -- training -------------------------------------------------------------------------
    def hybrid_loss(self, out: torch.Tensor, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor,
                    noise: torch.Tensor, *, channel_dim: int = 1) -> dict:
        """MSE on eps + variational bound (bits/dim, mean detached) per batch element;
        ``out`` is the network output with eps and v stacked along ``channel_dim``."""
        if not self.learn_sigma:
            mse = _mean_flat((noise - out) ** 2)
            return {"loss": mse, "mse": mse, "vb": torch.zeros_like(mse)}
        eps, v = out.chunk(2, dim=channel_dim)
        frozen = torch.cat([eps.detach(), v], dim=channel_dim)
        mean, log_var, _, _ = self.p_mean_variance(frozen, xt, t, channel_dim=channel_dim)
        true_mean, true_log_var = self.q_posterior(x0, xt, t)
        kl = _mean_flat(_normal_kl(true_mean, true_log_var, mean, log_var)) / math.log(2.0)
        nll = -_mean_flat(_discretised_gaussian_loglik(x0, mean, 0.5 * log_var)) / math.log(2.0)
        vb = torch.where(t == 0, nll, kl)
        mse = _mean_flat((noise - eps) ** 2)
        return {"loss": mse + vb, "mse": mse, "vb": vb}

    def training_losses_temporal(self, model: Callable, seq: torch.Tensor, *, multistage: int = 0,
                                 t: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                                 generator: torch.Generator | None = None,
                                 context_noise: float = 0.0, context_dropout: float = 0.0) -> dict:
        """Teacher-forced loss on sequences (B, T+1, C, H, W): frames 0..T-1 condition,
        frames 1..T are the targets, one diffusion time per sequence.

        Options the reference does not have (0 = off = reference): ``context_noise`` adds
        Gaussian noise of a per-sequence level U(0, context_noise) to the conditioning
        frames, so the model tolerates the imperfect slices it conditions on when
        reconstructing; ``context_dropout`` zeroes all conditioning frames of a sequence
        with that probability, which makes the zero start frame of a cold start (and of
        slice 0 of a reconstruction) a trained case."""
        cond, target = seq[:, :-1], seq[:, 1:]
        b = seq.shape[0]
        if context_noise > 0 or context_dropout > 0:
            shape = (b,) + (1,) * (seq.ndim - 1)
            level = torch.rand(shape, generator=generator).to(seq) * context_noise
            keep = (torch.rand(shape, generator=generator) >= context_dropout).to(seq)
            cond = (cond + level * torch.randn(cond.shape, generator=generator).to(seq)) * keep
        if t is None:
            t = torch.randint(0, self.num_timesteps, (b,), generator=generator).to(seq.device)
        if noise is None:
            noise = torch.randn(target.shape, generator=generator).to(seq.device)
        xt = self.q_sample(target, t, noise)
        out = model(torch.cat([cond, xt], dim=-1), self.model_timesteps(t), multistage=multistage)
        return self.hybrid_loss(out, target, xt, t, noise, channel_dim=2)


class EMA:
    """Exponential moving average of a module's floating-point state (rate 0.9999 in the
    reference); ``copy_to`` writes the averages into a network for sampling.

    ``warmup`` uses min(rate, (1 + n) / (10 + n)) at update n, so a run of a few thousand
    steps is not dominated by the initial weights (the reference has no warm-up; it trains
    for ~10^5 steps)."""

    def __init__(self, module: torch.nn.Module, rate: float = 0.9999, *, warmup: bool = True):
        self.rate, self.warmup, self.updates = rate, warmup, 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()
                       if v.dtype.is_floating_point}

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.updates += 1
        rate = min(self.rate, (1 + self.updates) / (10 + self.updates)) if self.warmup else self.rate
        for k, v in module.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(rate).add_(v.detach(), alpha=1.0 - rate)

    def state_dict(self) -> dict:
        return dict(self.shadow)

    def copy_to(self, module: torch.nn.Module) -> torch.nn.Module:
        module.load_state_dict({**module.state_dict(), **self.shadow})
        return module
