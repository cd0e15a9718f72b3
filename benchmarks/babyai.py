"""BABY-AI inference speed and memory with the released network configuration.

Builds the official 379 M-parameter U-Net (random weights: speed does not depend on
them), then measures (1) one forward pass of a 32^3 window batch, median of repeats, and
(2) sliding-window inference over a padded atlas volume (192x224x192 at 1 mm, as the
reference) or a smaller crop of it, printing seconds, windows/s, voxels/s and peak memory.

    python benchmarks/babyai.py                           # CPU and CUDA (when present)
    python benchmarks/babyai.py --volume 96 96 96         # quicker, same per-window cost
    python benchmarks/babyai.py --overlap 0.25 0.5 --batch-size 1 4 --mode gaussian
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from _common import available, header, peak_gpu_gb, peak_rss_gb


def run(device: str, args, overlap: float, batch_size: int) -> dict:
    import torch

    from srprep.models.babyai import build_network
    from srprep.models.sliding_window import sliding_window

    torch.manual_seed(0)
    net = build_network().to(device).eval()
    params = sum(p.numel() for p in net.parameters())
    x = torch.rand(batch_size, 2, 32, 32, 32, device=device)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    with torch.no_grad():
        net(x)  # warm-up (allocator, cuDNN autotune)
        for _ in range(args.repeats):
            sync()
            t0 = time.perf_counter()
            net(x)
            sync()
            times.append(time.perf_counter() - t0)
    per_batch = statistics.median(times)

    rng = np.random.default_rng(0)
    volume = rng.random((2, *args.volume), dtype=np.float32)
    stride = [max(1, int(32 * (1 - overlap))) for _ in range(3)]
    windows = int(np.prod([int(np.ceil((s - 32) / st)) + 1 for s, st in zip(args.volume, stride)]))
    sync()
    t0 = time.perf_counter()
    sliding_window(net, volume, overlap=overlap, mode=args.mode,
                   batch_size=batch_size, device=device)
    sync()
    total = time.perf_counter() - t0
    voxels = int(np.prod(args.volume))
    result = {
        "device": device, "parameters": params, "batch_size": batch_size,
        "seconds_per_batch_median": round(per_batch, 4),
        "volume": list(args.volume), "overlap": overlap, "mode": args.mode,
        "windows": windows, "seconds_volume": round(total, 1),
        "windows_per_s": round(windows / total, 2), "voxels_per_s": round(voxels / total),
        "peak_rss_gb": peak_rss_gb(),
    }
    if device == "cuda":
        result["peak_gpu_memory_gb"] = peak_gpu_gb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volume", type=int, nargs=3, default=(192, 224, 192),
                        help="padded volume size (multiples of 32; default: the 1 mm atlas)")
    parser.add_argument("--overlap", type=float, nargs="+", default=[0.5])
    parser.add_argument("--mode", choices=("constant", "gaussian"), default="constant")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    args = parser.parse_args()
    if any(s % 32 for s in args.volume):
        parser.error("--volume sizes must be multiples of 32")
    print(header())
    for device in available(args.devices):
        for overlap in args.overlap:
            for batch_size in args.batch_size:
                print(json.dumps(run(device, args, overlap, batch_size)), flush=True)


if __name__ == "__main__":
    main()
