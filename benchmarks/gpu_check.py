"""GPU check: each method's GPU path on the demo, against the same computation on the CPU.

One line per method: seconds on the GPU, peak GPU memory, and whether the output matches
the CPU result within tolerance (relative RMS difference).  Released weights are used
where ``--weights-dir`` holds them (EasySR's also from ``../shared/weights/easysr``);
otherwise the released architecture with seeded random weights (the check is about the
GPU path computing what the CPU path computes, not about image quality).

    python benchmarks/gpu_check.py --device cuda      # what gpu_check.sh runs
    python benchmarks/gpu_check.py --device cpu       # the same code paths, CPU vs CPU:
                                                      # keeps this script working (tests)

Diffusion sampling draws its noise on the device (CUDA and CPU random streams differ), so
for AID the *denoiser* output is compared and the sampling / reconstruction slice is
checked for finite values in range; every other method is deterministic and compared
end to end.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: relative RMS difference (GPU vs CPU) accepted as "matches"
TOLERANCE = {"unires": 1e-3, "babyai": 1e-3, "easysr": 1e-3, "pccnn": 1e-3, "aid": 1e-3}


def _rel_rms(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)) / max(np.sqrt(np.mean(b ** 2)), 1e-12))


class Timer:
    """Seconds and peak device memory of a block (GB; 0 on the CPU)."""

    def __init__(self, device: str):
        self.device = device

    def __enter__(self):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import torch

        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
            self.peak_gb = torch.cuda.max_memory_allocated() / 2**30
        else:
            self.peak_gb = 0.0
        self.seconds = time.perf_counter() - self.start
        return False


def demo(folder: Path) -> Path:
    from srprep.bids_app.demo import build_demo

    build_demo(folder, participants=1, resolution=4.0)
    return folder / "bids" / "sub-01" / "ses-1"


def check_unires(session: Path, device: str, tmp: Path) -> tuple:
    from srprep.models.unires.files import unires_files

    files = [session / "anat" / f"sub-01_ses-1_{s}.nii.gz" for s in ("T1w", "T2w", "PDw")]

    def run(dev):
        outs = [tmp / f"unires_{dev.replace(':', '')}_{i}.nii.gz" for i in range(3)]
        unires_files(files, [0, 1, 2], outs, None, device=dev, voxel_size=[2.0] * 3,
                     max_iter=8)
        import nibabel as nib

        return [np.asarray(nib.load(o).dataobj, np.float32) for o in outs]

    ref = run("cpu")
    with Timer(device) as t:
        got = run(device)
    return t, max(_rel_rms(g, r) for g, r in zip(got, ref))


def _volumes(session: Path, shape=(96, 112, 96)):
    """Demo T1w and T2w on one grid, padded/cropped to ``shape``, scaled to [0, 1]."""
    import nibabel as nib

    from srprep.core.resample import resample

    t1 = nib.load(session / "anat" / "sub-01_ses-1_T1w.nii.gz")
    t2 = nib.load(session / "anat" / "sub-01_ses-1_T2w.nii.gz")
    affine = t1.affine @ np.diag([0.5, 0.5, 0.5, 1.0])     # 2 mm, like an atlas grid
    out = []
    for img in (t1, t2):
        v = resample(np.asarray(img.dataobj, np.float32), img.affine, affine, shape, order=1)
        out.append((v / max(float(v.max()), 1e-6)).astype(np.float32))
    return out, affine


def _released(name: str, weights_dir: Path | None) -> Path | None:
    """The released file from the weights registry's cache, when it is there."""
    from srprep.models.weights import local_path

    found = local_path(name, weights_dir)
    return found if found.is_file() else None


def check_babyai(session: Path, device: str, tmp: Path, weights_dir: Path | None) -> tuple:
    import nibabel as nib
    import torch

    from srprep.models.babyai import build_network, infer_files, save_official_checkpoint

    weights = _released("babyai", weights_dir)
    if weights is None:
        torch.manual_seed(0)
        weights = tmp / "babyai_random.pth"
        save_official_checkpoint(build_network(), weights)
    (t1, t2), affine = _volumes(session)
    for name, v in (("t1", t1), ("t2", t2)):
        nib.save(nib.Nifti1Image(v, affine), tmp / f"babyai_{name}.nii.gz")

    def run(dev):
        out = tmp / f"babyai_{dev.replace(':', '')}.nii.gz"
        infer_files(tmp / "babyai_t1.nii.gz", tmp / "babyai_t2.nii.gz", weights, out,
                    device=dev)
        return np.asarray(nib.load(out).dataobj, np.float32)

    ref = run("cpu")
    with Timer(device) as t:
        got = run(device)
    return t, _rel_rms(got, ref)


def check_easysr(session: Path, device: str, tmp: Path, weights_dir: Path | None) -> tuple:
    import torch

    from srprep.models.easysr import (OFFICIAL_G, ResnetGenerator, from_official_checkpoint,
                                      generate)

    found = [p for p in (_released("easysr-g-t1", weights_dir),
                         ROOT.parent / "shared" / "weights" / "easysr" / "G_latest_T1.pth")
             if p is not None and p.is_file()]
    if found:
        net = from_official_checkpoint(found[0])
    else:
        torch.manual_seed(0)
        net = ResnetGenerator(**OFFICIAL_G).eval()
    (t1, _), _ = _volumes(session, shape=(96, 112, 24))      # thick axis: z
    ref = generate(net, t1 * 2 - 1, axis=2, device="cpu")
    with Timer(device) as t:
        got = generate(net, t1 * 2 - 1, axis=2, device=device)
    return t, _rel_rms(got, ref)


def check_pccnn(session: Path, device: str, tmp: Path, weights_dir: Path | None) -> tuple:
    import nibabel as nib
    import torch

    from srprep.core.dwi import read_bvals_bvecs
    from srprep.models.pccnn import PCCNN, from_official_checkpoint, predict_subject

    weights = _released("pccnn", weights_dir)
    if weights is not None:
        model = from_official_checkpoint(weights)
    else:
        torch.manual_seed(0)
        model = PCCNN().eval()
    dwi = session / "dwi" / "sub-01_ses-1_dwi.nii.gz"
    img = nib.load(dwi)
    data = np.asarray(img.dataobj, np.float32)
    bvals, bvecs = read_bvals_bvecs(dwi.with_name("sub-01_ses-1_dwi.bval"),
                                    dwi.with_name("sub-01_ses-1_dwi.bvec"), data.shape[-1])
    keep = np.arange(data.shape[-1]) % 2 == 0              # predict the held-out half
    mask = data[..., bvals < 50].mean(-1) > 0.1 * data.max()

    def run(dev):
        out, _ = predict_subject(model, data[..., keep], bvals[keep], bvecs[keep],
                                 bvals[~keep], bvecs[~keep], mask, img.affine, device=dev)
        return out

    ref = run("cpu")
    with Timer(device) as t:
        got = run(device)
    return t, _rel_rms(got[mask], ref[mask])


def check_aid(session: Path, device: str, tmp: Path, weights_dir: Path | None) -> tuple:
    import torch

    from srprep.models.aid import build, from_official_checkpoint
    from srprep.models.aid.diffusion import GaussianDiffusion
    from srprep.models.aid.recon import reconstruct_volume
    from srprep.models.aid.sampling import prospective

    weights = _released("aid-abide", weights_dir)
    if weights is not None:
        model = from_official_checkpoint(weights, "aid-abide")
    else:
        torch.manual_seed(0)
        model = build("aid-abide")
    model = model.eval()
    size = model.config.image_size
    gen = torch.Generator().manual_seed(0)
    x = torch.randn((1, 2, 1, size, size), generator=gen)
    t_in = torch.tensor([500])
    with torch.no_grad():
        ref = model(x, t_in).numpy()
        gpu_model = model.to(device)
        with Timer(device) as t:
            got = gpu_model(x.to(device), t_in.to(device)).cpu().numpy()
            diffusion = GaussianDiffusion.linear(1000, learn_sigma=model.config.learn_sigma,
                                                 respacing=20)
            frames = prospective(gpu_model, diffusion, 2, shape=(1, 1, size, size),
                                 generator=torch.Generator(device=device).manual_seed(0))
            from srprep.core import kspace as K

            truth = frames[0, -1, 0].double().cpu().numpy()
            ks = K.fft2c(truth.astype(np.complex64))[None, None]
            mask = K.line_mask(size, 4)
            from srprep.models.aid.recon import DCSettings

            recon = reconstruct_volume(gpu_model, ks, mask, None, DCSettings(steps=20),
                                       device=device)
    ok = bool(np.isfinite(frames.cpu().numpy()).all() and np.isfinite(recon).all())
    model.to("cpu")
    return t, _rel_rms(got, ref) if ok else float("inf")


CHECKS = {"unires": check_unires, "babyai": check_babyai, "easysr": check_easysr,
          "pccnn": check_pccnn, "aid": check_aid}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--methods", nargs="+", default=list(CHECKS), choices=list(CHECKS))
    p.add_argument("--weights-dir", type=Path,
                   default=Path(os.environ["SRPREP_WEIGHTS_DIR"])
                   if os.environ.get("SRPREP_WEIGHTS_DIR") else None)
    opts = p.parse_args(argv)
    import torch

    if opts.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible", file=sys.stderr)
        return 2
    failed = 0
    with tempfile.TemporaryDirectory(prefix="srprep-gpucheck-") as tmp:
        tmp = Path(tmp)
        session = demo(tmp / "demo")
        print("| method | device | seconds | peak GPU memory (GB) | rel. RMS vs CPU | "
              "matches |")
        print("|---|---|---|---|---|---|")
        for name in opts.methods:
            args = (session, opts.device, tmp) + (() if name == "unires"
                                                  else (opts.weights_dir,))
            try:
                timer, diff = CHECKS[name](*args)
            except Exception as exc:   # one line per method, whatever happens
                failed += 1
                print(f"| {name} | {opts.device} | - | - | - | ERROR: "
                      f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]} |", flush=True)
                continue
            ok = diff <= TOLERANCE[name]
            failed += not ok
            print(f"| {name} | {opts.device} | {timer.seconds:.1f} | {timer.peak_gb:.2f} | "
                  f"{diff:.2e} | {'yes' if ok else 'NO'} |", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
