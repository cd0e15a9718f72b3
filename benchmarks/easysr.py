"""EasySR generator inference speed and memory (released configuration, ×3).

Two volume sizes: the reference's rat grid (128×64×128 thick -> 128×192×128 at 0.15 mm)
and a human brain at 1 mm with 3 mm slices (182×218×61 -> 182×218×183).  Prints the
median seconds of ``--repeats`` runs, output voxels/s and peak memory (RSS on CPU,
allocated on CUDA) for whole-volume and slab-tiled inference.

    python benchmarks/easysr.py
    python benchmarks/easysr.py --devices cuda --repeats 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from _common import available, header, peak_gpu_gb, peak_rss_gb

CASES = {"rat_0.15mm": (128, 128, 64), "human_1mm": (182, 218, 61)}  # thick axis last


def run(device: str, case: str, max_voxels: int, repeats: int) -> dict:
    import torch

    from srprep.models.easysr import ResnetGenerator, generate

    torch.manual_seed(0)
    net = ResnetGenerator().eval()          # timing does not depend on the weights
    vol = np.random.default_rng(0).random(CASES[case], dtype=np.float32) * 255
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    generate(net, vol[:32, :32], 2, device=device)  # warm-up
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        out = generate(net, vol, 2, device=device, max_voxels=max_voxels)
        sync()
        times.append(time.perf_counter() - t0)
    sec = statistics.median(times)
    res = {"device": device, "case": case, "input": list(vol.shape), "output": list(out.shape),
           "max_voxels_per_slab": max_voxels, "seconds_median": round(sec, 2),
           "output_voxels_per_s": round(out.size / sec),
           "peak_rss_gb": peak_rss_gb()}
    if device == "cuda":
        res["peak_gpu_memory_gb"] = peak_gpu_gb()
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-voxels", type=int, nargs="+", default=[2_000_000, 100_000_000])
    args = parser.parse_args()
    print(header())
    for device in available(args.devices):
        for case in CASES:
            for mv in args.max_voxels:
                print(json.dumps(run(device, case, mv, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
