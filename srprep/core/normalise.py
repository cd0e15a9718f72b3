"""Intensity normalisation and its exact inverse.

Networks see intensities in [0, 1]; outputs must be returned in the input's own scale.
:func:`percentile_scale` returns the parameters that :func:`inverse_percentile_scale`
needs, so the round trip is exact wherever the forward pass did not clip.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

_EPS = 1e-6


@dataclass(frozen=True)
class ScaleParams:
    """Robust min-max parameters: ``x' = (x - low) / (high - low + eps)``."""

    low: float
    high: float
    lower_percentile: float
    upper_percentile: float

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ScaleParams:
        return cls(float(d["low"]), float(d["high"]), float(d["lower_percentile"]),
                   float(d["upper_percentile"]))


def percentile_scale(
    data: np.ndarray,
    *,
    lower: float = 1.0,
    upper: float = 99.0,
    mask: np.ndarray | None = None,
    clip: bool = True,
) -> tuple[np.ndarray, ScaleParams]:
    """Map the ``lower``/``upper`` percentiles of ``data`` to 0 and 1.

    Args:
        data: image array (any shape).
        lower, upper: percentiles (0-100).
        mask: voxels used for the percentiles; default is ``data > 0`` (the BABY-AI
            convention, robust to large zero backgrounds); all voxels if none are > 0.
        clip: clip the result to [0, 1].

    Returns:
        (scaled float32 array, :class:`ScaleParams`).
    """
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"need 0 <= lower < upper <= 100, got {lower}, {upper}")
    sel = data > 0 if mask is None else np.asarray(mask, dtype=bool)
    values = data[sel] if sel.any() else data.ravel()
    low, high = (float(v) for v in np.percentile(values, [lower, upper]))
    params = ScaleParams(low, high, float(lower), float(upper))
    scaled = (np.asarray(data, dtype=np.float32) - low) / np.float32(high - low + _EPS)
    if clip:
        np.clip(scaled, 0.0, 1.0, out=scaled)
    return scaled, params


def inverse_percentile_scale(scaled: np.ndarray, params: ScaleParams | dict) -> np.ndarray:
    """Undo :func:`percentile_scale` (float32)."""
    if isinstance(params, dict):
        params = ScaleParams.from_dict(params)
    return (np.asarray(scaled, dtype=np.float32) * np.float32(params.high - params.low + _EPS)
            + np.float32(params.low))


def percentile_scale_file(in_file, out_file, *, lower: float = 1.0, upper: float = 99.0,
                          clip: bool = True) -> dict:
    """File-level :func:`percentile_scale`; writes float32, returns the parameters."""
    from .nifti import load_image, save_image

    img = load_image(in_file)
    scaled, params = percentile_scale(np.asarray(img.dataobj), lower=lower, upper=upper, clip=clip)
    save_image(scaled, img.affine, out_file, dtype=np.float32)
    return params.to_dict()


def inverse_percentile_scale_file(in_file, out_file, params: dict, *, like_file=None):
    """File-level :func:`inverse_percentile_scale`; output in ``like_file``'s dtype."""
    from .nifti import load_image, save_image, save_like

    img = load_image(in_file)
    data = inverse_percentile_scale(np.asarray(img.dataobj), params)
    if like_file is not None:
        return save_like(data, img.affine, out_file, load_image(like_file))
    return save_image(data, img.affine, out_file, dtype=np.float32)
