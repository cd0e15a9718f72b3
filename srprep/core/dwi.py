"""Diffusion MRI helpers: gradient tables, shells, per-shell xmax, q-first arrays.

Conventions:
    * b-values in s/mm^2; b-vectors are unit vectors in FSL's voxel-axis convention
      (3 rows in the ``.bvec`` file), the zero vector allowed for b=0 volumes.
    * NIfTI series are (X, Y, Z, Q) with the diffusion (q) axis last; srprep's npy
      files are float32, C-contiguous (Q, X, Y, Z) so one volume is a contiguous block
      that a memory map reads without touching the others.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_json
from .errors import InputError

#: b-values at or below this are treated as b=0 (s/mm^2)
B0_THRESHOLD = 50.0
#: b-values within this distance of a shell's centre belong to it (s/mm^2); the
#: PCCNN reference uses +-30 around its nominal shells
SHELL_TOLERANCE = 30.0


def _read_table(path: str | os.PathLike, what: str, *, allow_nan: bool = False) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p.name}: {what} file not found")
    try:
        rows = [line.split() for line in p.read_text().splitlines() if line.strip()]
        table = np.array(rows, dtype=float)
    except ValueError as exc:
        raise InputError(f"{p.name}: not a numeric {what} table ({exc})") from exc
    if table.ndim != 2 or table.size == 0:
        raise InputError(f"{p.name}: ragged or empty {what} table")
    if not np.all(np.isfinite(table) | (allow_nan & np.isnan(table))):
        raise InputError(f"{p.name}: {what} table contains non-finite values")
    return table


def read_bvals_bvecs(
    bval_file: str | os.PathLike, bvec_file: str | os.PathLike, n_volumes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and check an FSL gradient table.

    Returns:
        bvals (N,) and bvecs (N, 3) with non-b0 vectors normalised to unit length.

    Raises:
        InputError: missing/non-numeric files, wrong shapes, negative b-values, count
            mismatch between bval, bvec and ``n_volumes``, or zero vectors for b > 0.
    """
    bvals = _read_table(bval_file, "bval")
    if 1 not in bvals.shape:
        raise InputError(f"{Path(bval_file).name}: bval must be a single row, got shape {bvals.shape}")
    bvals = bvals.ravel()
    bvecs = _read_table(bvec_file, "bvec", allow_nan=True)  # some tools write NaN for b=0
    if bvecs.shape[0] != 3 and bvecs.shape[1] == 3:
        bvecs = bvecs.T
    if bvecs.shape[0] != 3:
        raise InputError(f"{Path(bvec_file).name}: bvec must have 3 rows, got shape {bvecs.shape}")
    bvecs = bvecs.T.copy()
    counts = {"b-values": len(bvals), "b-vectors": len(bvecs)}
    if n_volumes is not None:
        counts["volumes"] = int(n_volumes)
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{v} {k}" for k, v in counts.items())
        raise InputError(f"{Path(bval_file).name}: bval/bvec count mismatch ({detail})")
    if np.any(bvals < 0):
        raise InputError(f"{Path(bval_file).name}: negative b-values")
    dw = bvals > B0_THRESHOLD
    if np.any(np.isnan(bvecs[dw])):
        raise InputError(f"{Path(bvec_file).name}: NaN b-vector for a diffusion-weighted volume")
    bvecs[np.isnan(bvecs)] = 0.0
    norms = np.linalg.norm(bvecs, axis=1)
    if np.any(norms[dw] < 1e-6):
        raise InputError(f"{Path(bvec_file).name}: zero b-vector for a diffusion-weighted volume")
    bvecs[dw] /= norms[dw, None]
    return bvals, bvecs


def write_bvals_bvecs(bvals: np.ndarray, bvecs: np.ndarray, bval_file: str | os.PathLike,
                      bvec_file: str | os.PathLike) -> tuple[Path, Path]:
    """Write an FSL gradient table atomically (bvecs as 3 rows)."""
    bvals = np.asarray(bvals, dtype=float).ravel()
    bvecs = np.asarray(bvecs, dtype=float).reshape(-1, 3)
    with atomic_path(bval_file) as tmp:
        tmp.write_text(" ".join(f"{b:g}" for b in bvals) + "\n")
    with atomic_path(bvec_file) as tmp:
        tmp.write_text("\n".join(" ".join(f"{v:.8f}" for v in row) for row in bvecs.T) + "\n")
    return Path(bval_file), Path(bvec_file)


def shell_labels(bvals: np.ndarray, *, b0_threshold: float = B0_THRESHOLD,
                 tolerance: float = SHELL_TOLERANCE) -> np.ndarray:
    """Nominal shell of each volume (0 for b=0).

    Non-zero b-values are grouped greedily in increasing order: a value joins the
    current group while it is within ``2 * tolerance`` of the group's smallest member.
    A group's label is its mean rounded to the nearest 50 s/mm^2 (1985 -> 2000).
    """
    bvals = np.asarray(bvals, dtype=float)
    labels = np.zeros(len(bvals), dtype=int)
    order = np.argsort(bvals, kind="stable")
    group: list[int] = []

    def close(g: list[int]) -> None:
        if g:
            labels[g] = int(50 * round(float(np.mean(bvals[g])) / 50))

    for i in order:
        if bvals[i] <= b0_threshold:
            continue
        if group and bvals[i] - bvals[group[0]] > 2 * tolerance:
            close(group)
            group = []
        group.append(int(i))
    close(group)
    return labels


def xmax_per_shell(
    data: np.ndarray,
    bvals: np.ndarray,
    mask: np.ndarray,
    *,
    percentile: float = 99.0,
    volumes: np.ndarray | None = None,
) -> dict[int, float]:
    """Per-shell intensity scale: the ``percentile`` of all in-mask values of the shell.

    Args:
        data: (X, Y, Z, Q) series.
        bvals: (Q,) b-values.
        mask: (X, Y, Z) brain mask.
        volumes: restrict to these volume indices (e.g. the context volumes at
            prediction time); default all.

    Returns:
        ``{shell: xmax}`` with Python ints/floats (JSON-safe), b=0 excluded.
    """
    labels = shell_labels(bvals)
    selected = np.zeros(len(bvals), bool)
    selected[np.arange(len(bvals)) if volumes is None else np.asarray(volumes)] = True
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise InputError("empty brain mask: cannot compute per-shell xmax")
    out: dict[int, float] = {}
    for shell in sorted(set(labels[selected]) - {0}):
        idx = np.flatnonzero((labels == shell) & selected)
        values = data[mask][:, idx]
        out[int(shell)] = float(np.percentile(values, percentile))
    return out


def _volume_scales(bvals: np.ndarray, xmax: dict) -> np.ndarray:
    labels = shell_labels(bvals)
    xmax = {int(k): float(v) for k, v in xmax.items()}
    return np.array([xmax.get(int(s), np.nan) if s else np.nan for s in labels])


def normalise_dwi(data: np.ndarray, bvals: np.ndarray, xmax: dict) -> np.ndarray:
    """``x' = 2 x / xmax_shell - 1`` per volume; b=0 and shells without xmax untouched."""
    scales = _volume_scales(bvals, xmax)
    out = np.asarray(data, dtype=np.float32).copy()
    for q in np.flatnonzero(np.isfinite(scales)):
        out[..., q] = 2.0 * out[..., q] / scales[q] - 1.0
    return out


def denormalise_dwi(data: np.ndarray, bvals: np.ndarray, xmax: dict) -> np.ndarray:
    """Inverse of :func:`normalise_dwi`: ``x = (x' + 1) xmax_shell / 2``."""
    scales = _volume_scales(bvals, xmax)
    out = np.asarray(data, dtype=np.float32).copy()
    for q in np.flatnonzero(np.isfinite(scales)):
        out[..., q] = (out[..., q] + 1.0) * scales[q] / 2.0
    return out


def save_xmax(xmax: dict, path: str | os.PathLike) -> Path:
    """Write ``{"1000": 990.2, ...}`` JSON (keys as strings, values as floats)."""
    return write_json(path, {str(int(k)): float(v) for k, v in sorted(xmax.items())})


def load_xmax(path: str | os.PathLike) -> dict[int, float]:
    """Read the JSON written by :func:`save_xmax`."""
    return {int(k): float(v) for k, v in json.loads(Path(path).read_text()).items()}


def save_q_first(data: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an (X, Y, Z, Q) series as a float32 C-contiguous (Q, X, Y, Z) ``.npy``."""
    if data.ndim != 4:
        raise InputError(f"expected a 4-D (X, Y, Z, Q) series, got shape {data.shape}")
    with atomic_path(path) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                        shape=(data.shape[3],) + data.shape[:3])
        for q in range(data.shape[3]):
            arr[q] = data[..., q]
        arr.flush()
        del arr
    return Path(path)


def load_q_first(path: str | os.PathLike, *, mmap: bool = True) -> np.ndarray:
    """Open a (Q, X, Y, Z) ``.npy`` (memory-mapped by default: volumes read lazily)."""
    return np.load(os.fspath(path), mmap_mode="r" if mmap else None)


def q_last(arr: np.ndarray) -> np.ndarray:
    """(Q, X, Y, Z) -> (X, Y, Z, Q) as a new C-contiguous float32 array."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(arr, dtype=np.float32), 0, -1))


def xmax_file(dwi_file, bval_file, bvec_file, mask_file, out_json, *,
              percentile: float = 99.0) -> dict[int, float]:
    """Per-shell xmax of a dMRI series inside a mask, saved as JSON."""
    from .nifti import load_image

    img = load_image(dwi_file)
    bvals, _ = read_bvals_bvecs(bval_file, bvec_file, img.shape[3] if img.ndim == 4 else 1)
    mask = np.asarray(load_image(mask_file, allow_4d=False).dataobj) > 0
    xmax = xmax_per_shell(np.asarray(img.dataobj), bvals, mask, percentile=percentile)
    save_xmax(xmax, out_json)
    return xmax


def normalise_dwi_file(dwi_file, bval_file, xmax: dict, out_file, *, inverse: bool = False,
                       like_file=None) -> Path:
    """File-level (de)normalisation; the inverse writes in ``like_file``'s dtype."""
    from .nifti import load_image, save_image, save_like

    img = load_image(dwi_file)
    bvals = _read_table(bval_file, "bval").ravel()
    data = np.asarray(img.dataobj)
    if inverse:
        out = denormalise_dwi(data, bvals, xmax)
        if like_file is not None:
            return save_like(out, img.affine, out_file, load_image(like_file))
        return save_image(out, img.affine, out_file, dtype=np.float32)
    return save_image(normalise_dwi(data, bvals, xmax), img.affine, out_file, dtype=np.float32)


def dwi_to_npy_file(dwi_file, out_npy) -> list[int]:
    """NIfTI (X, Y, Z, Q) -> float32 (Q, X, Y, Z) ``.npy``; returns its shape."""
    from .nifti import load_image

    img = load_image(dwi_file)
    if img.ndim != 4:
        raise InputError(f"{Path(dwi_file).name}: expected a 4-D dMRI series, got shape {img.shape}")
    save_q_first(np.asarray(img.dataobj), out_npy)
    return [img.shape[3], *img.shape[:3]]


def npy_to_dwi_file(in_npy, reference_file, out_file) -> Path:
    """(Q, X, Y, Z) ``.npy`` -> NIfTI with the reference's affine (float32)."""
    import nibabel as nib

    from .nifti import save_image

    ref = nib.load(str(reference_file))
    arr = load_q_first(in_npy)
    if tuple(arr.shape[1:]) != tuple(ref.shape[:3]):
        raise InputError(f"{Path(in_npy).name}: spatial shape {arr.shape[1:]} does not match "
                         f"{Path(reference_file).name} {ref.shape[:3]}")
    return save_image(q_last(arr), ref.affine, out_file, dtype=np.float32)


# -- target schemes for angular upsampling (the sh baseline and every angular method) --

def uniform_directions(n: int, seed: int = 0, iters: int = 5000) -> np.ndarray:
    """``n`` antipodally uniform unit vectors (electrostatic repulsion, dipy)."""
    from dipy.core.sphere import HemiSphere, disperse_charges

    rng = np.random.default_rng(seed)
    theta = np.arccos(rng.uniform(0, 1, n))
    phi = rng.uniform(0, 2 * np.pi, n)
    hemi = HemiSphere(theta=theta, phi=phi)
    hemi, _ = disperse_charges(hemi, iters)
    return np.asarray(hemi.vertices, dtype=np.float64)


def upsampled_scheme(bvals: np.ndarray, bvecs: np.ndarray, factor: int, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Target scheme with ``factor`` × the acquired directions on every shell (uniform,
    nominal b of the shell), preceded by one b=0 entry per acquired b=0 volume."""
    if factor < 1:
        raise ValueError(f"angular factor must be >= 1, got {factor}")
    labels = shell_labels(bvals)
    out_b = [np.zeros(int((labels == 0).sum()))]
    out_v = [np.zeros((int((labels == 0).sum()), 3))]
    for k, shell in enumerate(sorted(set(labels) - {0})):
        n = int((labels == shell).sum()) * factor
        out_b.append(np.full(n, float(np.mean(np.asarray(bvals)[labels == shell]))))
        out_v.append(uniform_directions(n, seed + k))
    return np.concatenate(out_b), np.concatenate(out_v)
