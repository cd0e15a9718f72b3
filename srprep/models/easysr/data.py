"""EasySR training data: isotropic volumes and the aligned (thick, thin) patch pairs
drawn from them each epoch (box slice profile along a random axis, both images in the
thick image's 0-255 intensity map, foreground-biased patch corners)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srprep.core.throughplane import box_downsample, zscore_minmax

if TYPE_CHECKING:
    from .train import EasySRTrainConfig


@dataclass
class Volume:
    """An isotropic training volume (``.npy``, raw intensities) and its name."""

    path: Path
    name: str = ""


def _pairs_for_epoch(volumes: list[Volume], config: EasySRTrainConfig, rng: np.random.Generator):
    """Aligned (thick, thin) patch pairs, both in the thick volume's 0-255 map, with the
    thick axis moved to the generator's axis 1."""
    f, p = config.factor, config.patch
    xs, ys = [], []
    for v in volumes:
        hr = np.load(v.path, mmap_mode="r")
        axis = int(rng.choice(config.axes))
        hr = np.moveaxis(np.asarray(hr, np.float32), axis, 1)
        n = (hr.shape[1] // f) * f
        hr = hr[:, :n]
        lr = box_downsample(hr, 1, f)
        scale = zscore_minmax(lr)
        lr, hr = scale.apply(lr), scale.apply(hr)
        if config.noise > 0:
            lr = lr + rng.normal(0, rng.uniform(0, config.noise) * 255, lr.shape).astype(np.float32)
        fg = np.argwhere(hr[: hr.shape[0] - p + 1, : n - p + 1: f, : hr.shape[2] - p + 1] > 255 * 0.1)
        for _ in range(config.patches_per_volume):
            if len(fg) and rng.random() < config.foreground:
                c = fg[rng.integers(len(fg))].copy()
                c[1] *= f
            else:
                c = np.array([rng.integers(0, max(1, s - p + 1)) for s in hr.shape])
                c[1] -= c[1] % f
            c = np.minimum(c, np.array(hr.shape) - p)
            ys.append(hr[c[0]:c[0] + p, c[1]:c[1] + p, c[2]:c[2] + p])
            xs.append(lr[c[0]:c[0] + p, c[1] // f:(c[1] + p) // f, c[2]:c[2] + p])
    order = rng.permutation(len(xs))
    return [xs[i] for i in order], [ys[i] for i in order]
