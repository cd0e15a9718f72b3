"""Simulated multi-shell dMRI phantoms (multi-tensor signals) for training and tests.

Each voxel of an ellipsoidal "brain" holds one or two axially symmetric tensors (a
fibre bundle whose orientation varies smoothly across space, a second bundle crossing it
in a band) plus a free-water compartment that grows towards the edge; signals follow
S = S0 Σ f_k exp(-b (λ⊥ + (λ∥ - λ⊥)(g·e_k)²)), with Rician noise.  Subjects differ by
seed (orientation fields, fractions, diffusivities, S0 field).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Phantom:
    signal: np.ndarray       # noise-free (X, Y, Z, Q)
    noisy: np.ndarray        # with Rician noise
    mask: np.ndarray
    bvals: np.ndarray
    bvecs: np.ndarray
    affine: np.ndarray


def three_shell_scheme() -> tuple[np.ndarray, np.ndarray]:
    """dipy's bundled 3-shell table (b = 0, 1000, 2000, 3500; 64 directions each)."""
    from dipy.data import get_3shell_gtab

    gtab = get_3shell_gtab()
    bvecs = np.asarray(gtab.bvecs, float)
    norms = np.linalg.norm(bvecs, axis=1, keepdims=True)
    bvecs = np.divide(bvecs, norms, out=np.zeros_like(bvecs), where=norms > 0)
    return np.asarray(gtab.bvals, float), bvecs


def _direction(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)


def multishell_phantom(shape=(20, 20, 12), *, bvals=None, bvecs=None, snr: float = 30.0,
                       seed: int = 0, voxel_mm: float = 2.0) -> Phantom:
    """A phantom subject; ``snr`` is S0 (mean) / σ of the Rician noise (0: no noise)."""
    rng = np.random.default_rng(seed)
    if bvals is None:
        bvals, bvecs = three_shell_scheme()
    bvals, bvecs = np.asarray(bvals, float), np.asarray(bvecs, float)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = np.sqrt((x / 0.95) ** 2 + (y / 0.95) ** 2 + (z / 0.9) ** 2)
    mask = radius <= 1.0
    a, b, c = rng.uniform(0.5, 1.5, 3)
    ph = rng.uniform(0, 2 * np.pi, 4)
    theta1 = np.pi / 2 + 0.5 * np.sin(a * np.pi * z + ph[0])
    phi1 = np.pi / 3 * np.sin(b * np.pi * x + ph[1]) + np.pi / 4 * np.cos(c * np.pi * y + ph[2])
    e1 = _direction(theta1, phi1)
    band = np.abs(np.sin(np.pi * (x * np.cos(ph[3]) + y * np.sin(ph[3])))) < 0.45
    e2 = _direction(theta1 * 0 + np.pi / 2 + 0.3 * z, phi1 + rng.uniform(1.0, 1.57))
    f_iso = np.clip(0.05 + 0.6 * np.clip(radius - 0.6, 0, None) / 0.4, 0, 0.8)
    f2 = np.where(band, rng.uniform(0.3, 0.45), 0.0) * (1 - f_iso)
    f1 = 1 - f_iso - f2
    l_par, l_perp = rng.uniform(1.5e-3, 1.9e-3), rng.uniform(0.2e-3, 0.45e-3)
    s0 = 1000 * (0.85 + 0.15 * np.cos(np.pi * x * a / 2) * np.cos(np.pi * y * b / 2))
    signal = np.empty(shape + (len(bvals),), np.float32)
    for q, (bv, g) in enumerate(zip(bvals, bvecs)):
        c1 = (e1 @ g) ** 2
        c2 = (e2 @ g) ** 2
        att = (f1 * np.exp(-bv * (l_perp + (l_par - l_perp) * c1))
               + f2 * np.exp(-bv * (l_perp + (l_par - l_perp) * c2))
               + f_iso * np.exp(-bv * 3.0e-3))
        signal[..., q] = np.where(mask, s0 * att, 0.0)
    noisy = signal.copy()
    if snr > 0:
        sigma = float(s0[mask].mean()) / snr
        n1 = rng.normal(0, sigma, signal.shape)
        n2 = rng.normal(0, sigma, signal.shape)
        noisy = np.sqrt((signal + n1) ** 2 + n2 ** 2).astype(np.float32)
    affine = np.diag([voxel_mm] * 3 + [1.0])
    affine[:3, 3] = -voxel_mm * (np.asarray(shape) - 1) / 2
    return Phantom(signal, noisy, mask, bvals, bvecs, affine)
