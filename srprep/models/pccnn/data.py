"""PCCNN training data: subjects (memory-mapped q-first ``.npy`` series, gradient table,
mask, per-shell xmax) and the dataset of 10³ brain tiles with a fresh q-space draw per item
(context and targets by farthest-point sampling; see :mod:`srprep.models.pccnn.train` for
the recipe and where it departs from the reference)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from srprep.core.dwi import load_xmax, shell_labels

from .qspace import fps_order, patch_centroids, qcoords, tile_grid

TILE = 10


@dataclass
class DWISubject:
    """Prepared training subject (see :func:`srprep.core.dwi.dwi_to_npy_file`)."""

    npy: Path
    bvals: np.ndarray
    bvecs: np.ndarray
    mask: np.ndarray
    xmax: dict
    affine: np.ndarray
    name: str = ""

    @classmethod
    def from_files(cls, npy, bval, bvec, mask_file, xmax_json, name: str = "") -> DWISubject:
        import nibabel as nib

        from srprep.core.dwi import read_bvals_bvecs

        arr = np.load(npy, mmap_mode="r")
        bvals, bvecs = read_bvals_bvecs(bval, bvec, arr.shape[0])
        m = nib.load(str(mask_file))
        return cls(Path(npy), bvals, bvecs, np.asarray(m.dataobj) > 0, load_xmax(xmax_json),
                   m.affine, name)


@dataclass
class QSpaceInfo:
    """q-space sampling: context count range, targets per sample, shells, seed."""

    q_in_min: int = 6
    q_in_max: int = 20
    q_out: int = 10
    shells: tuple[int, ...] | None = None     # default: every shell the subjects share
    seed: int = 0
    cross_shell: bool = False  # True: targets from any shell (reference); False: the context's
    masked: bool = True        # loss on brain voxels only (targets are NaN outside the mask)


class PCCNNDataset(Dataset):
    """(inputs, target) items; inputs = (dmri_in, bvec_in, bvec_out[, patch_pos])."""

    def __init__(self, subjects: list[DWISubject], qinfo: QSpaceInfo, *, spatial: bool,
                 deterministic: bool = False, repeats: int = 1):
        self.subjects, self.q, self.spatial, self.det = subjects, qinfo, spatial, deterministic
        self.repeats = max(1, int(repeats))   # draws per tile and epoch (fresh q-space each)
        self.items: list[tuple[int, np.ndarray, int]] = []
        self.positions: list[np.ndarray] = []
        self.labels = [shell_labels(s.bvals) for s in subjects]
        shared = set.intersection(*[set(lab) - {0} for lab in self.labels])
        self.shells = sorted(qinfo.shells or shared)
        if not self.shells:
            raise ValueError("the subjects share no diffusion-weighted shell")
        for si, s in enumerate(subjects):
            if any(int(sh) not in s.xmax for sh in self.shells):
                raise ValueError(f"{s.name}: xmax missing for a shell in {self.shells}")
            pads, corners = tile_grid(s.mask.shape, s.mask, TILE)
            self.positions.append(patch_centroids(s.affine, s.mask.shape, s.mask, pads, corners)
                                  if spatial else np.zeros((len(corners), 3), np.float32))
            for k, c in enumerate(corners):
                self.items.append((si, c - np.array([p[0] for p in pads]), k))
        self.combos = [(a, b, q) for a in self.shells for b in self.shells
                       for q in range(qinfo.q_in_min, qinfo.q_in_max + 1, 3)
                       if qinfo.cross_shell or a == b]
        self.epoch = 0
        self._per_subject_index = {}
        counts: dict[int, int] = {}
        for i, (si, _, _) in enumerate(self.items):
            self._per_subject_index[i] = counts.get(si, 0)
            counts[si] = counts.get(si, 0) + 1

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items) * self.repeats

    def _draw(self, i: int, rng: np.random.Generator) -> tuple[int, int, int, bool]:
        if self.det:
            s_in, s_out, q_in = self.combos[self._per_subject_index[i] % len(self.combos)]
            return s_in, s_out, q_in, False
        q_in = int(rng.integers(self.q.q_in_min, self.q.q_in_max + 1))
        s_in = int(rng.choice(self.shells))
        s_out = int(rng.choice(self.shells)) if self.q.cross_shell else s_in
        return s_in, s_out, q_in, True

    def _volumes(self, si: int, s_in: int, s_out: int, q_in: int, rng, random_start: bool):
        sub, labels = self.subjects[si], self.labels[si]
        pool_in = np.flatnonzero(labels == s_in)
        start = int(rng.integers(len(pool_in))) if random_start else 0
        ctx = pool_in[fps_order(sub.bvecs[pool_in], start)[:q_in]]
        pool_out = np.flatnonzero(labels == s_out)
        if s_out == s_in:
            pool_out = np.setdiff1d(pool_out, ctx)
        start = int(rng.integers(len(pool_out))) if random_start else 0
        tgt = pool_out[fps_order(sub.bvecs[pool_out], start)[: self.q.q_out]]
        return ctx, tgt

    def _read(self, si: int, corner: np.ndarray, volumes: np.ndarray) -> np.ndarray:
        """(10, 10, 10, len(volumes)) raw patch, zero outside the volume."""
        arr = np.load(self.subjects[si].npy, mmap_mode="r")
        out = np.zeros((len(volumes), TILE, TILE, TILE), np.float32)
        src, dst = [], []
        for a in range(3):
            lo, hi = corner[a], corner[a] + TILE
            clo, chi = max(lo, 0), min(hi, arr.shape[a + 1])
            src.append(slice(clo, chi))
            dst.append(slice(clo - lo, chi - lo))
        for n, v in enumerate(volumes):         # lazy: reads only the tile's rows
            out[n, dst[0], dst[1], dst[2]] = arr[int(v), src[0], src[1], src[2]]
        return np.moveaxis(out, 0, -1)

    def __getitem__(self, i: int):
        draw, i = i, i % len(self.items)
        si, corner, k = self.items[i]
        rng = np.random.default_rng([self.q.seed, self.epoch, draw]) if not self.det else \
            np.random.default_rng([self.q.seed, i])
        s_in, s_out, q_in, random_start = self._draw(i, rng)
        ctx, tgt = self._volumes(si, s_in, s_out, q_in, rng, random_start)
        sub = self.subjects[si]
        patch = self._read(si, corner, np.concatenate([ctx, tgt]))
        scales = np.array([sub.xmax[int(s_in)]] * len(ctx) + [sub.xmax[int(s_out)]] * len(tgt),
                          np.float32)
        patch = 2.0 * patch / scales - 1.0
        x = np.zeros((TILE, TILE, TILE, self.q.q_in_max), np.float32)
        x[..., : len(ctx)] = patch[..., : len(ctx)]
        a_in = np.zeros((self.q.q_in_max, 3), np.float32)
        a_in[: len(ctx)] = qcoords(sub.bvals[ctx], sub.bvecs[ctx])
        a_out = qcoords(sub.bvals[tgt], sub.bvecs[tgt])
        inputs = [torch.from_numpy(x), torch.from_numpy(a_in), torch.from_numpy(a_out)]
        if self.spatial:
            inputs.append(torch.from_numpy(self.positions[si][k]))
        target = np.ascontiguousarray(patch[..., len(ctx):])
        if self.q.masked:
            target[~self._mask_tile(si, corner)] = np.nan
        return inputs, torch.from_numpy(target)

    def _mask_tile(self, si: int, corner: np.ndarray) -> np.ndarray:
        mask = self.subjects[si].mask
        out = np.zeros((TILE,) * 3, bool)
        src, dst = [], []
        for a in range(3):
            lo = corner[a]
            clo, chi = max(lo, 0), min(lo + TILE, mask.shape[a])
            src.append(slice(clo, chi))
            dst.append(slice(clo - lo, chi - lo))
        out[tuple(dst)] = mask[tuple(src)]
        return out
