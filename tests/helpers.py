"""Helpers shared by tests (import as ``from tests.helpers import ...``)."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

#: the developers' reference folder beside the clone (``../shared``): specs, weights
SHARED = Path(__file__).resolve().parents[2] / "shared"


def needs_files(*paths: Path, what: str) -> pytest.MarkDecorator:
    """Skip, naming the missing files, unless every path exists."""
    missing = [str(p) for p in paths if not Path(p).is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"{what} not found: {', '.join(missing[:2])}"
                              + (f" (+{len(missing) - 2} more)" if len(missing) > 2 else ""))


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None,
                dtype=None) -> Path:
    """Save an array as NIfTI (float32 unless ``dtype``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(data, dtype=dtype or np.float32)
    img = nib.Nifti1Image(arr, np.eye(4) if affine is None else affine)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, str(path))
    return path


def blob_volume(shape=(32, 36, 30), seed=0) -> np.ndarray:
    """Smooth random positive volume with a zero background (a head-like phantom)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    vol = ndimage.gaussian_filter(rng.normal(size=shape), 2.0)
    vol = (vol - vol.min()) / (vol.max() - vol.min())
    grid = np.indices(shape).astype(float)
    centre = (np.array(shape) - 1)[:, None, None, None] / 2
    radius = np.sqrt((((grid - centre) / (np.array(shape)[:, None, None, None] * 0.4)) ** 2).sum(0))
    return (100 + 900 * vol) * (radius < 1.0)
