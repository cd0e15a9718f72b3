"""UniRes on a real two-contrast scan: multi-contrast vs single-contrast vs cubic.

The scans are ``tests/data/real/chris_t1.nii.gz`` (0.88 mm MPRAGE, uint8, zeroed
background, neck in the field of view) and ``chris_PD.nii.gz`` (the same person's oblique
0.86 x 0.86 x 2.4 mm proton-density stack, uint8), see ``tests/data/real/README.md``.
The truth is the T1w averaged down to ``--resolution`` (a real image with its real noise);
the input is that truth acquired again as thick slices (box profile, ``--thickness`` along
``--axis``) and stored as integers, as a clinical scanner exports it.  UniRes fits the
thick T1w alone ("single") or with the real PD stack ("multi"), co-registration on, onto
the truth's grid; every estimate is scored inside the head's brain-and-tissue mask
(truth > 10 % of its 99th percentile) against the truth, next to a cubic B-spline
reslice of the thick T1w.

    python benchmarks/unires_real.py --resolution 1.76 --thickness 5.28 --axis 1
    python benchmarks/unires_real.py --denoise 0.03 0.05     # regularisation for denoising
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _common import header

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.helpers import real_pair  # noqa: E402  (the evaluation case, shared with tests)

#: name -> (contrasts fitted, fit settings)
VARIANTS = {
    "single": (("T1w",), {}),
    "multi": (("T1w", "PDw"), {}),
    "single-reg-8": (("T1w",), {"reg_scale": 8.0}),
    "multi-reg-8": (("T1w", "PDw"), {"reg_scale": 8.0}),
    "multi-reg-2": (("T1w", "PDw"), {"reg_scale": 2.0}),
    "single-reg-2": (("T1w",), {"reg_scale": 2.0}),
    "multi-pd-2x": (("T1w", "PDw2x"), {}),
    "multi-pd-2x-sigma3": (("T1w", "PDw2x"), {"_sigma_factor": [1.0, 3.0]}),
    "multi-pd-2x-sigma3-reg2": (("T1w", "PDw2x"), {"_sigma_factor": [1.0, 3.0], "reg_scale": 2.0}),
    "single-reg-16": (("T1w",), {"reg_scale": 16.0}),
}


def score(estimate, truth, axis: int, period_vox: float) -> dict:
    from srprep.core.metrics import psnr, ssim, stripe_power

    mask = truth > 0.1 * np.percentile(truth, 99)
    return {"psnr": psnr(truth, estimate, mask), "ssim": ssim(truth, estimate, mask),
            "stripes": stripe_power(truth, estimate, axis, period_vox, mask)}


def run_unires(inputs: dict, truth_grid, contrasts, options) -> tuple[np.ndarray, dict]:
    from srprep.core.register import coregister
    from srprep.models.unires.files import screen_transforms
    from srprep.models.unires.fit import InputImage, Settings, fit

    pairs = [(np.asarray(inputs[c][0], np.float32), inputs[c][1]) for c in contrasts]
    start = time.perf_counter()
    info: dict = {}
    affines = [a for _, a in pairs]
    if len(pairs) > 1:
        mats = coregister(pairs, fast=True)
        mats, records = screen_transforms(mats, affines[0], pairs[0][0].shape)
        affines = [np.linalg.solve(m, a) for m, a in zip(mats, affines)]
        info["coreg_mm"] = [round(r["max_displacement_mm"], 2) for r in records[1:]]
    images = [InputImage(d, a, c) for c, ((d, _), a) in enumerate(zip(pairs, affines))]
    options = dict(options)
    factors = options.pop("_sigma_factor", None)
    if factors:                               # diagnostic: scale the noise estimates
        import dataclasses

        from srprep.models.unires import fit as fit_module
        original = fit_module.estimate_noise
        calls = iter(factors)

        def scaled(data, **kw):
            est = original(data, **kw)
            return dataclasses.replace(est, sigma=est.sigma * next(calls))
        fit_module.estimate_noise = scaled
    result = fit(images, Settings(voxel_size=float(np.sqrt((truth_grid[0][:3, :3] ** 2)
                                                            .sum(0))[0]), **options),
                 grid=truth_grid, progress=None)
    if factors:
        fit_module.estimate_noise = original
    info.update(seconds=round(time.perf_counter() - start, 1), iterations=result.iterations,
                sigma=[round(n.sigma, 2) for n in result.noise],
                lam=[round(float(v), 4) for v in getattr(result, "lam", [])])
    return result.images[0], info


def denoise_sweep(resolution: float, fractions: list[float], scales=(2, 4, 8, 16)) -> None:
    """The truth plus Rician noise (fractions of white matter), fitted on its own grid."""
    from srprep.core.metrics import psnr, ssim
    from srprep.models.unires.fit import InputImage, Settings, fit

    (truth, affine), _ = real_pair(resolution)
    mask = truth > 0.1 * np.percentile(truth, 99)
    wm = np.percentile(truth[mask], 90)
    rng = np.random.default_rng(0)
    for frac in fractions:
        s = frac * wm
        noisy = np.hypot(truth + rng.normal(0, s, truth.shape),
                         rng.normal(0, s, truth.shape)).astype(np.float32)
        cells = [f"noise {frac:.0%} (sigma {s:.1f})",
                 f"input {psnr(truth, noisy, mask):.2f} / {ssim(truth, noisy, mask):.4f}"]
        for scale in scales:
            r = fit([InputImage(noisy, affine, 0)],
                    Settings(voxel_size=resolution, reg_scale=scale), progress=None)
            cells.append(f"reg-scale {scale}: {psnr(truth, r.images[0], mask):.2f} / "
                         f"{ssim(truth, r.images[0], mask):.4f}")
        print(" | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=float, default=1.76, help="truth voxel (mm)")
    parser.add_argument("--thickness", type=float, default=5.28, help="thick slices (mm)")
    parser.add_argument("--axis", type=int, default=1, help="thick axis of the T1w (0-2)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--denoise", type=float, nargs="+", default=None, metavar="FRACTION",
                        help="instead: denoising sweep at these Rician noise levels")
    args = parser.parse_args()
    if args.denoise:
        print(header())
        denoise_sweep(args.resolution, args.denoise)
        return
    (truth, affine), inputs = real_pair(args.resolution, args.thickness, args.axis)
    period = args.thickness / args.resolution
    print(header())
    print(f"# real T1w truth {truth.shape} at {args.resolution:g} mm; T1w input "
          f"{inputs['T1w'][0].shape} ({args.thickness:g} mm, axis {args.axis}); "
          f"PD {inputs['PDw'][0].shape}")
    from srprep.core.resample import resample

    cubic = resample(inputs["T1w"][0].astype(np.float32), inputs["T1w"][1], affine,
                     truth.shape, order=3, mode="nearest")
    base = score(cubic, truth, args.axis, period)
    print(f"{'cubic':14s} | PSNR {base['psnr']:.2f} / SSIM {base['ssim']:.4f} / "
          f"st {base['stripes']:.3g}")
    for name in args.variants:
        contrasts, options = VARIANTS[name]
        estimate, info = run_unires(inputs, (affine, truth.shape), contrasts, options)
        s = score(estimate, truth, args.axis, period)
        print(f"{name:14s} | PSNR {s['psnr']:.2f} ({s['psnr'] - base['psnr']:+.2f}) / SSIM "
              f"{s['ssim']:.4f} ({s['ssim'] - base['ssim']:+.4f}) / st {s['stripes']:.3g} | "
              f"{info}", flush=True)


if __name__ == "__main__":
    main()
