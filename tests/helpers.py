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


#: real scans committed with their source and license (tests/data/real/README.md)
REAL = Path(__file__).resolve().parent / "data" / "real"


def real_pair(resolution: float = 1.76, thickness: float = 5.28, axis: int = 1):
    """The real T1w/PD pair of ``tests/data/real`` as an evaluation case.

    Returns ``(truth, truth_affine), {"T1w": ..., "PDw": ..., "PDw2x": ...}``: the truth is
    the 0.88 mm T1w box-averaged to ``resolution`` (a real image with its real noise); the
    T1w input is that truth acquired again as thick slices (box profile, ``thickness``
    along voxel ``axis``) stored as uint8, as a clinical scanner exports it; ``PDw`` is the
    real oblique 2.4 mm stack as shipped, ``PDw2x`` the same averaged 2x in-plane.
    """
    from srprep.core.synth import thick_slices

    t1 = nib.load(REAL / "chris_t1.nii.gz")
    truth, affine = np.asarray(t1.dataobj, np.float32), t1.affine
    for ax in range(3):
        truth, affine = thick_slices(truth, affine, axis=ax, thickness=resolution)
    thick, thick_affine = thick_slices(truth, affine, axis=axis, thickness=thickness)
    thick = np.clip(np.rint(thick), 0, 255).astype(np.uint8)
    pd = nib.load(REAL / "chris_PD.nii.gz")
    pd_data, pd_affine = np.asarray(pd.dataobj, np.float32), pd.affine
    coarse, coarse_affine = pd_data, pd_affine
    for ax in (0, 1):
        h = float(np.sqrt((pd_affine[:3, ax] ** 2).sum()))
        coarse, coarse_affine = thick_slices(coarse, coarse_affine, axis=ax, thickness=2 * h)
    return (truth, affine), {"T1w": (thick, thick_affine), "PDw": (pd_data, pd_affine),
                             "PDw2x": (coarse, coarse_affine)}


def flipped(data: np.ndarray, affine: np.ndarray, axes) -> tuple[np.ndarray, np.ndarray]:
    """The same voxels in world space, stored with voxel ``axes`` reversed (RAS -> LAS...)."""
    flip = np.eye(4)
    for axis in axes:
        data = np.flip(data, axis)
        flip[axis, axis], flip[axis, 3] = -1.0, data.shape[axis] - 1
    return np.ascontiguousarray(data), affine @ flip


def write_anat_dataset(bids: Path, images: dict, name: str) -> Path:
    """A raw BIDS dataset of anatomical images, ``{(participant, suffix): (data, affine)}``,
    each with its qform and sform set to ``affine`` and an empty sidecar."""
    bids.mkdir(parents=True, exist_ok=True)
    (bids / "dataset_description.json").write_text(
        f'{{"Name": "{name}", "BIDSVersion": "1.10.0"}}')
    for (label, suffix), (data, affine) in images.items():
        anat = bids / f"sub-{label}" / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        img = nib.Nifti1Image(data, affine)
        img.set_qform(affine, 1)
        img.set_sform(affine, 1)
        nib.save(img, anat / f"sub-{label}_{suffix}.nii.gz")
        (anat / f"sub-{label}_{suffix}.json").write_text("{}")
    return bids


def overlay_correlation(x: np.ndarray, src_affine, y: np.ndarray, out_affine,
                        min_voxels: int = 5000) -> float:
    """Correlation, inside the input's head, of an output ``y`` pulled back (trilinear)
    onto the input ``x``'s grid through the two affines (world space)."""
    from srprep.core.resample import resample

    back = resample(np.asarray(y, np.float32), out_affine, src_affine, x.shape, order=1)
    head = (x > 0.1 * x.max()) & (back > 0)
    assert head.sum() > min_voxels
    return float(np.corrcoef(x[head], back[head])[0, 1])
