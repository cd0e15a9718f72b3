"""``srprep-train aid``: an AID slice-sequence prior from NIfTI volumes (slices along one
axis) or from fully sampled k-space files (coil-combined complex images)."""
from __future__ import annotations

import argparse
from pathlib import Path

from srprep.core.atomic import copy_file

from . import common


def add_parser(sub) -> argparse.ArgumentParser:
    a = sub.add_parser("aid", help="AID prior from slice sequences (NIfTI volumes or k-space)")
    common.add_common(a, bids_help="BIDS dataset, or with --kspace a folder of fully sampled "
                                   "k-space files")
    a.add_argument("--kspace", action="store_true",
                   help="train on coil-combined complex images of *.h5/*.mrd k-space files")
    a.add_argument("--suffix", nargs="+", default=["T1w", "T2w"])
    a.add_argument("--slice-size", type=int, default=64, help="slices padded square, resized")
    a.add_argument("--axis", type=int, default=2, help="slicing axis of NIfTI volumes")
    a.add_argument("--seq-length", type=int, default=5, help="conditioning window (release: 10)")
    a.add_argument("--model-channels", type=int, default=32, help="release: 128 (brain)")
    a.add_argument("--channel-mult", type=float, nargs="+", default=[1, 2, 2])
    a.add_argument("--res-blocks", type=int, default=1, help="release: 2")
    a.add_argument("--attention-ds", type=int, nargs="*", default=[4],
                   help="downsampling rates with spatial attention")
    a.add_argument("--stages", type=int, choices=[1, 2], default=1,
                   help="1: one stage, channel concatenation (as released); 2: main U-Net "
                        "first, then the conditioning branch alone (connector fusion)")
    a.add_argument("--steps", type=int, default=2000)
    a.add_argument("--max-minutes", type=float, default=None)
    a.add_argument("--batch-size", type=int, default=4)
    a.add_argument("--lr", type=float, default=1e-4, help="AdamW (reference 1e-4)")
    a.add_argument("--ema", type=float, default=0.9999, help="EMA rate (with warm-up)")
    a.add_argument("--context-noise", type=float, default=0.0,
                   help="max std of noise on the conditioning slices (robustness to the "
                        "imperfect slices a reconstruction conditions on; 0 = reference)")
    a.add_argument("--context-dropout", type=float, default=0.0,
                   help="probability of an all-zero context (trains the cold start; 0 = reference)")
    a.add_argument("--eval-slices", type=int, default=8)
    a.add_argument("--eval-steps", type=int, default=50)
    common.add_split(a)
    common.add_work_dir(a)
    return a


def _inputs(opts) -> list[tuple[str, Path]]:
    root = opts.bids_dir.resolve()
    if opts.kspace:
        files = sorted(p for ext in ("*.h5", "*.mrd") for p in root.rglob(ext))
        out = []
        for p in files:
            label = "".join(ch for ch in p.name.split(".")[0] if ch.isalnum()) or "x"
            out.append((f"sub-{label}", p))
        return out
    return common.isotropic_images(root, opts.participant_label, opts.suffix)


def run(opts) -> int:
    from srprep.pipelines.aid import AIDTraining

    out, work = common.start(opts)
    images = _inputs(opts)
    subjects = sorted({n.split("_")[0] for n, _ in images})
    if len(subjects) < 2:
        what = "k-space files" if opts.kspace else f"isotropic {'/'.join(opts.suffix)} images"
        return common.error(f"need {what} of at least 2 participants, found {len(subjects)}")
    levels = len(opts.channel_mult)
    if opts.slice_size % 2 ** (levels - 1):
        return common.error(f"--slice-size must be divisible by {2 ** (levels - 1)}")
    split = common.split(subjects, opts)
    config = {"size": opts.slice_size, "seq_length": opts.seq_length,
              "model_channels": opts.model_channels,
              "channel_mult": [int(m) if float(m).is_integer() else m for m in opts.channel_mult],
              "num_res_blocks": opts.res_blocks, "attention_ds": opts.attention_ds,
              "stages": opts.stages, "steps": opts.steps, "max_minutes": opts.max_minutes,
              "batch_size": opts.batch_size, "lr": opts.lr, "ema_rate": opts.ema,
              "seed": opts.seed, "eval_slices": opts.eval_slices, "eval_steps": opts.eval_steps,
              "context_noise": opts.context_noise, "context_dropout": opts.context_dropout}
    task = AIDTraining(images=[str(p) for _, p in images], names=[n for n, _ in images],
                       subject_split=split, config=config, size=opts.slice_size,
                       axis=opts.axis, kspace=opts.kspace)

    def export(outputs, report) -> dict:
        trained = Path(report["weights"])           # the task's folder: weights + sidecar
        copy_file(trained, out / "aid" / "aid.pt")
        copy_file(trained.with_suffix(".json"), out / "aid" / "aid.json")
        return {"weights": out / "aid" / "aid.pt"}

    return common.run_and_report(task, work, out, export=export, config=config, split=split,
                                 columns=None, summary=["final_loss", "seconds"])
