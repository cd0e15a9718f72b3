"""UniRes end to end on arrays: hyper-parameters, grid, operators, initialisation, fit.

Input images carry a channel index (contrast); several images of one channel are
repeats.  Affines are assumed co-registered already (see :mod:`srprep.core.register`;
the BIDS App does this with antspyx before the fit).
"""
from __future__ import annotations

import logging
import math
import resource
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from srprep.core.noise import NoiseEstimate, estimate_noise
from srprep.core.resample import resample

from .grid import (GRID_RULES, NEAR_SAME_SIZE, _voxel_sizes,  # noqa: F401 (public here too)
                   covering, estimate_memory_gb, output_grid, solve_lattice)
from .projection import Projection
from .solver import ADMM, Observation, Options

log = logging.getLogger("srprep.unires")


@dataclass
class InputImage:
    """One observation: voxels, voxel-to-world affine (co-registered) and channel."""

    data: np.ndarray
    affine: np.ndarray
    channel: int = 0


@dataclass
class Settings:
    """UniRes options (defaults as UniRes 0.3, except where documented in the package)."""

    voxel_size: float | list[float] | None = 1.0   # None: native (denoising)
    grid: str = "auto"                             # see GRID_RULES
    reg_scale: float = 4.0
    levels: int = 3
    max_iter: int = 512
    tolerance: float = 1e-4
    cg_max_iter: int = 20
    cg_tol: float = 1e-3
    scaling: bool = False
    unified_rigid: bool = False
    ct: bool = False
    linear: bool = False
    profile_ip: str = "gauss"
    profile_tp: str = "rect"
    gap: float = 0.0
    device: str = "cpu"
    dtype: str = "float32"


@dataclass
class Result:
    """Reconstructed channels on the output grid and what the fit did."""

    images: np.ndarray                 # (C, X, Y, Z) float32
    affine: np.ndarray
    shape: tuple[int, int, int]
    mode: str
    noise: list[NoiseEstimate | None] = field(default_factory=list)
    iterations: int = 0
    seconds: float = 0.0
    peak_memory_gb: float = 0.0
    history: object = None
    rigid: list[np.ndarray] = field(default_factory=list)
    interleave: list[float] = field(default_factory=list)
    grid_source: str = ""
    lam: list[float] = field(default_factory=list)    # final lambda per channel
    notes: list[str] = field(default_factory=list)    # requested options that did not run

    def summary(self) -> dict:
        return {
            "mode": self.mode, "grid": self.grid_source, "iterations": self.iterations,
            "seconds": round(self.seconds, 2), "peak_memory_gb": round(self.peak_memory_gb, 3),
            "noise_sd": [None if n is None else round(n.sigma, 4) for n in self.noise],
            "noise_method": [None if n is None else n.method for n in self.noise],
            "contrast": [None if n is None else round(n.mu, 4) for n in self.noise],
            "lambda": [float(f"{v:.4g}") for v in self.lam],
            "warnings": [n.warning for n in self.noise if n is not None and n.warning]
            + list(self.notes),
            "interleave_factors": [round(math.exp(s), 5) for s in self.interleave],
        }


def choose_grid(images: list[InputImage], voxel_size, rule: str = "auto"
                ) -> tuple[np.ndarray, tuple, str]:
    """Output grid and mode of a set of images (see :func:`output_grid`)."""
    return output_grid([im.affine for im in images], [im.data.shape for im in images],
                       voxel_size, rule)[:3]


def initial_images(images, n_channels, y_affine, y_shape) -> np.ndarray:
    """Average of clipped trilinear reslices per channel (dividing by the number of
    repeats with a positive value at each voxel, 1 where none)."""
    total = np.zeros((n_channels,) + tuple(y_shape), np.float32)
    count = np.zeros_like(total)
    for im in images:
        r = resample(im.data, im.affine, y_affine, y_shape, order=1, mode="constant")
        np.clip(r, float(im.data.min()), float(im.data.max()), out=r)
        total[im.channel] += r
        count[im.channel] += r > 0
    return total / np.maximum(count, 1)


def _peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def _log_iteration(it: int, info: dict) -> None:
    eta = ""
    if "min_left" in info:   # a lower bound: the stopping rule decides the rest
        m, s = divmod(int(round(info["eta_min_s"])), 60)
        eta = f" | >= {info['min_left']} it, {m}m{s:02d}s left"
    log.info("unires it %3d | s=%-4g | E=%.6e (data %.3e, prior %.3e) | gain=%.2e | cg=%d | "
             "%.2fs%s", it + 1, info["scale"], info["objective"], info["data"], info["prior"],
             info["gain"], info["cg"], info["seconds"], eta)


def _lambda0(noise, images, n_channels, mode, ct) -> list[float]:
    mus = [[] for _ in range(n_channels)]
    for im, est in zip(images, noise):
        mu = est.mu / 4 if (ct and mode == "sr") else est.mu
        mus[im.channel].append(mu)
    return [1 / math.sqrt(n_channels) / max(float(np.mean(m)), 1e-12) for m in mus]


def fit(images: list[InputImage], settings: Settings | None = None, *,
        grid: tuple[np.ndarray, tuple] | None = None, progress=_log_iteration) -> Result:
    """Reconstruct every channel on a common grid.

    Args:
        images: observations (channels numbered 0..C-1).
        settings: options; defaults reproduce UniRes' CLI defaults.
        grid: explicit output (affine, shape); default is the mean space at
            ``settings.voxel_size``.
        progress: called after each iteration with (iteration, info dict).
    """
    s = settings or Settings()
    start = time.perf_counter()
    device = torch.device(s.device)
    dtype = getattr(torch, s.dtype)
    n_channels = max(im.channel for im in images) + 1
    if sorted({im.channel for im in images}) != list(range(n_channels)):
        raise ValueError("channels must be numbered 0..C-1 without gaps")
    rule = s.grid
    if grid is None:
        # --unified-rigid: on the inputs' lattice (the default grid) the samples of the
        # in-fit rigid update sit on the trilinear interpolant's kinks, where moving off
        # the lattice always costs more (interpolation blur) than the motion it corrects:
        # every Gauss-Newton step was rejected and the refinement never left the identity
        # (tests/models/unires/test_fit.py).  It runs on UniRes' mean space instead.
        if s.unified_rigid and rule != "mean" and len(images) > 1:
            rule = "mean"
        y_affine, y_shape, mode, source = output_grid(
            [im.affine for im in images], [im.data.shape for im in images], s.voxel_size,
            rule)
        if rule != s.grid and mode != "identity":
            y_affine, y_shape = covering(y_affine, y_shape, [im.affine for im in images],
                                         [im.data.shape for im in images])
            source += " (--unified-rigid)"
    else:
        y_affine, y_shape = np.asarray(grid[0], float), tuple(int(d) for d in grid[1])
        mode, source = "sr", "given"
    if device.type == "cuda":                  # fail before allocating, naming the device
        from srprep.core.device import check_device_memory

        per_value = torch.finfo(dtype).bits / 32
        check_device_memory("unires", per_value * estimate_memory_gb(
            n_channels, len(images), int(np.prod(y_shape))), str(device))
    lattice = None if s.linear or (rule == "mean" and grid is None) else solve_lattice(
        [im.affine for im in images], y_affine, y_shape)
    target = (y_affine, y_shape)
    if lattice is not None:                    # solved there, resliced onto ``target``
        y_affine, y_shape, index = lattice
    y0 = initial_images(images, n_channels, y_affine, y_shape)
    noise: list[NoiseEstimate | None] = [None] * len(images)
    result = Result(y0, *target, mode, noise, grid_source=source)
    if s.linear:
        result.seconds = time.perf_counter() - start
        return _finish(result, images, n_channels)
    if lattice is not None:
        result.notes.append(
            f"the output grid nearly matches input {index}'s voxel size but not its lattice: "
            f"solved on input {index}'s lattice and resliced once (cubic) onto the output "
            "grid, which avoids a checkerboard the data cannot constrain")
    noise = [estimate_noise(im.data, ct=s.ct) for im in images]
    result.noise = noise
    for i, est in enumerate(noise):
        if est.warning:
            log.warning("unires: image %d: %s", i, est.warning)
    observations = []
    for im, est in zip(images, noise):
        proj = Projection(y_affine, y_shape, im.affine, im.data.shape, mode=mode,
                          profile_ip=s.profile_ip, profile_tp=s.profile_tp, gap=s.gap,
                          dtype=dtype, device=device)
        data = torch.as_tensor(np.ascontiguousarray(im.data), dtype=dtype, device=device)
        observations.append(Observation(data, im.channel, proj, est.precision, s.ct))
    # as UniRes: no interleave scaling unless super-resolving, no joint rigid update for a
    # single image or on a shared input grid -- but say so instead of dropping the option
    scaling = s.scaling and mode == "sr"
    if s.scaling and not scaling:
        result.notes.append("--scale (interleave correction) is off when the inputs already "
                            "have the output voxel size (denoising), as in UniRes")
    unified_rigid = s.unified_rigid and len(images) > 1 and mode != "identity"
    if s.unified_rigid and not unified_rigid:
        result.notes.append("--unified-rigid was not run: " + (
            "a single input" if len(images) == 1 else
            "all inputs share one grid (nothing to re-align)"))
    for note in result.notes:
        log.warning("unires: %s", note)
    options = Options(reg_scale=s.reg_scale, levels=s.levels, max_iter=s.max_iter,
                      tolerance=s.tolerance, cg_max_iter=s.cg_max_iter, cg_tol=s.cg_tol,
                      scaling=scaling, unified_rigid=unified_rigid)
    y = torch.as_tensor(y0, dtype=dtype, device=device)
    admm = ADMM(observations, y, _lambda0(noise, images, n_channels, mode, s.ct),
                _voxel_sizes(y_affine), options)
    log.info("unires: %d image(s), %d channel(s), grid %s at %s mm, mode %s, rho %.4g, "
             "lambda %s", len(images), n_channels, y_shape,
             np.round(_voxel_sizes(y_affine), 3).tolist(), mode, admm.rho,
             [f"{v:.3g}" for v in admm.lam])
    history = admm.run(progress)
    result.lam = [float(v) for v in admm.lam]
    result.images = admm.y.cpu().numpy()
    if lattice is not None:
        result.images = np.stack([resample(c, y_affine, target[0], target[1], order=3,
                                           mode="constant") for c in result.images])
    result.history, result.iterations = history, history.iterations
    result.rigid = [o.projection.rigid.copy() for o in observations]
    result.interleave = [float(o.projection.log_scale) for o in observations]
    result.peak_memory_gb = _peak_memory_gb(device)
    result.seconds = time.perf_counter() - start
    log.info("unires: %d iterations in %.1f s, peak memory %.2f GB", result.iterations,
             result.seconds, result.peak_memory_gb)
    return _finish(result, images, n_channels)


def _finish(result: Result, images, n_channels) -> Result:
    """Clip each channel to its inputs' range; clean FOV for a single input."""
    for c in range(n_channels):
        lo = min(float(im.data.min()) for im in images if im.channel == c)
        hi = max(float(im.data.max()) for im in images if im.channel == c)
        np.clip(result.images[c], lo, hi, out=result.images[c])
    if len(images) == 1:
        im = images[0]
        idx = np.indices(result.shape).reshape(3, -1)
        src = np.linalg.solve(im.affine, result.affine)
        mapped = src[:3, :3] @ idx + src[:3, 3:4]
        inside = np.all((mapped >= -0.5) & (mapped <= np.array(im.data.shape[:3])[:, None] - 0.5),
                        axis=0)
        result.images[0][~inside.reshape(result.shape)] = 0
    return result
