"""Sequence generation with a trained AID: retrospective (teacher-forced, all frames in
parallel) and prospective (one frame after another, warm or cold start), with either the
ancestral sampler of a respaced process (learned variance) or the reference's fast
"re-noising" sampler (x0 estimate, fresh noise to the next level).

Cold start deviates from the reference on purpose: the reference reads an empty (zero) slot
of its window at every cold-start step, so each of the first frames is drawn independently
of those already generated; here frame i conditions on frames 0..i-1 (frame 0, which has no
predecessor, on an all-zero frame, as in the reference)."""
from __future__ import annotations

from typing import Callable

import torch

from .diffusion import GaussianDiffusion
from .network import CausalUNet

__all__ = ["reverse_loop", "retrospective", "prospective"]


def reverse_loop(denoise: Callable, shape: tuple, diffusion: GaussianDiffusion, *,
                 sampler: str = "ancestral", clip: bool = True, channel_dim: int = 1,
                 x0_hook: Callable | None = None, generator: torch.Generator | None = None,
                 device="cpu", progress: Callable | None = None) -> torch.Tensor:
    """Run the reverse process of ``diffusion`` (respaced or not).

    ``denoise(x, t_model)`` returns the network output (eps | v along ``channel_dim``).
    ``sampler``: "ancestral" (posterior mean + learned variance) or "renoise" (the
    reference's fast sampler: x0 from eps, optional ``x0_hook`` e.g. data consistency, then
    x = sqrt(abar') x0 + sqrt(1-abar') z with fresh z; no clipping unless asked)."""
    if sampler not in ("ancestral", "renoise"):
        raise ValueError(f"unknown sampler {sampler!r}")
    x = torch.randn(shape, generator=generator, device=device)
    n = diffusion.num_timesteps
    for i in reversed(range(n)):
        t = torch.full((shape[0],), i, dtype=torch.long, device=device)
        with torch.no_grad():
            out = denoise(x, diffusion.model_timesteps(t))
        if sampler == "ancestral" and x0_hook is None:
            x, _ = diffusion.p_sample(out, x, t, clip=clip, channel_dim=channel_dim, generator=generator)
        else:
            eps = out.chunk(2, dim=channel_dim)[0] if diffusion.learn_sigma else out
            x0 = diffusion.predict_x0(x, t, eps)
            if clip and x0_hook is None:
                x0 = x0.clamp(-1, 1)
            if x0_hook is not None:
                x0 = x0_hook(x0, i)
            if i == 0:
                x = x0
            else:
                ac_next = float(diffusion.alphas_cumprod_prev[i])
                z = torch.randn(shape, generator=generator, device=device)
                x = ac_next ** 0.5 * x0 + (1 - ac_next) ** 0.5 * z
        if progress is not None:
            progress(n - i)
    return x


def retrospective(model: CausalUNet, diffusion: GaussianDiffusion, frames: torch.Tensor, *,
                  sampler: str = "ancestral", clip: bool = True,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Given true frames (B, T, C, H, W), draw frame i+1 | frames 0..i for all i at once;
    returns (B, T, C, H, W) (the frames following each position)."""
    def denoise(x, t):
        return model(torch.cat([frames, x], dim=-1), t)

    return reverse_loop(denoise, tuple(frames.shape), diffusion, sampler=sampler, clip=clip,
                        channel_dim=2, generator=generator, device=frames.device)


def prospective(model: CausalUNet, diffusion: GaussianDiffusion, n_frames: int, *,
                window: torch.Tensor | None = None, shape: tuple | None = None,
                sampler: str = "ancestral", clip: bool = True, released_attention: bool = False,
                generator: torch.Generator | None = None,
                progress: Callable | None = None) -> torch.Tensor:
    """Generate ``n_frames`` frames one after another.

    Warm start: ``window`` (B, T0, C, H, W) of real frames conditions the first new frame.
    Cold start: ``window=None`` and ``shape`` = (B, C, H, W). The window slides once it holds
    ``seq_length`` frames. Returns (B, n_frames, C, H, W)."""
    seq_len = model.config.seq_length
    if window is None:
        if shape is None:
            raise ValueError("cold start needs shape=(B, C, H, W)")
        window = torch.zeros((shape[0], 1, *shape[1:]), device=next(model.parameters()).device)
        cold = True
    else:
        cold = False
        window = window[:, -seq_len:]
    out = []
    for k in range(n_frames):
        frame_shape = (window.shape[0], *window.shape[2:])
        win = window

        def denoise(x, t, win=win):
            return model.forward_sample(win, x, t, idx=-1, released_attention=released_attention)

        new = reverse_loop(denoise, frame_shape, diffusion, sampler=sampler, clip=clip,
                           generator=generator, device=window.device)
        out.append(new)
        if cold and k == 0:
            window = new[:, None]                       # drop the zero start frame
        else:
            window = torch.cat([window, new[:, None]], dim=1)[:, -seq_len:]
        if progress is not None:
            progress(k + 1)
    return torch.stack(out, dim=1)
