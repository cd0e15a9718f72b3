"""Multi-contrast phantoms with known ground truth, for tests, benchmarks and evaluation.

Following UniRes' own test protocol, the ground truth is placed on the grid the
reconstruction will choose: the thick-slice geometries come first, the output grid is
computed (``grid``: srprep's default rule, or ``"mean"``, the reference's mean space,
for the reference's own figures), the truth is rasterised at its voxel centres, and each
observation is simulated with the forward operator plus Rician noise.  Errors are then
pure reconstruction errors (no lattice offset between truth and output).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from srprep.core.resample import resample

from .fit import InputImage
from .grid import output_grid
from .projection import Projection

#: (contrast, thick axis) of the three-stack protocol: T1w sagittal, T2w coronal, PDw axial
STACKS = (("T1w", 0), ("T2w", 1), ("PDw", 2))


@dataclass
class Phantom:
    """Simulated observations and the truth on the output grid."""

    images: list[InputImage]
    truth: np.ndarray          # (C, X, Y, Z)
    affine: np.ndarray
    shape: tuple[int, int, int]
    mask: np.ndarray           # head (truth > 0 in any channel)
    names: list[str]
    sigma: list[float]


def thick_geometry(box_mm: np.ndarray, origin: np.ndarray, voxel: float, axis: int,
                   thickness: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Affine/shape of a stack with ``thickness`` mm slices along ``axis`` over a box."""
    sizes = np.full(3, voxel, float)
    sizes[axis] = thickness
    shape = tuple(int(round(b / s)) for b, s in zip(box_mm, sizes))
    affine = np.diag(list(sizes) + [1.0])
    affine[:3, 3] = origin + (sizes - voxel) / 2   # stack edges on the box edges
    return affine, shape


def mni_phantom(*, voxel: float = 2.0, thickness: float = 6.0, noise: float = 0.03,
                seed: int = 0, motion: list[np.ndarray] | None = None,
                interleave: list[float] | None = None, grid: str = "auto") -> Phantom:
    """Three contrasts from the MNI152 template, each thick-sliced along its own axis.

    Args:
        voxel: output/in-plane voxel size (mm).
        thickness: slice thickness (mm) of every stack.
        noise: Rician noise s.d. as a fraction of the white-matter intensity (~1000).
        motion: optional world-space rigid matrix per stack (head moved between scans;
            the headers do not know it).
        interleave: optional even/odd intensity factors ``e^s`` per stack.
        grid: output-grid rule the truth is placed on (:data:`.grid.GRID_RULES`).
    """
    from srprep.core.phantoms import truth_images

    images_1mm, affine_1mm = truth_images(1.0)
    box = np.array(next(iter(images_1mm.values())).shape) * 1.0
    origin = affine_1mm[:3, 3]
    geoms = [thick_geometry(box, origin, voxel, axis, thickness) for _, axis in STACKS]
    y_affine, y_shape = output_grid([g[0] for g in geoms], [g[1] for g in geoms], voxel,
                                    grid)[:2]
    rng = np.random.default_rng(seed)
    truth, obs, sigmas = [], [], []
    for c, ((name, _), (x_affine, x_shape)) in enumerate(zip(STACKS, geoms)):
        t = resample(images_1mm[name], affine_1mm, y_affine, y_shape, order=3)
        t = np.clip(t, 0, None)
        truth.append(t)
        proj = Projection(y_affine, y_shape, x_affine, x_shape, dtype=torch.float64)
        if motion is not None:
            proj.set_rigid(motion[c])
        if interleave is not None:
            proj.log_scale = float(np.log(interleave[c]))
        clean = proj.forward(torch.as_tensor(t, dtype=torch.float64)).numpy()
        sigma = noise * 1000.0
        noisy = np.sqrt((clean + rng.normal(0, sigma, clean.shape)) ** 2
                        + rng.normal(0, sigma, clean.shape) ** 2)
        obs.append(InputImage(noisy.astype(np.float32), x_affine, c))
        sigmas.append(sigma)
    truth = np.stack(truth).astype(np.float32)
    return Phantom(obs, truth, y_affine, y_shape, truth.max(0) > 1.0,
                   [n for n, _ in STACKS], sigmas)


#: intensities per label (background, scalp, CSF, GM, WM, lesion) of the ellipsoid phantom
ELLIPSOID_INTENSITIES = {"T1w": (0, 600, 300, 800, 1100, 500), "T2w": (0, 700, 2000, 1100, 800, 1600),
                         "PDw": (0, 900, 1400, 1200, 1000, 1300)}


def ellipsoid_labels(affine: np.ndarray, shape) -> np.ndarray:
    """UniRes' test phantom (spec section 14): nested ellipsoids, ventricles, lesions and a
    2 mm GM slab inside WM, painted at the world positions of a grid's voxel centres."""
    idx = np.indices(shape).reshape(3, -1).astype(float)
    w = (affine[:3, :3] @ idx + affine[:3, 3:4]).reshape((3,) + tuple(shape))
    centre = np.array([19.5, 23.5, 19.5])

    def inside(axes, offset=(0, 0, 0)):
        c = (centre + np.asarray(offset, float))[:, None, None, None]
        return (((w - c) / np.asarray(axes, float)[:, None, None, None]) ** 2).sum(0) <= 1

    lab = np.zeros(shape, int)
    for value, axes in ((1, (18, 22, 18)), (2, (16, 20, 16)), (3, (14.5, 18.5, 14.5)),
                        (4, (11, 14, 11))):
        lab[inside(axes)] = value
    for dx in (-3.5, 3.5):
        lab[inside((2, 5, 2.5), (dx, 0, 1.5))] = 2
    for r, off in ((1.5, (5, 6, -4)), (1.25, (-6, -7.5, 3)), (2, (0, 10, 5)), (1.5, (7, -3, 6))):
        lab[inside((r, r, r), off)] = 5
    slab = (lab == 4) & (np.abs(w[2] - centre[2]) < 1) & (np.abs(w[0] - centre[0]) < 6)
    lab[slab] = 3
    return lab


def ellipsoid_phantom(*, sigma=(40.0, 60.0, 60.0), seed: int = 0,
                      interleave: list[float] | None = None,
                      motion: list[np.ndarray] | None = None, grid: str = "auto") -> Phantom:
    """The three-stack ellipsoid phantom of UniRes' test protocol (4 mm slices along x,
    y and z for T1w, T2w and PDw; 1 mm in-plane; 40 x 48 x 40 mm box); the truth on the
    output grid of rule ``grid`` (``"mean"``: the reference's)."""
    geoms = [(np.diag([4.0, 1, 1, 1]), (10, 48, 40)), (np.diag([1.0, 4, 1, 1]), (40, 12, 40)),
             (np.diag([1.0, 1, 4, 1]), (40, 48, 10))]
    y_affine, y_shape = output_grid([g[0] for g in geoms], [g[1] for g in geoms], 1.0,
                                    grid)[:2]
    labels = ellipsoid_labels(y_affine, y_shape)
    rng = np.random.default_rng(seed)
    truth, obs = [], []
    for c, ((name, values), (x_affine, x_shape)) in enumerate(
            zip(ELLIPSOID_INTENSITIES.items(), geoms)):
        t = np.asarray(values, float)[labels]
        truth.append(t)
        proj = Projection(y_affine, y_shape, x_affine, x_shape, dtype=torch.float64)
        if motion is not None:
            proj.set_rigid(motion[c])
        if interleave is not None:
            proj.log_scale = float(np.log(interleave[c]))
        clean = proj.forward(torch.as_tensor(t)).numpy()
        noisy = np.sqrt((clean + rng.normal(0, sigma[c], clean.shape)) ** 2
                        + rng.normal(0, sigma[c], clean.shape) ** 2)
        obs.append(InputImage(noisy.astype(np.float32), x_affine, c))
    return Phantom(obs, np.stack(truth).astype(np.float32), y_affine, y_shape, labels > 0,
                   list(ELLIPSOID_INTENSITIES), list(sigma))
