"""UniRes against cubic interpolation on the demo dataset: what wins, what loses, and why.

Builds (or reuses) ``srprep-demo OUT --no-run --resolution R`` and fits each participant's
T1w + T2w (4 mm axial) + PDw (4 mm coronal) with several UniRes variants through the same
library calls the App makes (co-registration, screening, fit).  Every output is scored on
the noise-free truth's grid (trilinear when the output lies on another grid) inside the
brain (truth > 10 % of its 99th percentile, peak = truth max), next to a cubic B-spline
reslice of each input; stripe power is the error power at the slice frequency.

    python benchmarks/unires_demo.py /tmp/demo2 --resolution 2
    python benchmarks/unires_demo.py /tmp/demo1 --resolution 1 --variants default
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from _common import header

SUFFIXES = ("T1w", "T2w", "PDw")
THICK = {"T1w": None, "T2w": 2, "PDw": 1}
#: name -> (fit settings, co-register, co-registration tolerance)
VARIANTS = {
    "default": ({}, True, 0.25),
    "reference-grid": ({"grid": "mean"}, True, 0.0),      # mean space, every estimate applied
    "no-coregister": ({}, False, None),
    "coregister-all": ({}, True, 0.0),                     # no screening
    "reg-scale-8": ({"reg_scale": 8.0}, True, 0.25),
    "reg-scale-16": ({"reg_scale": 16.0}, True, 0.25),
}


def load(root: Path, participant: str):
    import nibabel as nib

    def read(folder, suffix):
        img = nib.load(root / folder / f"sub-{participant}/ses-1/anat"
                       / f"sub-{participant}_ses-1_{suffix}.nii.gz")
        return np.asarray(img.dataobj, np.float32), img.affine

    return [read("bids", s) for s in SUFFIXES], {s: read("groundtruth", s) for s in SUFFIXES}


def score(estimate, affine, truth, truth_affine, suffix, thickness_mm=4.0) -> dict:
    from srprep.core.metrics import ssim, stripe_power
    from srprep.core.resample import resample

    same = estimate.shape == truth.shape and np.allclose(affine, truth_affine, atol=1e-4)
    est = estimate if same else resample(estimate, affine, truth_affine, truth.shape, order=1,
                                         mode="constant")
    mask = truth > 0.1 * np.percentile(truth, 99)
    out = {"psnr": 10 * np.log10(truth.max() ** 2 / np.mean((est[mask] - truth[mask]) ** 2)),
           "ssim": ssim(truth, est, mask), "stripes": float("nan")}
    if THICK[suffix] is not None:
        h = float(np.sqrt((truth_affine[:3, :3] ** 2).sum(0))[THICK[suffix]])
        out["stripes"] = stripe_power(truth, est, THICK[suffix], thickness_mm / h, mask)
    return out


def cubic(inputs, truths) -> dict:
    from srprep.core.resample import resample

    return {s: score(resample(d, a, truths[s][1], truths[s][0].shape, order=3, mode="constant"),
                     truths[s][1], *truths[s], s) for (d, a), s in zip(inputs, SUFFIXES)}


def unires(inputs, truths, resolution: float, variant: str) -> tuple[dict, dict]:
    from srprep.core.register import coregister
    from srprep.models.unires.files import screen_transforms
    from srprep.models.unires.fit import InputImage, Settings, fit

    options, coreg, tolerance = VARIANTS[variant]
    affines = [a for _, a in inputs]
    start = time.perf_counter()
    info = {}
    if coreg:
        mats = coregister(list(inputs), fast=True)
        mats, records = screen_transforms(mats, affines[0], inputs[0][0].shape, tolerance)
        affines = [np.linalg.solve(m, a) for m, a in zip(mats, affines)]
        info["coreg_mm"] = [r["max_displacement_mm"] for r in records[1:]]
        info["applied"] = [r["applied"] for r in records[1:]]
    images = [InputImage(d, a, c) for c, ((d, _), a) in enumerate(zip(inputs, affines))]
    result = fit(images, Settings(voxel_size=resolution, **options), progress=None)
    info.update(seconds=round(time.perf_counter() - start, 1), iterations=result.iterations,
                grid=result.grid_source, sigma=[round(n.sigma, 1) for n in result.noise])
    scores = {s: score(result.images[c], result.affine, *truths[s], s)
              for c, s in enumerate(SUFFIXES)}
    return scores, info


def _row(name: str, scores: dict, base: dict | None = None) -> str:
    cells = []
    for s in SUFFIXES:
        v = scores[s]
        gain = f" ({v['psnr'] - base[s]['psnr']:+.2f})" if base else ""
        stripes = "" if np.isnan(v["stripes"]) else f" st {v['stripes']:.3g}"
        cells.append(f"{s} {v['psnr']:.2f}{gain} / {v['ssim']:.4f}{stripes}")
    return f"{name:16s} | " + " | ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("demo", type=Path, help="demo folder (built if missing)")
    parser.add_argument("--resolution", type=float, default=2.0)
    parser.add_argument("--participants", nargs="+", default=["01", "02"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    if not (args.demo / "bids").is_dir():
        from srprep.bids_app.demo import build_demo

        build_demo(args.demo, participants=max(int(p) for p in args.participants),
                   resolution=args.resolution)
    print(header())
    print(f"# demo at {args.resolution:g} mm; PSNR dB (gain over cubic) / SSIM, stripe power")
    for participant in args.participants:
        inputs, truths = load(args.demo, participant)
        base = cubic(inputs, truths)
        print(_row(f"sub-{participant} cubic", base))
        for variant in args.variants:
            scores, info = unires(inputs, truths, args.resolution, variant)
            print(_row(variant, scores, base), "|", info, flush=True)


if __name__ == "__main__":
    main()
