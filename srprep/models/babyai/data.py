"""Patch datasets for through-plane super-resolution training (torch).

Subjects are prepared once as float32 ``.npy`` volumes on a common grid (normalised to
[0, 1]); they are opened memory-mapped, so a dataset of hundreds of subjects costs
almost no RAM.  The low-resolution input is synthesised on the fly from the isotropic
target with a slice thickness and axis drawn per subject and epoch, so every epoch sees
new degradations; everything is reproducible from the seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from srprep.core.normalise import percentile_scale
from srprep.core.patches import extract, grid_corners, random_corners
from srprep.core.synth import decimate_and_zoom, thick_slices, upsample_to


@dataclass
class Subject:
    """A prepared subject: target (isotropic T2w) and guide (T1w) volumes, both ``.npy``
    on the same grid with voxel size ``voxel_mm``."""

    target: Path
    guide: Path | None = None
    voxel_mm: float = 1.0
    name: str = ""
    #: the target before padding and scaling, and the padding ((before, after) per axis):
    #: what the reference's decimation acts on (``--synthesis reference``)
    raw: Path | None = None
    pad: tuple | None = None

    def open(self) -> tuple[np.ndarray, np.ndarray | None]:
        t = np.load(self.target, mmap_mode="r")
        g = np.load(self.guide, mmap_mode="r") if self.guide is not None else None
        return t, g

    def open_raw(self) -> np.ndarray | None:
        return None if self.raw is None else np.load(self.raw, mmap_mode="r")


@dataclass
class Degradation:
    """How low-resolution inputs are drawn: thickness range (mm), axes, model."""

    thickness: tuple[float, float] = (2.0, 5.0)
    axes: tuple[int, ...] = (0, 1, 2)
    model: str = "physical"          # or "reference" (BABY-AI decimation, integer k)
    profile: str = "box"
    #: Rician noise s.d. range added to the thick slices, in the target's scaled units
    #: (targets are percentile-scaled to [0, 1]).  Why: training pairs come from clean
    #: isotropic images but the thick scans the model will see carry acquisition noise.
    noise: tuple[float, float] = (0.0, 0.0)

    def draw_noise(self, rng: np.random.Generator) -> float:
        """Noise s.d. for one subject and epoch (no draw, rng untouched, without noise)."""
        lo, hi = self.noise
        return float(rng.uniform(lo, hi)) if hi > 0 else 0.0

    def draw(self, rng: np.random.Generator, voxel_mm: float) -> tuple[int, float]:
        axis = int(rng.choice(self.axes))
        lo, hi = self.thickness
        if self.model == "reference":
            ks = [k for k in range(2, 9) if lo <= k * voxel_mm <= hi] or [2]
            return axis, float(rng.choice(ks)) * voxel_mm
        return axis, float(rng.uniform(lo, hi))

    def apply(self, target: np.ndarray, axis: int, thickness: float, voxel_mm: float, *,
              raw: np.ndarray | None = None, pad=None, noise_sd: float = 0.0,
              rng: np.random.Generator | None = None) -> np.ndarray:
        """Low-resolution version of ``target`` interpolated back to its grid.

        ``reference`` reproduces BABY-AI's training pairs: the *unpadded, unscaled* target
        ``raw`` is decimated and zoomed back (factor N / ceil(N / k) along the axis), then
        zero-padded by ``pad`` and scaled on its own (1st/99th percentiles of the positive
        voxels, clipped to [0, 1]), as the reference does to every volume it loads."""
        data = np.asarray(target, dtype=np.float32)
        if noise_sd > 0 and (self.model == "reference" or rng is None):
            raise ValueError("noise needs the physical synthesis and a random generator")
        if self.model == "reference":
            if raw is None or pad is None:
                raise ValueError("--synthesis reference decimates the unpadded, unscaled "
                                 "target: prepare subjects with prepare_training_pair")
            _, up = decimate_and_zoom(np.asarray(raw), int(round(thickness / voxel_mm)), axis)
            scaled, _ = percentile_scale(np.pad(up, [tuple(p) for p in pad]))
            if scaled.shape != data.shape:
                raise ValueError(f"padded reference input {scaled.shape} != target {data.shape}")
            return scaled
        affine = np.diag([voxel_mm] * 3 + [1.0])
        lr, lr_affine = thick_slices(data, affine, axis=axis, thickness=thickness,
                                     profile=self.profile)
        if noise_sd > 0:                 # acquired in the thick slices: Rician magnitude
            lr = np.hypot(lr + rng.normal(0, noise_sd, lr.shape),
                          rng.normal(0, noise_sd, lr.shape)).astype(np.float32)
        return upsample_to(lr, lr_affine, affine, data.shape, order=3)


@dataclass
class PatchSampler:
    """Patch size, number per subject and epoch, and foreground bias."""

    patch: tuple[int, int, int] = (32, 32, 32)
    per_subject: int = 64
    foreground_fraction: float = 0.9
    threshold: float = 0.05


@dataclass
class PatchDataset(Dataset):
    """(input, target) patches: input channels [guide (T1w), degraded target], target
    [isotropic target].  Call :meth:`set_epoch` to draw new degradations and patches;
    with ``fixed=True`` (validation) the draws depend on the seed only."""

    subjects: list[Subject]
    degradation: Degradation = field(default_factory=Degradation)
    sampler: PatchSampler = field(default_factory=PatchSampler)
    seed: int = 0
    fixed: bool = False
    _items: list = field(default_factory=list, repr=False)

    def __post_init__(self):
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else epoch])
        self._items = []
        for index, subject in enumerate(self.subjects):
            target, guide = subject.open()
            axis, thickness = self.degradation.draw(rng, subject.voxel_mm)
            degraded = self.degradation.apply(target, axis, thickness, subject.voxel_mm,
                                              raw=subject.open_raw(), pad=subject.pad,
                                              noise_sd=self.degradation.draw_noise(rng),
                                              rng=rng)
            fg = np.asarray(target) > self.sampler.threshold
            corners = random_corners(target.shape, self.sampler.patch, self.sampler.per_subject,
                                     rng, foreground=fg,
                                     foreground_fraction=self.sampler.foreground_fraction)
            for corner in corners:
                self._items.append((index, degraded, tuple(int(c) for c in corner)))

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, i: int):
        index, degraded, corner = self._items[i]
        target, guide = self.subjects[index].open()
        p = self.sampler.patch
        channels = [extract(degraded, corner, p)]
        if guide is not None:
            channels.insert(0, extract(guide, corner, p))
        x = torch.from_numpy(np.stack(channels))
        y = torch.from_numpy(extract(target, corner, p)[None])
        return x, y


def grid_patches(volume_shape, patch=(32, 32, 32), stride=(16, 16, 16)) -> np.ndarray:
    """Regular corners covering a volume (inference/validation), see ``grid_corners``."""
    return grid_corners(volume_shape, patch, stride)
