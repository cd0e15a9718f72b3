"""AID cost for the released brain configuration (fastmri_320_cplx, 139 M parameters):
seconds per network evaluation in sampling mode (fixed causal attention over a full
10-slice window, and the released single-frame attention), seconds per data-consistency
step (16 coils, 320x320), and the implied seconds per reconstructed slice for a number of
reverse steps. Random weights unless --weights points at the official file (the cost does
not depend on the values).

    python benchmarks/aid.py --device cpu --repeats 3 --steps 50 100 250 1000
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from srprep.core import kspace as K
from srprep.models.aid import build, from_official_checkpoint
from srprep.models.aid.recon import _Operator


def _time(fn, repeats, device):
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 100, 250, 1000])
    ap.add_argument("--coils", type=int, default=16)
    ap.add_argument("--cond-iters", type=int, default=4)
    ap.add_argument("--skip-full-window", action="store_true")
    a = ap.parse_args(argv)
    dev = a.device
    net = (from_official_checkpoint(a.weights, "fastmri_320_cplx") if a.weights
           else build("fastmri_320_cplx")).to(dev).eval()
    cfg = net.config
    n = cfg.image_size
    g = torch.Generator().manual_seed(0)
    window = torch.randn(1, cfg.seq_length, 2, n, n, generator=g).to(dev)
    x = torch.randn(1, 2, n, n, generator=g).to(dev)
    t = torch.tensor([500], device=dev)
    res = {"device": dev, "machine": platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "config": "fastmri_320_cplx", "parameters": sum(p.numel() for p in net.parameters()),
           "weights": "official" if a.weights else "random"}
    if dev == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with torch.no_grad():
        net.forward_sample(window, x, t, released_attention=True)           # warm-up
        res["eval_released_s"], res["eval_released_all"] = _time(
            lambda: net.forward_sample(window, x, t, released_attention=True), a.repeats, dev)
        if not a.skip_full_window:
            res["eval_full_window_s"], res["eval_full_window_all"] = _time(
                lambda: net.forward_sample(window, x, t), a.repeats, dev)
    maps = torch.as_tensor(K.birdcage_maps(a.coils, (n, n)), device=dev)
    mask = torch.as_tensor(K.line_mask(n, 4).astype(np.float32), device=dev)
    op = _Operator(mask, maps)
    z = torch.randn(n, n, dtype=torch.complex64, generator=g).to(dev)
    target = op.adjoint(torch.randn(a.coils, n, n, dtype=torch.complex64, generator=g).to(dev))
    res["dc_step_s"], _ = _time(lambda: [z - (op.normal(z) - target) for _ in range(10)],
                                a.repeats, dev)
    res["dc_step_s"] /= 10
    if dev == "cuda":
        res["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2)
    per_step = {k: res[f"eval_{k}_s"] + a.cond_iters * res["dc_step_s"]
                for k in ("released", "full_window") if f"eval_{k}_s" in res}
    res["seconds_per_slice"] = {k: {str(s): round(s * v, 1) for s in a.steps}
                                for k, v in per_step.items()}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
