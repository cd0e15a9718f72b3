"""How many GPU steps a multi-GPU node runs at once: a simulation of srprep's GPU slots
(``core.device.gpu_slot``) with fake device lists, no GPU needed.

``--procs`` worker processes (what ``--nprocs`` gives the default worker) each run
``--steps`` GPU steps of ``--seconds`` (a step holds its device's slot, as an inference
or UniRes fit does) and as many CPU steps (which never take a slot).  Prints, per device
count: the most GPU steps that ran at once, the mean number busy while GPU work was
pending, each device's share of the GPU work, and the wall time against the ideal.

    python benchmarks/gpu_schedule.py --devices 1 2 4 --procs 8
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time


def _worker(args) -> list[tuple]:
    devices, steps, seconds, lock_dir = args
    os.environ["SRPREP_LOCK_DIR"] = lock_dir
    from srprep.core.device import gpu_slot

    out = []
    for _ in range(steps):
        with gpu_slot("cpu") as dev:          # CPU work never waits for a slot
            t = time.monotonic()
            time.sleep(seconds / 4)
            out.append((dev, t, time.monotonic()))
        asked = time.monotonic()
        with gpu_slot("cuda", devices=devices, poll_s=0.05) as dev:
            t = time.monotonic()
            time.sleep(seconds)
            out.append((dev, t, time.monotonic(), t - asked))
    return out


def simulate(n_devices: int, procs: int, steps: int, seconds: float) -> dict:
    devices = list(range(n_devices))
    with tempfile.TemporaryDirectory() as lock_dir:
        ctx = multiprocessing.get_context("spawn")
        start = time.monotonic()
        with ctx.Pool(procs) as pool:
            records = [r for chunk in pool.map(_worker, [(devices, steps, seconds, lock_dir)]
                                               * procs) for r in chunk]
        wall = time.monotonic() - start
    gpu = [r for r in records if r[0] != "cpu"]
    events = sorted([(r[1], 1) for r in gpu] + [(r[2], -1) for r in gpu])
    busy, most, area = 0, 0, 0.0
    first, last = events[0][0], events[-1][0]
    for (t, step), (t_next, _) in zip(events, events[1:] + [(last, 0)]):
        busy += step
        most = max(most, busy)
        area += busy * (t_next - t)
    share = {d: sum(r[0] == f"cuda:{d}" for r in gpu) / len(gpu) for d in devices}
    ideal = steps * procs * seconds / min(n_devices, procs)
    return {"devices": n_devices, "most_at_once": most, "mean_busy": area / (last - first),
            "share": share, "wait_s": statistics.median(r[3] for r in gpu),
            "gpu_span_s": last - first, "ideal_s": ideal, "wall_s": wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--seconds", type=float, default=0.5)
    opts = p.parse_args()
    print("| GPUs | worker processes | GPU steps | most at once | mean busy | per-device "
          "share | median wait (s) | GPU span (s) | ideal (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in opts.devices:
        r = simulate(n, opts.procs, opts.steps, opts.seconds)
        share = " / ".join(f"{v:.2f}" for v in r["share"].values())
        print(f"| {n} | {opts.procs} | {opts.procs * opts.steps} x {opts.seconds:g} s | "
              f"{r['most_at_once']} | {r['mean_busy']:.2f} | {share} | {r['wait_s']:.2f} | "
              f"{r['gpu_span_s']:.1f} | {r['ideal_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
