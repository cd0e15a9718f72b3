"""Whole-subject PCCNN prediction: normalise, tile, run, untile, de-normalise.

Follows the reference's prediction (per-shell 99th-percentile xmax of the context
volumes in the mask, x' = 2x/xmax - 1, non-overlapping 10³ tiles, tiles without brain
skipped and 0 in the output) with these deliberate differences (see also
:mod:`srprep.models.pccnn`):

* b=0 volumes never enter the network (a b=0 with a non-zero b-vector in the file would
  act as a b≈1000 direction with raw intensities); b=0 targets are filled with the
  acquired b=0 volumes, unchanged (in order when the counts agree, else their mean).
* Shells are detected from the data (any b-values), not hard-wired to 1000/2000/3000.
* Padding is raw 0 (normalised -1) as in training; the reference pads prediction tiles
  with normalised 0.
* Targets go in order-independent chunks of <= 10 (:func:`srprep.models.pccnn.qspace.target_chunks`)
  and the context stages run once per tile, not once per chunk.
* Sp variants get each tile's centroid (the reference's D3).
* Context per target shell (``context_mode="shell"``, default): the network is trained on
  single-shell contexts of 6-20 directions and aggregates by *sum*, so feeding all shells
  at once (the reference, ``context_mode="all"``) presents it with several times more
  neighbours than it was trained on.
* Within a shell, at most the model's trained context size per pass (``max_context``,
  ``--pccnn-max-context``; default the top of its training range): a larger shell is split
  into well-spread subsets whose predictions are averaged.  With a whole 56-direction
  shell a model trained on 6-12 directions gave NRMSE 18.4 on held-out directions, with
  subsets of <= 12 0.15 (benchmarks/RESULTS.md).
"""
from __future__ import annotations

import numpy as np
import torch

from srprep.core.dwi import B0_THRESHOLD, shell_labels
from srprep.core.errors import InputError
from srprep.models.weights import pccnn_max_context
from .qspace import (context_subsets, patch_centroids, prediction_xmax, qcoords,
                     target_chunks, tile_grid)

TILE = 10


@torch.no_grad()
def predict_subject(model, data: np.ndarray, bvals: np.ndarray, bvecs: np.ndarray,
                    target_bvals: np.ndarray, target_bvecs: np.ndarray, mask: np.ndarray,
                    affine: np.ndarray, *, batch_size: int = 4, device: str = "cpu",
                    chunk: int = 10, context_mode: str = "shell",
                    max_context: int | None = None, progress: bool = False
                    ) -> tuple[np.ndarray, dict]:
    """Predict (X, Y, Z, T) signals at the target (b, direction) pairs.

    Args:
        model: :class:`srprep.models.pccnn.PCCNN` (any variant).
        data: (X, Y, Z, Q) acquired series; bvals (Q,), bvecs (Q, 3).
        target_bvals, target_bvecs: the scheme to synthesise (b=0 entries allowed).
        mask: (X, Y, Z) brain mask; affine: the series' voxel-to-world matrix (Sp).
        context_mode: ``shell`` (default): each target shell is predicted from the
            context volumes of that shell (of the nearest acquired shell if it was not
            acquired), which is the single-shell context the model is trained on;
            ``all``: every context volume at once (the reference's prediction);
            ``reference``: the reference's whole prediction protocol (``--pccnn-parity
            reference``): all context volumes, tiles padded with normalised 0 (raw
            xmax / 2; srprep pads with raw 0 as in training) and the diffusion-weighted
            targets in chunks of 10 in file order (their count must be a multiple of 10);
            b=0 targets are still copied from the acquired b=0 volumes.
        max_context: with ``shell``, a shell of more context volumes than this is split
            into ceil(n / max_context) well-spread subsets (every volume used once), each
            predicts the targets, and the predictions are averaged: the network aggregates
            its context by a *sum* and was trained on 6-20 volumes.  ``None``: the whole
            shell at once.

    Returns:
        (predictions float32, report with the xmax values, tiles, chunks).
    """
    data = np.asarray(data, dtype=np.float32)
    bvals, target_bvals = np.asarray(bvals, float), np.asarray(target_bvals, float)
    bvecs, target_bvecs = np.asarray(bvecs, float), np.asarray(target_bvecs, float)
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise InputError("empty brain mask")
    context = np.flatnonzero(bvals > B0_THRESHOLD)
    if context.size < 3:
        raise InputError(f"{context.size} diffusion-weighted volumes: PCCNN needs at least 3")
    xin, xout = prediction_xmax(data, bvals, mask, context, target_bvals)
    labels = shell_labels(np.concatenate([bvals, target_bvals]))
    ctx_labels, tgt_labels = labels[: len(bvals)][context], labels[len(bvals):]
    scale_in = np.array([xin[int(s)] for s in ctx_labels], np.float32)
    ctx = 2.0 * data[..., context] / scale_in - 1.0                        # normalised
    a_in = torch.from_numpy(qcoords(bvals[context], bvecs[context]))[None].to(device)
    if context_mode not in ("shell", "all", "reference"):
        raise ValueError(f"context_mode must be 'shell', 'all' or 'reference', got {context_mode!r}")
    reference = context_mode == "reference"
    pads, corners = tile_grid(data.shape, mask, TILE)
    # raw 0 -> -1 (as in training); the reference pads the normalised volume with 0
    padded = np.pad(ctx, pads + [(0, 0)], constant_values=0.0 if reference else -1.0)
    pos = None
    if model.spatial:
        pos = torch.from_numpy(patch_centroids(affine, data.shape, mask, pads, corners, TILE))
    out_pad = np.zeros(padded.shape[:3] + (len(target_bvals),), np.float32)
    dw_targets = np.flatnonzero(tgt_labels > 0)
    if reference:
        if dw_targets.size % chunk:
            raise InputError(f"--pccnn-parity reference predicts the diffusion-weighted targets "
                             f"in chunks of {chunk} in file order, as the reference: "
                             f"{dw_targets.size} is not a multiple of {chunk}")
        chunks = [dw_targets[i:i + chunk] for i in range(0, dw_targets.size, chunk)]
    else:
        chunks = target_chunks(target_bvals, target_bvecs, chunk) if dw_targets.size else []
    a_all = qcoords(target_bvals, target_bvecs)
    plans: list[tuple[list[np.ndarray], list[np.ndarray]]] = []
    if context_mode in ("all", "reference"):
        plans.append(([np.arange(context.size)], chunks))
    else:
        acquired = np.array(sorted(set(ctx_labels)))
        for shell in sorted({int(tgt_labels[c[0]]) for c in chunks}):
            src = acquired[np.argmin(np.abs(acquired - shell))]
            own = np.flatnonzero(ctx_labels == src)
            plans.append((context_subsets(own, bvals[context], bvecs[context], max_context),
                          [c for c in chunks if int(tgt_labels[c[0]]) == shell]))
    net = model.to(device).eval()
    starts = range(0, len(corners), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="pccnn", unit="batch")
    for start in starts:
        cs = corners[start:start + batch_size]
        tiles = np.stack([padded[c[0]:c[0] + TILE, c[1]:c[1] + TILE, c[2]:c[2] + TILE]
                          for c in cs])
        x = torch.from_numpy(tiles).to(device)
        b = len(cs)
        s = pos[start:start + b].to(device) if pos is not None else None
        for subsets, plan_chunks in plans:
            for ctx_idx in subsets:             # several subsets: their mean prediction
                ain = a_in[:, ctx_idx].expand(b, -1, -1)
                features = net.pccnn.encode(x[..., ctx_idx], ain, s)
                for idx in plan_chunks:
                    aout = torch.from_numpy(a_all[idx])[None].expand(b, -1, -1).to(device)
                    y = net.pccnn.decode(features, ain, aout, s).float().cpu().numpy()
                    y /= len(subsets)
                    for n, c in enumerate(cs):
                        out_pad[c[0]:c[0] + TILE, c[1]:c[1] + TILE, c[2]:c[2] + TILE,
                                idx] += y[n]
    crop = tuple(slice(p[0], p[0] + n) for p, n in zip(pads, data.shape[:3]))
    out = out_pad[crop]
    covered = np.zeros(padded.shape[:3], bool)
    for c in corners:
        covered[c[0]:c[0] + TILE, c[1]:c[1] + TILE, c[2]:c[2] + TILE] = True
    covered = covered[crop]
    for t in dw_targets:                                   # de-normalise per target shell
        xm = xout[int(tgt_labels[t])]
        out[..., t] = np.where(covered, (out[..., t] + 1.0) * xm / 2.0, 0.0)
    b0_targets = np.flatnonzero(tgt_labels == 0)
    if b0_targets.size:
        b0 = np.flatnonzero(bvals <= B0_THRESHOLD)
        if not b0.size:
            raise InputError("b=0 targets requested but the input has no b=0 volume")
        if b0.size == b0_targets.size:
            out[..., b0_targets] = data[..., b0]
        else:
            out[..., b0_targets] = data[..., b0].mean(axis=3, keepdims=True)
    report = {"xmax_context": {str(k): v for k, v in xin.items()},
              "xmax_target": {str(k): v for k, v in xout.items()},
              "tiles": int(len(corners)), "chunks": [len(c) for c in chunks],
              "context_volumes": int(context.size), "targets": int(len(target_bvals)),
              "b0_targets": int(b0_targets.size), "variant": model.variant, "device": device,
              "context_mode": context_mode, "max_context": max_context,
              "context_subsets": [[len(i) for i in subsets] for subsets, _ in plans]}
    return out, report


def predict_files(dwi_file, bval_file, bvec_file, target_bval_file, target_bvec_file,
                  mask_file, weights, out_file, *, variant: str | None = None,
                  batch_size: int = 4, device: str = "cpu", context_mode: str = "shell",
                  max_context: int = -1, progress: bool = False) -> dict:
    """File front end of :func:`predict_subject`: writes a float32 NIfTI-1 series on the
    input's grid (the reference writes NIfTI-2).

    ``max_context``: 0 feeds whole shells; -1 (default) uses the top of the model's
    training range (``q_in_max`` in the ``.json`` that ``srprep-train`` writes beside the
    weights; 20 for the official models, trained on 6-20 directions).
    """
    from srprep.core.dwi import read_bvals_bvecs
    from srprep.core.nifti import load_image, save_image

    from .network import from_official_checkpoint

    img = load_image(dwi_file)
    if img.ndim != 4:
        raise InputError(f"{dwi_file}: expected a 4-D dMRI series")
    bvals, bvecs = read_bvals_bvecs(bval_file, bvec_file, img.shape[3])
    tb, tv = read_bvals_bvecs(target_bval_file, target_bvec_file)
    mask = np.asarray(load_image(mask_file, allow_4d=False).dataobj) > 0
    model = from_official_checkpoint(weights, variant)
    out, report = predict_subject(model, np.asarray(img.dataobj), bvals, bvecs, tb, tv, mask,
                                  img.affine, batch_size=batch_size, device=device,
                                  context_mode=context_mode,
                                  max_context=pccnn_max_context(weights) if max_context < 0
                                  else (max_context or None), progress=progress)
    save_image(out, img.affine, out_file, dtype=np.float32)
    return report
