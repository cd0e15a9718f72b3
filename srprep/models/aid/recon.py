"""Posterior sampling for undersampled Cartesian k-space with an AID prior
(``fastmri_recon.py`` / ``unfolding.py`` of the reference, spec §4).

Per slice: x ~ N(0, I); for every reverse step, x0 = (x - sqrt(1-abar) eps)/sqrt(abar),
K Landweber steps x0 <- x0 - eta (A^H A x0 - c y~) with A = P F S (A = P F for the
single-coil "unfolding" problem) and y~ = A^H y / s, then full re-noising to the next level.
Slices are reconstructed in order; each result joins the conditioning window of the next.

Deviations from the reference (documented):

* **One scale per volume.** The reference normalises every slice by its own zero-filled
  maximum and appends reconstructions "un-normalised"; here s is the maximum of the
  zero-filled volume, which is how the prior's training data were normalised (volume /
  max), and outputs are returned in the input's k-space units (x * s / c).
* **Slice 0.** The reference takes slice 0 fully sampled (an oracle). That stays available
  (``first_image``) for retrospective studies; by default slice 0 is reconstructed too,
  conditioned on an all-zero frame, so prospective data need nothing fully sampled.
* **Real priors.** A one-channel (magnitude) prior keeps the real part after each DC step
  (spec §7.4); complex two-channel priors use real/imaginary channels as released.
* **Attention.** The conditioning window is used with full causal attention unless
  ``released_attention`` (then only the most recent slice conditions, as released).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from .diffusion import GaussianDiffusion
from .network import CausalUNet
from .sampling import reverse_loop

__all__ = ["DCSettings", "reconstruct_volume", "reconstruct_slice"]


@dataclass
class DCSettings:
    steps: int = 100              #: reverse steps (respacing of the 1000-step process)
    cond_iters: int = 4           #: K gradient steps on the data term per reverse step
    eta: float = 1.0              #: step size
    scale: float = 1.0            #: c, intensity of the data relative to the prior's range
    released_attention: bool = False
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def _fft2c(x):
    return torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"),
                              dim=(-2, -1))


def _ifft2c(k):
    return torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho"),
                              dim=(-2, -1))


class _Operator:
    """A = P F S on one slice (torch, complex64)."""

    def __init__(self, mask: torch.Tensor, maps: torch.Tensor | None):
        self.mask, self.maps = mask, maps

    def adjoint(self, y):
        coils = _ifft2c(y * self.mask)
        return coils[0] if self.maps is None else (self.maps.conj() * coils).sum(0)

    def normal(self, z):
        coils = z[None] if self.maps is None else self.maps * z[None]
        return self.adjoint(_fft2c(coils))


def _to_complex(x: torch.Tensor) -> torch.Tensor:
    return torch.complex(x[:, 0], x[:, 1]) if x.shape[1] == 2 else x[:, 0].to(torch.complex64)


def _to_channels(z: torch.Tensor, channels: int) -> torch.Tensor:
    return torch.stack([z.real, z.imag], 1) if channels == 2 else z.real[:, None]


def reconstruct_slice(model: CausalUNet, diffusion: GaussianDiffusion, y: torch.Tensor,
                      op: _Operator, window: torch.Tensor | None, settings: DCSettings, *,
                      generator: torch.Generator, progress: Callable | None = None) -> torch.Tensor:
    """One slice in model units: y already divided by the volume scale s. ``window``
    (1, T, C, H, W) of previous slices or None (conditioned on a zero frame)."""
    c = model.config.in_channels
    shape = (1, c, *y.shape[-2:])
    target = settings.scale * op.adjoint(y)[None]
    win = window if window is not None else torch.zeros((1, 1, *shape[1:]), device=y.device)

    def denoise(x, t):
        if not model.config.causal:
            return model(x, t)
        return model.forward_sample(win, x, t, idx=-1,
                                    released_attention=settings.released_attention)

    def data_consistency(x0, _i):
        z = _to_complex(x0)
        for _ in range(settings.cond_iters):
            z = z - settings.eta * (op.normal(z[0])[None] - target)
            if c == 1:
                z = z.real.to(torch.complex64)
        return _to_channels(z, c)

    return reverse_loop(denoise, shape, diffusion, sampler="renoise", clip=False,
                        x0_hook=data_consistency, generator=generator, device=y.device,
                        progress=progress)


def reconstruct_volume(model: CausalUNet, kspace: np.ndarray, mask: np.ndarray,
                       maps: np.ndarray | None, settings: DCSettings | None = None, *,
                       first_image: np.ndarray | None = None, device: str = "cpu",
                       progress: bool = False) -> np.ndarray:
    """Reconstruct slices (S, coils, ny, nx) of k-space in order.

    ``mask`` (nx,) or (ny, nx) marks the acquired samples; ``maps`` (S, coils, ny, nx)
    coil sensitivities, or None for single-coil data (``coils`` = 1). Returns (S, ny, nx)
    complex images in the units of the input (coil-combined)."""
    settings = settings or DCSettings()
    model = model.to(device).eval()
    diffusion = GaussianDiffusion.linear(1000, learn_sigma=model.config.learn_sigma,
                                         respacing=settings.steps)
    ks = torch.as_tensor(np.asarray(kspace), dtype=torch.complex64, device=device)
    m = torch.as_tensor(np.broadcast_to(mask, ks.shape[-2:]).astype(np.float32), device=device)
    mp = None if maps is None else torch.as_tensor(np.array(maps), dtype=torch.complex64, device=device)
    ops = [_Operator(m, None if mp is None else mp[s]) for s in range(ks.shape[0])]
    zf = [ops[s].adjoint(ks[s]) for s in range(ks.shape[0])]
    scale = max(float(z.abs().max()) for z in zf) or 1.0
    gen = torch.Generator(device=device).manual_seed(int(settings.seed))
    c, seq_len = model.config.in_channels, model.config.seq_length
    out, window = [], None

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=ks.shape[0] * settings.steps, desc="AID reconstruction", unit="step")
    for s in range(ks.shape[0]):
        if s == 0 and first_image is not None:
            z = torch.as_tensor(first_image, dtype=torch.complex64, device=device)[None] / scale
            x = _to_channels(z * settings.scale, c)
        else:
            x = reconstruct_slice(model, diffusion, ks[s] / scale, ops[s], window, settings,
                                  generator=gen, progress=(lambda _k: bar.update(1)) if bar else None)
        out.append((_to_complex(x)[0] * scale / settings.scale).cpu().numpy())
        frame = x[:, None]
        window = frame if window is None else torch.cat([window, frame], 1)[:, -seq_len:]
    if bar is not None:
        bar.close()
    return np.stack(out)


def simulated_comparison(model: CausalUNet | None, truth: np.ndarray, *, acceleration: int = 4,
                         coils: int = 8, noise: float = 0.01, steps: int = 50, acs: int = 0,
                         extra_models: dict | None = None, seed: int = 0,
                         released_attention: bool = False) -> dict:
    """Simulate multi-coil Cartesian data of ``truth`` slices ((S, C, H, W), C = 1 real or
    2 real/imaginary) with synthetic birdcage maps, equispaced R, complex Gaussian noise of
    ``noise`` x max; reconstruct with zero-filled, SENSE-l1 and AID (and ``extra_models``,
    e.g. a non-causal "Guide"). PSNR/NRMSE of magnitudes over slices 1.. (slice 0 has no
    predecessor to condition on). Returns metrics and the images."""
    from srprep.core import kspace as K

    truth = np.asarray(truth, dtype=np.float32)
    img = truth[:, 0] + 1j * truth[:, 1] if truth.shape[1] == 2 else truth[:, 0].astype(np.complex64)
    shape = img.shape[-2:]
    maps = K.birdcage_maps(coils, shape)
    mask = K.line_mask(shape[-1], acceleration, acs=acs)
    rng = np.random.default_rng(seed)
    ks = np.stack([K.fft2c(maps * x) for x in img])
    sigma = noise * float(np.abs(img).max()) / np.sqrt(2)
    ks = ((ks + sigma * (rng.standard_normal(ks.shape) + 1j * rng.standard_normal(ks.shape)))
          * mask).astype(np.complex64)
    mps = np.broadcast_to(maps, ks.shape).copy()
    recs = {"zerofilled": np.stack([K.zero_filled(k, mask, maps) for k in ks]),
            "sensel1": np.stack([K.sense_l1(k, mask, maps) for k in ks])}
    settings = DCSettings(steps=steps, seed=seed, released_attention=released_attention)
    seconds = {}
    for name, net in (({"aid": model} if model is not None else {}) | (extra_models or {})).items():
        import time

        t0 = time.time()
        recs[name] = reconstruct_volume(net, ks, mask, mps, settings)
        seconds[name] = round((time.time() - t0) / len(img), 3)
    metrics = {k: K.recon_metrics(v, img, skip_first=True) for k, v in recs.items()}
    return {"metrics": metrics, "seconds_per_slice": seconds, "images": recs, "truth": img,
            "setup": {"acceleration": acceleration, "coils": coils, "noise": noise,
                      "steps": steps, "acs": acs, "mask": "equispaced", "slices": len(img)}}
