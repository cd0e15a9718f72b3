"""UniRes speed and memory: a three-contrast reconstruction on the MNI phantom.

Prints seconds per iteration (median), total seconds, iterations, peak memory and
voxels/s, plus PSNR against the ground truth, for CPU and (when present) CUDA.

    python benchmarks/unires.py                      # 1 mm, 4 mm slices, to convergence
    python benchmarks/unires.py --max-iter 10        # per-iteration figures only
    python benchmarks/unires.py --motion             # co-registered (oblique) inputs
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np

from _common import available, header


def _rigid(angles, shift):
    from scipy.spatial.transform import Rotation

    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    m[:3, 3] = shift
    return m


def run(device: str, args) -> dict:
    import torch

    from srprep.core.metrics import psnr
    from srprep.models.unires.fit import Settings, fit
    from srprep.models.unires.phantom import mni_phantom

    motion = None
    if args.motion:
        motion = [np.eye(4), _rigid((2, -1.5, 1), (1.5, -2, 1)), _rigid((-1, 2, -2), (-2, 1, 2.5))]
    ph = mni_phantom(voxel=args.voxel, thickness=args.thickness, motion=motion)
    if motion is not None:   # as after co-registration: affines carry the motion (oblique)
        for im, m in zip(ph.images, motion):
            im.affine = m @ im.affine
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    res = fit(ph.images, Settings(voxel_size=args.voxel, max_iter=args.max_iter, device=device),
              grid=(ph.affine, ph.shape), progress=None)
    total = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    per_it = statistics.median(res.history.seconds)
    voxels = int(np.prod(ph.shape))
    return {
        "device": device, "grid": list(ph.shape), "voxels": voxels,
        "iterations": res.iterations, "seconds_total": round(total, 1),
        "seconds_per_iteration_median": round(per_it, 3),
        "voxel_iterations_per_s": round(voxels / per_it),
        "peak_memory_gb": round(res.peak_memory_gb, 2),
        "cpu_user_s": round(after.ru_utime - usage.ru_utime, 1),
        "cpu_system_s": round(after.ru_stime - usage.ru_stime, 1),
        "minor_page_faults": after.ru_minflt - usage.ru_minflt,
        "psnr_db": [round(psnr(ph.truth[c], res.images[c], ph.mask), 2) for c in range(3)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--voxel", type=float, default=1.0)
    parser.add_argument("--thickness", type=float, default=4.0)
    parser.add_argument("--max-iter", type=int, default=512)
    parser.add_argument("--motion", action="store_true",
                        help="rotated/shifted stacks (the general, non-separable sampling path)")
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--release-freed-memory", action="store_true",
                        help="glibc's default (freed large blocks go back to the kernel), as "
                             "before keep_freed_memory() was called by the App's fit task")
    args = parser.parse_args()
    if not args.release_freed_memory:
        from srprep.core.device import keep_freed_memory

        keep_freed_memory()
    print(header())
    for device in available(args.devices):
        print(json.dumps(run(device, args)))


if __name__ == "__main__":
    main()
