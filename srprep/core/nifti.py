"""Loading, validating, reorienting and writing NIfTI images.

Every image entering srprep goes through :func:`load_image`, which turns the many ways a
file can be unusable (missing, not NIfTI, truncated gzip, 2-D, NaNs, degenerate affine)
into one-line :class:`~srprep.core.errors.InputError` messages naming the file.

Processing happens in the closest canonical (RAS+) orientation; :func:`to_canonical`
returns what is needed to put results back into the input's voxel order with
:func:`from_canonical`, so outputs keep the on-disk axis order of their source.
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from .atomic import atomic_path
from .errors import InputError

#: gzip level for NIfTI outputs.  Level 1 (nibabel's default) is 6x cheaper than level 6
#: for files < 1 % larger (benchmarks/RESULTS.md); writes go through ISA-L (``isal``),
#: another 5x faster than zlib, when it is installed.
COMPRESSLEVEL = 1

_MAX_VOXEL_MM = 100.0
_MIN_VOXEL_MM = 1e-3


@dataclass(frozen=True)
class ImageInfo:
    """Header-level facts about a validated image."""

    shape: tuple[int, ...]
    zooms: tuple[float, float, float]
    axcodes: tuple[str, str, str]
    dtype: str

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def n_volumes(self) -> int:
        return self.shape[3] if len(self.shape) == 4 else 1


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel size (mm) along each voxel axis: norms of the affine's first three columns."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def _fail(path: str | os.PathLike, reason: str) -> InputError:
    return InputError(f"{Path(path).name}: {' '.join(str(reason).split())}")


def _open(path: str | os.PathLike) -> nib.Nifti1Image:
    p = Path(path)
    if not p.exists():
        raise _fail(p, "file not found")
    if not p.is_file():
        raise _fail(p, "not a regular file")
    try:
        img = nib.load(str(p))
    except Exception as exc:  # nibabel raises many types for corrupt headers
        raise _fail(p, f"not a readable NIfTI file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise _fail(p, f"expected a NIfTI image, got {type(img).__name__}")
    return img


def check_header(path: str | os.PathLike, *, allow_4d: bool = True) -> ImageInfo:
    """Validate what the header says (cheap: no voxel data is read).

    Raises:
        InputError: the file is missing, not NIfTI, not 3-D/4-D, or has a degenerate
            affine or implausible voxel sizes.
    """
    img = _open(path)
    return _check_geometry(path, img, allow_4d=allow_4d)


def _check_geometry(path, img, *, allow_4d: bool) -> ImageInfo:
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) < 3 or min(shape[:3]) < 2:
        raise _fail(path, f"{len(shape)}-D image of shape {shape}; a 3-D volume is required")
    if len(shape) > 4:
        raise _fail(path, f"{len(shape)}-D image of shape {shape}; only 3-D and 4-D are supported")
    if len(shape) == 4 and not allow_4d:
        raise _fail(path, f"4-D image of shape {shape} where a 3-D volume is required")
    affine = img.affine
    if not np.all(np.isfinite(affine)):
        raise _fail(path, "affine contains non-finite values")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise _fail(path, "affine is singular (zero voxel size or collapsed axes)")
    zooms = voxel_sizes(affine)
    if np.any(zooms < _MIN_VOXEL_MM) or np.any(zooms > _MAX_VOXEL_MM):
        raise _fail(path, f"implausible voxel size {tuple(np.round(zooms, 4))} mm")
    axcodes = tuple(nib.aff2axcodes(affine))
    return ImageInfo(shape, tuple(float(z) for z in zooms), axcodes, str(img.get_data_dtype()))


def load_image(
    path: str | os.PathLike, *, allow_4d: bool = True, dtype: type = np.float32
) -> nib.Nifti1Image:
    """Load and fully validate a NIfTI image; return it with in-memory ``dtype`` data.

    The returned image keeps the source header, so ``img.header.get_data_dtype()`` is
    still the on-disk dtype (used by :func:`save_like` to write outputs in kind).

    Raises:
        InputError: anything :func:`check_header` rejects, plus unreadable (truncated
            or corrupt) voxel data and non-finite voxel values.
    """
    img = _open(path)
    info = _check_geometry(path, img, allow_4d=allow_4d)
    try:
        data = np.asarray(img.dataobj, dtype=dtype)
    except (EOFError, zlib.error, OSError, ValueError) as exc:
        raise _fail(path, f"truncated or corrupt voxel data ({exc})") from exc
    data = data.reshape(info.shape)
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.any():
            raise _fail(path, f"{int(bad.sum())} voxels are NaN or infinite")
    header = img.header.copy()
    out = nib.Nifti1Image(data, img.affine, header)
    out.header.set_data_dtype(img.get_data_dtype())
    return out


def to_canonical(img: nib.Nifti1Image) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Reorient ``img`` to the closest canonical RAS+ orientation.

    Returns:
        The reoriented image and the source orientation (``nib.orientations`` array)
        that :func:`from_canonical` needs to undo it.
    """
    source_ornt = nib.orientations.io_orientation(img.affine)
    return nib.as_closest_canonical(img), source_ornt


def from_canonical(img: nib.Nifti1Image, source_ornt: np.ndarray) -> nib.Nifti1Image:
    """Put a canonical-orientation image back into its source's voxel axis order."""
    ras = nib.orientations.axcodes2ornt(("R", "A", "S"))
    return img.as_reoriented(nib.orientations.ornt_transform(ras, np.asarray(source_ornt)))


def cast_like(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast float data to ``dtype``: round and clip for integers, plain cast for floats."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(data), info.min, info.max).astype(dtype)
    return np.asarray(data, dtype=dtype)


def save_image(
    data: np.ndarray,
    affine: np.ndarray,
    path: str | os.PathLike,
    *,
    like: nib.Nifti1Header | None = None,
    dtype: np.dtype | str | None = None,
) -> Path:
    """Write a NIfTI file atomically.

    Args:
        data: voxel array (3-D or 4-D).
        affine: voxel-to-world (mm) matrix used for both qform and sform.
        path: destination (``.nii`` or ``.nii.gz``).
        like: header of the source image; its on-disk dtype, intensity scaling, codes
            and description carry over (the output keeps the input's intensity scale).
        dtype: explicit output dtype; default is ``like``'s dtype, else float32.
    """
    header = like.copy() if like is not None else nib.Nifti1Header()
    target = np.dtype(dtype) if dtype is not None else (
        header.get_data_dtype() if like is not None else np.dtype(np.float32)
    )
    slope, inter = header.get_slope_inter() if like is not None else (None, None)
    exact_ints = np.issubdtype(target, np.integer) and slope in (None, 1.0) and inter in (None, 0.0)
    arr = cast_like(data, target) if exact_ints else np.asarray(data, dtype=np.float32)
    img = nib.Nifti1Image(arr, affine, header)
    img.header.set_data_dtype(target)
    img.header.set_xyzt_units("mm", "sec")
    qcode = int(header["qform_code"]) or 1 if like is not None else 1
    scode = int(header["sform_code"]) or 1 if like is not None else 1
    img.set_qform(affine, code=qcode)
    img.set_sform(affine, code=scode)
    if exact_ints:
        img.header.set_slope_inter(1.0, 0.0)
    with atomic_path(path) as tmp:
        _write(img, tmp)
    return Path(path)


def _write(img: nib.Nifti1Image, path: Path) -> None:
    """Write ``img``; gzip streams carry no file name in their header (the file is
    written under a temporary or cache name and renamed, so a stored name would be
    wrong -- the BIDS validator warns GZIP_HEADER_FILENAME about such files)."""
    if not str(path).endswith(".gz"):
        nib.save(img, str(path))
        return
    try:
        from isal.igzip import IGzipFile as GzipFile
    except ImportError:
        from gzip import GzipFile
    with open(path, "wb") as raw, GzipFile(filename="", mode="wb", fileobj=raw,
                                           compresslevel=COMPRESSLEVEL, mtime=0) as fh:
        img.to_stream(fh)


def save_like(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike,
              source: nib.Nifti1Image) -> Path:
    """Write ``data`` in the on-disk dtype and intensity scaling of ``source``."""
    return save_image(data, affine, path, like=source.header)
