"""PCCNN prediction time and peak memory per subject (released network size).

A 96×96×60 ellipsoidal brain with 30 context directions (b=1000, + one b=0) predicted
onto 90 target directions, with random weights (the cost does not depend on them).
``--max-tiles N`` runs only N brain tiles and extrapolates the whole-subject time (the
figure printed says so); on a GPU the default is the whole subject.

    python benchmarks/pccnn.py                         # CPU: 24 tiles, extrapolated
    python benchmarks/pccnn.py --devices cuda --variant PCCNN-Bv-Sp
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from _common import available, header, peak_gpu_gb, peak_rss_gb


def run(device: str, args) -> dict:
    import torch

    from srprep.core.dwi import uniform_directions
    from srprep.models.pccnn.qspace import tile_grid
    from srprep.models.pccnn import PCCNN
    from srprep.models.pccnn.inference import predict_subject

    shape = tuple(args.shape)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    mask = (x / 0.9) ** 2 + (y / 0.9) ** 2 + (z / 0.85) ** 2 <= 1
    _, corners = tile_grid(shape, mask)
    total_tiles = len(corners)
    if args.max_tiles and device == "cpu" and args.max_tiles < total_tiles:
        keep = np.zeros(shape, bool)          # restrict the mask to the first N tiles
        for c in corners[: args.max_tiles]:
            keep[max(c[0] - 3, 0):c[0] + 7, max(c[1] - 3, 0):c[1] + 7, max(c[2] - 2, 0):c[2] + 8] = True
        run_mask = mask & keep
    else:
        run_mask = mask
    _, run_corners = tile_grid(shape, run_mask)
    rng = np.random.default_rng(0)
    bvals = np.concatenate([[0.0], np.full(args.context, 1000.0)])
    bvecs = np.concatenate([[[0, 0, 0]], uniform_directions(args.context, 1)])
    data = (rng.random(shape + (len(bvals),), dtype=np.float32) * 500 * mask[..., None])
    tb = np.full(args.targets, 1000.0)
    tv = uniform_directions(args.targets, 2)
    torch.manual_seed(0)
    net = PCCNN(args.variant).eval()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    predict_subject(net, data, bvals, bvecs, tb, tv, run_mask, affine,
                    batch_size=args.batch_size, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    sec = time.perf_counter() - t0
    per_tile = sec / len(run_corners)
    whole = per_tile * total_tiles
    res = {"device": device, "variant": args.variant, "shape": list(shape),
           "context": args.context, "targets": args.targets, "tiles_subject": total_tiles,
           "tiles_run": len(run_corners), "seconds_run": round(sec, 1),
           "seconds_per_tile": round(per_tile, 3),
           "seconds_subject" + ("_extrapolated" if len(run_corners) < total_tiles else ""):
               round(whole, 1),
           "voxels_per_s": round(int(mask.sum()) / whole),
           "peak_rss_gb": peak_rss_gb()}
    if device == "cuda":
        res["peak_gpu_memory_gb"] = peak_gpu_gb()
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--variant", default="PCCNN")
    parser.add_argument("--shape", type=int, nargs=3, default=(96, 96, 60))
    parser.add_argument("--context", type=int, default=30)
    parser.add_argument("--targets", type=int, default=90)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-tiles", type=int, default=24, help="CPU only; 0 = all")
    args = parser.parse_args()
    print(header())
    for device in available(args.devices):
        print(json.dumps(run(device, args)), flush=True)


if __name__ == "__main__":
    main()
