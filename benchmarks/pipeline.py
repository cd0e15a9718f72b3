"""Pipeline-level figures: per-stage time and memory, Pydra overhead, dataset throughput,
and how time grows with volume size.  Prints markdown tables (medians of repeats).

    python benchmarks/pipeline.py stages      # per stage, per method, demo participant
    python benchmarks/pipeline.py overhead    # Pydra task vs direct core call
    python benchmarks/pipeline.py throughput  # BIDS App, 6 demo participants, --nprocs 1/2
    python benchmarks/pipeline.py scaling     # 4+ volume sizes, fitted exponent
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def peak_rss(out: dict):
    """Peak resident memory (GB) above the starting level, sampled every 10 ms."""
    import psutil

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        out["seconds"] = time.perf_counter() - start
        out["peak_gb"] = (peak[0] - base) / 2**30


def _demo(resolution: float) -> Path:
    from srprep.bids_app.demo import build_demo

    root = Path(tempfile.mkdtemp(prefix="srprep-bench-"))
    build_demo(root, participants=2, resolution=resolution)
    return root


def stages(args) -> None:
    """Time/memory of each stage for each method on one demo participant."""
    import nibabel as nib

    from srprep.core.nifti import load_image, save_image
    from srprep.core.register import coregister
    from srprep.core.resample import reslice
    from srprep.models.unires.fit import InputImage, Settings, fit

    root = _demo(args.resolution)
    anat = sorted((root / "bids" / "sub-02" / "ses-1" / "anat").glob("*.nii.gz"))
    rows = []

    def stage(method, name, fn):
        rec = {}
        with peak_rss(rec):
            result = fn()
        rows.append((method, name, rec["seconds"], rec["peak_gb"]))
        return result

    for method, order in (("linear", 1), ("cubic", 3)):
        imgs = stage(method, "load", lambda: [load_image(f) for f in anat])
        outs = stage(method, "resample", lambda: [reslice(np.asarray(i.dataobj), i.affine,
                                                          args.resolution, order=order) for i in imgs])
        stage(method, "write", lambda: [save_image(d, a, Path(tempfile.mkdtemp()) / "o.nii.gz",
                                                   dtype=np.int16) for d, a in outs])
    imgs = stage("unires", "load", lambda: [load_image(f) for f in anat])
    mats = stage("unires", "register", lambda: coregister(
        [(np.asarray(i.dataobj), i.affine) for i in imgs], fast=True))
    inputs = [InputImage(np.asarray(i.dataobj), np.linalg.solve(m, i.affine), c)
              for c, (i, m) in enumerate(zip(imgs, mats))]
    res = stage("unires", "infer (fit)", lambda: fit(
        inputs, Settings(voxel_size=args.resolution), progress=None))
    stage("unires", "write", lambda: [save_image(res.images[c], res.affine,
                                                 Path(tempfile.mkdtemp()) / "o.nii.gz",
                                                 dtype=np.int16) for c in range(3)])
    print(f"# demo participant sub-02 at {args.resolution} mm: T1w iso, T2w/PDw 4 mm slices")
    print("| method | stage | seconds | peak memory (GB above baseline) |")
    print("|---|---|---|---|")
    for method, name, sec, gb in rows:
        print(f"| {method} | {name} | {sec:.2f} | {gb:.3f} |")
    del nib


def overhead(args) -> None:
    """Median wall time of one small task run directly vs through Pydra."""
    from srprep.bids_app import engine
    from srprep.core.resample import reslice_file
    from srprep.tasks.resample import Reslice
    from tests.helpers import blob_volume, write_nifti

    tmp = Path(tempfile.mkdtemp())
    engine.configure_environment(tmp, 1)
    src = write_nifti(tmp / "in.nii.gz", blob_volume((48, 48, 16)), np.diag([1, 1, 3, 1.0]))
    direct, debug, cf = [], [], []
    for i in range(args.repeats):
        t = time.perf_counter()
        reslice_file(src, tmp / f"d{i}.nii.gz", 1.0)
        direct.append(time.perf_counter() - t)
        for worker, store in (("debug", debug), ("cf", cf)):
            t = time.perf_counter()
            out = engine.run(Reslice(in_file=src, voxel_size=[1.0 + (i + 1) * 1e-4] * 3),
                             tmp / f"cache-{worker}-{i}", worker=worker)
            assert out.ok, out.error
            store.append(time.perf_counter() - t)
    # amortised: 8 tasks in one submission share the spawned worker processes
    batch = {}
    for worker in ("debug", "cf"):
        t = time.perf_counter()
        task = Reslice().split(voxel_size=[[1.0 + k * 1e-6] * 3 for k in range(8)], in_file=[src] * 8)
        out = engine.run(task, tmp / f"cache-batch-{worker}", worker=worker, n_procs=2)
        assert out.ok, out.error
        batch[worker] = (time.perf_counter() - t) / 8
    d = statistics.median(direct)
    print("| call | median seconds | overhead vs direct (s) |")
    print("|---|---|---|")
    print(f"| direct core call | {d:.3f} | - |")
    print(f"| Pydra, debug worker (fresh cache) | {statistics.median(debug):.3f} | "
          f"{statistics.median(debug) - d:.3f} |")
    print(f"| Pydra, cf worker (spawned process, fresh cache) | {statistics.median(cf):.3f} | "
          f"{statistics.median(cf) - d:.3f} |")
    for worker in ("debug", "cf"):
        print(f"| Pydra, {worker}, per task in a split of 8 (2 processes for cf) | "
              f"{batch[worker]:.3f} | {batch[worker] - d:.3f} |")


def throughput(args) -> None:
    """Dataset throughput of the BIDS App vs ``--nprocs`` (one graph over participants x
    methods), the outputs of the runs compared voxel for voxel, and the cost of a fully
    cached re-run per participant x method (Pydra + export + report overhead)."""
    import nibabel as nib

    from srprep.bids_app.cli.run import main
    from srprep.bids_app.demo import build_demo

    root = Path(tempfile.mkdtemp(prefix="srprep-bench-"))
    build_demo(root, participants=args.participants, resolution=args.resolution)
    n = args.participants
    print(f"| method | --nprocs | seconds for {n} participants (median of {args.repeats}) "
          f"| participants/hour | speed-up | cached re-run per participant (s) |")
    print("|---|---|---|---|---|---|")
    for method in args.methods:
        seconds, outputs = {}, {}
        for nprocs in (1, 2):
            runs, cached = [], []
            for rep in range(args.repeats):
                tag = f"{method}-{nprocs}-{rep}"
                cmd = [str(root / "bids"), str(root / f"out-{tag}"), "participant", "-w",
                       str(root / f"work-{tag}"), "--method", method, "--vx",
                       str(args.resolution), "--nprocs", str(nprocs), "--omp-nthreads", "1",
                       "--skip-bids-validation"]
                t = time.perf_counter()
                assert main(cmd) == 0
                runs.append(time.perf_counter() - t)
                t = time.perf_counter()
                assert main(cmd) == 0                 # everything cached: the overhead
                cached.append(time.perf_counter() - t)
            seconds[nprocs] = statistics.median(runs)
            outputs[nprocs] = sorted((root / f"out-{method}-{nprocs}-0").rglob("*.nii.gz"))
            speed = seconds[1] / seconds[nprocs]
            print(f"| {method} | {nprocs} | {seconds[nprocs]:.1f} | "
                  f"{n * 3600 / seconds[nprocs]:.0f} | {speed:.2f}x | "
                  f"{statistics.median(cached) / n:.2f} |", flush=True)
        a, b = outputs[1], outputs[2]
        assert [p.name for p in a] == [p.name for p in b] and a
        worst = max(float(np.max(np.abs(np.asarray(nib.load(x).dataobj, dtype=np.float64)
                                        - np.asarray(nib.load(y).dataobj, dtype=np.float64))))
                    for x, y in zip(a, b))
        print(f"<!-- {method}: {len(a)} outputs, largest difference --nprocs 1 vs 2: "
              f"{worst:g} -->")


def scaling(args) -> None:
    """Seconds vs number of voxels for cubic reslicing and UniRes (20 iterations)."""
    from srprep.core.resample import reslice
    from srprep.models.unires.fit import Settings, fit
    from srprep.models.unires.phantom import mni_phantom

    sizes, t_cubic, t_unires = [], [], []
    print("| voxel (mm) | output voxels | cubic reslice (s) | UniRes 20 it. (s) |")
    print("|---|---|---|---|")
    for vox in args.voxels:
        ph = mni_phantom(voxel=vox, thickness=4 * vox)
        n = int(np.prod(ph.shape))
        im = ph.images[2]
        t = time.perf_counter()
        reslice(im.data, im.affine, vox, order=3)
        tc = time.perf_counter() - t
        t = time.perf_counter()
        fit(ph.images, Settings(voxel_size=vox, max_iter=20), grid=(ph.affine, ph.shape),
            progress=None)
        tu = time.perf_counter() - t
        sizes.append(n)
        t_cubic.append(tc)
        t_unires.append(tu)
        print(f"| {vox} | {n} | {tc:.2f} | {tu:.1f} |")
    for name, ts in (("cubic", t_cubic), ("unires", t_unires)):
        slope = np.polyfit(np.log(sizes), np.log(ts), 1)[0]
        print(f"\n{name}: time ~ voxels^{slope:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    for name in ("stages", "overhead", "throughput", "scaling"):
        p = sub.add_parser(name)
        p.add_argument("--resolution", type=float, default=2.0)
        p.add_argument("--repeats", type=int, default=5)
        p.add_argument("--participants", type=int, default=6)
        p.add_argument("--methods", nargs="+", default=["cubic", "unires"])
        p.add_argument("--voxels", nargs="+", type=float, default=[3.0, 2.5, 2.0, 1.5, 1.25])
    args = parser.parse_args()
    os.environ.setdefault("NO_ET", "1")
    {"stages": stages, "overhead": overhead, "throughput": throughput,
     "scaling": scaling}[args.what](args)


if __name__ == "__main__":
    main()
