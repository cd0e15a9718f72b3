"""PCCNN's q-space and tiling geometry: q-coordinates, farthest-point context sampling,
order-independent target chunks, per-shell intensity scales for prediction, and the 10³
tiling (with patch centroids).  Method-independent gradient-table code (shells, uniform
target schemes) lives in :mod:`srprep.core.dwi`.
"""
from __future__ import annotations

import numpy as np

from srprep.core.dwi import B0_THRESHOLD, shell_labels
from srprep.core.errors import InputError

#: xmax ratios between HCP shells (xmax_in / xmax_out), from dmri-pcconv; used only for a
#: target shell absent from the context
SHELL_RATIO = {(1000, 2000): 1.66, (1000, 3000): 2.19, (2000, 3000): 1.32}


def qcoords(bvals: np.ndarray, bvecs: np.ndarray) -> np.ndarray:
    """Network q-coordinates: unit direction × (actual b / 1000); zero for b=0."""
    bvecs = np.asarray(bvecs, dtype=np.float64)
    norms = np.linalg.norm(bvecs, axis=1, keepdims=True)
    unit = np.divide(bvecs, norms, out=np.zeros_like(bvecs), where=norms > 0)
    b = np.asarray(bvals, dtype=np.float64)
    unit[b <= B0_THRESHOLD] = 0
    return (unit * (b / 1000.0)[:, None]).astype(np.float32)


def fps_order(vectors: np.ndarray, start: int = 0, antipodal: bool = False) -> np.ndarray:
    """Greedy farthest-point order of unit vectors (arccos distance; antipodally
    symmetric when asked)."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=int)
    dots = np.clip(v @ v.T, -1, 1)
    dist = np.arccos(np.abs(dots)) if antipodal else np.arccos(dots)
    order = [int(start)]
    best = dist[start].copy()
    best[start] = -1
    for _ in range(n - 1):
        nxt = int(np.argmax(best))
        order.append(nxt)
        best = np.minimum(best, dist[nxt])
        best[order] = -1
    return np.asarray(order)


def _canonical(v: np.ndarray) -> np.ndarray:
    """Sign-flip each direction so its first non-negligible coordinate is positive."""
    v = np.asarray(v, dtype=np.float64).copy()
    for row in v:
        nz = np.flatnonzero(np.abs(row) > 1e-6)
        if nz.size and row[nz[0]] < 0:
            row *= -1
    return v


def target_chunks(bvals: np.ndarray, bvecs: np.ndarray, size: int = 10) -> list[np.ndarray]:
    """Chunks of target indices that depend only on the *set* of targets.

    Per shell (b=0 excluded), targets are put in a canonical order (lexicographic on
    sign-normalised directions), ordered by antipodal farthest-point sampling from the
    first, and dealt round-robin into ceil(n/size) chunks of at most ``size`` well-spread
    directions (as in training, where the targets of a sample are farthest-point picks).
    """
    labels = shell_labels(bvals)
    chunks = []
    for shell in sorted(set(labels) - {0}):
        idx = np.flatnonzero(labels == shell)
        canon = _canonical(bvecs[idx])
        keys = np.round(canon, 6)
        order = np.lexsort(keys.T[::-1])
        idx, canon = idx[order], canon[order]
        fps = idx[fps_order(canon, 0, antipodal=True)]
        n_chunks = -(-len(fps) // size)
        chunks += [fps[c::n_chunks] for c in range(n_chunks)]
    return chunks


def prediction_xmax(data: np.ndarray, bvals: np.ndarray, mask: np.ndarray, context: np.ndarray,
                    target_bvals: np.ndarray, percentile: float = 99.0) -> tuple[dict, dict]:
    """Per-shell scales at prediction: the context volumes' in-mask percentile per
    context shell; a target shell absent from the context is derived from the lowest
    context shell with the HCP ratio table (an error for shells it does not cover).

    Returns ({context shell: xmax}, {target shell: xmax}) keyed by the labels of
    :func:`shell_labels` over context + targets together.
    """
    all_b = np.concatenate([np.asarray(bvals, float), np.asarray(target_bvals, float)])
    labels = shell_labels(all_b)
    ctx_labels, tgt_labels = labels[: len(bvals)], labels[len(bvals):]
    mask = np.asarray(mask, bool)
    xin: dict[int, float] = {}
    for shell in sorted(set(ctx_labels[context]) - {0}):
        idx = np.asarray(context)[ctx_labels[context] == shell]
        xin[int(shell)] = float(np.percentile(np.asarray(data)[mask][:, idx], percentile))
    xout: dict[int, float] = {}
    for shell in sorted(set(tgt_labels) - {0}):
        if shell in xin:
            xout[int(shell)] = xin[shell]
            continue
        low = min(xin)
        ratio = SHELL_RATIO.get((low, int(shell)))
        if ratio is None and (int(shell), low) in SHELL_RATIO:
            ratio = 1.0 / SHELL_RATIO[(int(shell), low)]
        if ratio is None:
            raise InputError(f"target shell b={shell} is not in the input and no intensity "
                             f"ratio to b={low} is known; give targets on acquired shells")
        xout[int(shell)] = xin[low] / ratio
    return xin, xout


# ---- tiling ------------------------------------------------------------------------------
def tile_padding(n: int, size: int = 10) -> tuple[int, int]:
    """(left, right) padding to a multiple of ``size``, centred (left gets the extra)."""
    total = (-n) % size
    return (total + 1) // 2, total // 2


def tile_grid(shape, mask: np.ndarray, size: int = 10) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Padding per axis and the C-ordered corners (in padded coordinates) of the
    non-overlapping tiles that contain brain."""
    pads = [tile_padding(int(n), size) for n in shape[:3]]
    padded = np.pad(np.asarray(mask, bool), pads)
    counts = [padded.shape[a] // size for a in range(3)]
    corners = []
    for i in range(counts[0]):
        for j in range(counts[1]):
            for k in range(counts[2]):
                if padded[i * size:(i + 1) * size, j * size:(j + 1) * size,
                          k * size:(k + 1) * size].any():
                    corners.append((i * size, j * size, k * size))
    return pads, np.asarray(corners, dtype=int).reshape(-1, 3)


def patch_centroids(affine: np.ndarray, shape, mask: np.ndarray, pads, corners: np.ndarray,
                    size: int = 10) -> np.ndarray:
    """Sp-variant positions: world coordinates of the padded grid normalised to the
    brain's bounding box per world axis, averaged over each tile."""
    padded_mask = np.pad(np.asarray(mask, bool), pads)
    ranges = [np.arange(-p[0], n + p[1]) for n, p in zip(shape[:3], pads)]
    ijk = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).astype(np.float32)
    world = ijk @ np.asarray(affine, np.float32)[:3, :3].T + np.asarray(affine, np.float32)[:3, 3]
    brain = world[padded_mask]
    lo, hi = brain.min(0), brain.max(0)
    norm = (world - lo) / np.where(hi > lo, hi - lo, 1)
    return np.asarray([norm[c[0]:c[0] + size, c[1]:c[1] + size, c[2]:c[2] + size].reshape(-1, 3)
                       .mean(0) for c in corners], dtype=np.float32).reshape(-1, 3)


def context_subsets(idx: np.ndarray, bvals: np.ndarray, bvecs: np.ndarray,
                    max_context: int | None) -> list[np.ndarray]:
    """``idx`` (one shell's context volumes) as one set, or split into ceil(n/max_context)
    well-spread subsets of at most ``max_context`` (antipodal farthest-point order dealt
    round-robin, as the target chunks; independent of the volumes' file order)."""
    if not max_context or idx.size <= max_context:
        return [idx]
    return [idx[c] for c in target_chunks(bvals[idx], bvecs[idx], max_context)]
