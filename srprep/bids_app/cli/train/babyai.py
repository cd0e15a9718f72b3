"""``srprep-train babyai``: BABY-AI from isotropic T1w/T2w pairs (registered to an atlas,
thick-slice T2w synthesised on the fly)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from srprep.core.atomic import copy_file, write_json

from . import common


def add_parser(sub) -> argparse.ArgumentParser:
    b = sub.add_parser("babyai", help="BABY-AI from isotropic T1w/T2w pairs")
    common.add_common(b)
    b.add_argument("--atlas", type=Path, default=None,
                   help="registration target and training grid (default MNI152 1 mm)")
    b.add_argument("--atlas-resolution", type=float, default=1.0,
                   help="voxel size of the default MNI atlas grid (mm)")
    b.add_argument("--size", choices=["small", "official"], default="small",
                   help="small: channels 8-64, 2 residual units, residual output (CPU); "
                        "official: the released 379 M-parameter network")
    b.add_argument("--epochs", type=int, default=100)
    b.add_argument("--max-minutes", type=float, default=None)
    b.add_argument("--batch-size", type=int, default=8)
    b.add_argument("--lr", type=float, default=1e-4)
    b.add_argument("--loss", choices=["mse", "l1"], default="mse")
    b.add_argument("--thickness", nargs=2, type=float, default=[2.0, 5.0], metavar=("MIN", "MAX"))
    b.add_argument("--noise", nargs=2, type=float, default=[0.0, 0.0], metavar=("MIN", "MAX"),
                   help="Rician noise s.d. added to the synthesised thick slices, drawn per "
                        "subject and epoch, as a fraction of the target's 99th percentile "
                        "(default 0 0: none, as the reference)")
    b.add_argument("--axes", nargs="+", type=int, default=[0, 1, 2])
    b.add_argument("--synthesis", choices=["physical", "reference"], default="physical",
                   help="thick-slice model: slice profile (physical) or BABY-AI's decimation")
    b.add_argument("--patch", type=int, default=32)
    b.add_argument("--patches-per-subject", type=int, default=64)
    common.add_split(b)
    b.add_argument("--resume", type=Path, default=None, help="Lightning checkpoint to resume")
    b.add_argument("--devices", default="1", help="devices per node (DDP when > 1)")
    b.add_argument("--accelerator", default="auto")
    b.add_argument("--no-register", action="store_true", help="images already on the atlas grid")
    common.add_work_dir(b)
    return b


def _pairs(bids: Path, labels: list[str]) -> list[tuple[str, Path, Path]]:
    """(name, T1w, T2w) per session with isotropic images of both contrasts."""
    found: dict[str, dict[str, Path]] = {}
    for key, path in common.isotropic_images(bids, labels, ["T1w", "T2w"]):
        session = "_".join(part for part in key.split("_") if part.startswith(("sub-", "ses-")))
        found.setdefault(session, {}).setdefault(key.rsplit("_", 1)[1], path)
    return [(k, v["T1w"], v["T2w"]) for k, v in sorted(found.items()) if {"T1w", "T2w"} <= set(v)]


def _config(opts) -> dict:
    from srprep.models.babyai import OFFICIAL, SMALL

    network = dict(SMALL, residual=True) if opts.size == "small" else dict(OFFICIAL)
    return {"network": network, "loss": opts.loss, "lr": opts.lr, "batch_size": opts.batch_size,
            "epochs": opts.epochs, "max_minutes": opts.max_minutes, "seed": opts.seed,
            "accelerator": opts.accelerator, "devices": common.devices(opts.devices),
            "strategy": "ddp" if str(opts.devices) not in ("1", "auto") else "auto",
            "degradation": {"thickness": tuple(opts.thickness), "axes": tuple(opts.axes),
                            "model": opts.synthesis, "noise": tuple(opts.noise)},
            "sampler": {"patch": (opts.patch,) * 3, "per_subject": opts.patches_per_subject},
            "progress": sys.stderr.isatty()}


def run(opts) -> int:
    from srprep.core.templates import write_mni152
    from srprep.pipelines.babyai import BabyAITraining

    lo, hi = opts.noise
    if not 0 <= lo <= hi:
        return common.error(f"--noise needs 0 <= MIN <= MAX, got {lo:g} {hi:g}")
    if hi > 0 and opts.synthesis == "reference":
        return common.error("--noise goes with --synthesis physical (the reference's pairs "
                            "have no noise)")
    out, work = common.start(opts)
    pairs = _pairs(opts.bids_dir.resolve(), opts.participant_label)
    if len(pairs) < 2:
        return common.error(f"need at least 2 sessions with isotropic T1w and T2w, "
                            f"found {len(pairs)}")
    atlas = opts.atlas.resolve() if opts.atlas else write_mni152(
        work / "templates" / f"mni152_{opts.atlas_resolution:g}mm.nii.gz", opts.atlas_resolution)
    split = common.split([p[0] for p in pairs], opts)
    config = _config(opts)
    task = BabyAITraining(t1w=[str(p[1]) for p in pairs], t2w=[str(p[2]) for p in pairs],
                          names=[p[0] for p in pairs], atlas=str(atlas), subject_split=split,
                          config=config, register=not opts.no_register,
                          resume=str(opts.resume) if opts.resume else None)

    trained_on = ({"file": str(atlas)} if opts.atlas else
                  {"template": "mni152", "resolution": opts.atlas_resolution})

    def export(outputs, report) -> dict:
        target = out / "babyai" / "pretrained_weights.pth"
        copy_file(outputs.weights, target)
        # the loader reads "residual"; the App takes the atlas the model was trained on
        write_json(target.with_suffix(".json"), {"residual": False, **config["network"],
                                                 "atlas": trained_on})
        return {"weights": target}

    return common.run_and_report(
        task, work, out, export=export, config=config, split=split,
        columns=["subject", "axis", "thickness_mm", "psnr_model", "psnr_cubic", "ssim_model",
                 "ssim_cubic"], summary=["best_val_loss", "epochs"])
