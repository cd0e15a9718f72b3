"""``srprep-train easysr``: an EasySR generator (+ discriminator) from isotropic images
(thick slices synthesised along a random axis each epoch)."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from srprep.core.atomic import copy_file

from . import common


def add_parser(sub) -> argparse.ArgumentParser:
    e = sub.add_parser("easysr", help="EasySR generator (+ discriminator) from isotropic images")
    common.add_common(e)
    e.add_argument("--suffix", nargs="+", default=["T1w", "T2w"],
                   help="contrasts to train on (isotropic images only; default T1w T2w)")
    e.add_argument("--factor", type=int, default=3, help="up-sampling factor (release: 3)")
    e.add_argument("--resolution", type=float, default=None,
                   help="training voxel size in mm (default: each image's own)")
    e.add_argument("--template", type=Path, default=None, help="rigid registration target")
    e.add_argument("--ngf", type=int, default=32, help="generator width (release: 32)")
    e.add_argument("--blocks", type=int, default=2, help="residual blocks (release: 2)")
    e.add_argument("--no-residual", action="store_true",
                   help="train the released form (no interpolated-input skip)")
    e.add_argument("--patch", type=int, default=48)
    e.add_argument("--patches-per-volume", type=int, default=16)
    e.add_argument("--batch-size", type=int, default=4)
    e.add_argument("--epochs", type=int, default=50)
    e.add_argument("--max-minutes", type=float, default=None)
    e.add_argument("--lr", type=float, default=2e-4)
    e.add_argument("--content", choices=["l1", "mse"], default="l1")
    e.add_argument("--adv-weight", type=float, default=1e-3)
    e.add_argument("--adv-start", type=int, default=1, help="content-only warm-up epochs")
    e.add_argument("--noise", type=float, default=0.0)
    e.add_argument("--model-name", default="Mixed",
                   help="writes easysr/G_latest_<name>.pth (the App's default is Mixed)")
    common.add_split(e)
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    e.add_argument("--resume", type=Path, default=None, help="checkpoints/last.pt to resume")
    common.add_work_dir(e)
    return e


def run(opts) -> int:
    from srprep.pipelines.easysr import EasySRTraining

    if opts.factor < 2 or opts.patch % opts.factor:
        return common.error("--factor must be >= 2 and divide --patch")
    out, work = common.start(opts)
    images = common.isotropic_images(opts.bids_dir.resolve(), opts.participant_label, opts.suffix)
    subjects = sorted({n.split("_")[0] for n, _ in images})
    if len(subjects) < 2:
        return common.error(f"need isotropic {'/'.join(opts.suffix)} images of at least "
                            f"2 participants, found {len(subjects)}")
    split = common.split(subjects, opts)
    if opts.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return common.error("--device cuda but no CUDA device")
    config = {"factor": opts.factor, "ngf": opts.ngf, "n_residual_blocks": opts.blocks,
              "residual": not opts.no_residual, "patch": opts.patch,
              "patches_per_volume": opts.patches_per_volume, "batch_size": opts.batch_size,
              "epochs": opts.epochs, "max_minutes": opts.max_minutes, "lr": opts.lr,
              "content": opts.content, "adv_weight": opts.adv_weight,
              "adv_start": opts.adv_start, "noise": opts.noise, "seed": opts.seed,
              "model_name": opts.model_name, "progress": sys.stderr.isatty(),
              "device": None if opts.device == "auto" else opts.device}
    task = EasySRTraining(images=[str(p) for _, p in images], names=[n for n, _ in images],
                          subject_split=split, config=config, resolution=opts.resolution,
                          template=str(opts.template.resolve()) if opts.template else None,
                          resume=str(opts.resume.resolve()) if opts.resume else None)

    def export(outputs, report) -> dict:
        for key in ("generator", "discriminator"):
            src = Path(report[key])
            copy_file(src, out / "easysr" / src.name)
            copy_file(src.with_suffix(".json"), out / "easysr" / src.with_suffix(".json").name)
        trained = Path(report["generator"]).parents[1]
        copy_file(trained / "checkpoints" / "last.pt", out / "checkpoints" / "last.pt")
        for folder in ("png", "tensorboard"):      # per-epoch mid-slices and TensorBoard logs
            shutil.copytree(trained / folder, out / folder, dirs_exist_ok=True)
        copy_file(trained / "history.tsv", out / "history.tsv")
        return {"generator": out / "easysr" / Path(report["generator"]).name}

    return common.run_and_report(
        task, work, out, export=export, split=split,
        columns=["volume", "axis", "psnr_model", "psnr_cubic", "ssim_model", "ssim_cubic"],
        summary=["best_val_psnr", "epochs"])
