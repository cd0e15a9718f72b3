"""EasySR inference: slab-wise generation along the thick-slice axis (exactly equal to
whole-volume inference) and the file-level entry point used by the Pydra task."""
from __future__ import annotations

import os

import numpy as np
import torch

from .network import ResnetGenerator, from_official_checkpoint


@torch.no_grad()
def generate(net: ResnetGenerator, volume: np.ndarray, axis: int, *, device: str = "cpu",
             max_voxels: int = 2_000_000, progress: bool = False) -> np.ndarray:
    """Super-resolve ``volume`` (X, Y, Z, already normalised) ``net.factor``× along
    ``axis`` (the volume's thick-slice axis, moved onto the generator's up-sampling axis).

    The generator is fully convolutional with a receptive field of 2·blocks + 3 voxels
    in each direction, so the volume is cut into slabs along its longest other axis with
    a halo one voxel wider: results equal whole-volume inference exactly (eval-mode BatchNorm has
    no batch dependence) while memory stays bounded by ``max_voxels`` input voxels.
    """
    net = net.to(device).eval()
    x = np.moveaxis(np.asarray(volume, dtype=np.float32), axis, net.axis)
    others = [a for a in range(3) if a != net.axis]
    cut = max(others, key=lambda a: x.shape[a])
    per_slab = max(1, max_voxels // max(1, x.size // x.shape[cut]))
    halo = 2 * net.n_residual_blocks + 4
    out_shape = list(x.shape)
    out_shape[net.axis] *= net.factor
    out = np.empty(out_shape, dtype=np.float32)
    starts = range(0, x.shape[cut], per_slab)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="easysr", unit="slab")
    for start in starts:
        stop = min(start + per_slab, x.shape[cut])
        lo, hi = max(0, start - halo), min(x.shape[cut], stop + halo)
        slab = np.take(x, np.arange(lo, hi), axis=cut)
        y = net(torch.from_numpy(np.ascontiguousarray(slab))[None, None].to(device))[0, 0]
        y = y.float().cpu().numpy()
        keep = [slice(None)] * 3
        keep[cut] = slice(start - lo, start - lo + stop - start)
        dest = [slice(None)] * 3
        dest[cut] = slice(start, stop)
        out[tuple(dest)] = y[tuple(keep)]
    return np.moveaxis(out, net.axis, axis)


def infer_file(lr_file, weights, out_file, grids: dict, *, device: str = "cpu",
               max_voxels: int = 2_000_000) -> dict:
    """Run a generator on a prepared (model-grid, normalised) image and write the result
    on the generator's output grid (``grids`` from :func:`srprep.core.throughplane.prepare_file`)."""
    from srprep.core.nifti import load_image, save_image
    from srprep.core.throughplane import SRGrids

    g = SRGrids.from_dict(grids)
    net = from_official_checkpoint(weights)
    if not isinstance(net, ResnetGenerator):
        raise ValueError(f"{os.path.basename(os.fspath(weights))} is a discriminator, not a generator")
    if net.factor != g.factor:
        raise ValueError(f"model upsamples x{net.factor} but the grids were made for x{g.factor}")
    lr = load_image(lr_file, allow_4d=False)
    out = generate(net, np.asarray(lr.dataobj, np.float32), g.axis, device=device,
                   max_voxels=max_voxels)
    save_image(out, g.hr_affine, out_file, dtype=np.float32)
    return {"factor": net.factor, "model_axis": net.axis, "grid_axis": g.axis,
            "lr_shape": list(g.lr_shape), "sr_shape": list(out.shape)}
