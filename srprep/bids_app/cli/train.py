"""``srprep-train METHOD BIDS_DIR OUTPUT_DIR``: train a learned method on your data.

The trained weights are written in the official checkpoint format to
``OUTPUT_DIR/<method>/``, so the BIDS App uses them with ``--weights-dir OUTPUT_DIR``.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from srprep.core.atomic import copy_file, write_json, write_text

log = logging.getLogger("srprep.train")


def _run(task, work: Path):
    """Run a training task in-process; its outputs, or None after a one-line error."""
    from .. import engine

    outcome = engine.run(task, work / "train-cache", worker="debug")
    if not outcome.ok:
        print(f"srprep-train: error: {outcome.error}", file=sys.stderr)
        return None
    return outcome.outputs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srprep-train", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="method", required=True)
    b = sub.add_parser("babyai", help="BABY-AI from isotropic T1w/T2w pairs")
    b.add_argument("bids_dir", type=Path)
    b.add_argument("output_dir", type=Path)
    b.add_argument("--participant-label", nargs="+", default=[])
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
    b.add_argument("--axes", nargs="+", type=int, default=[0, 1, 2])
    b.add_argument("--synthesis", choices=["physical", "reference"], default="physical",
                   help="thick-slice model: slice profile (physical) or BABY-AI's decimation")
    b.add_argument("--patch", type=int, default=32)
    b.add_argument("--patches-per-subject", type=int, default=64)
    b.add_argument("--split", nargs=3, type=float, default=[0.7, 0.15, 0.15])
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--resume", type=Path, default=None, help="Lightning checkpoint to resume")
    b.add_argument("--devices", default="1", help="devices per node (DDP when > 1)")
    b.add_argument("--accelerator", default="auto")
    b.add_argument("--no-register", action="store_true", help="images already on the atlas grid")
    b.add_argument("-w", "--work-dir", type=Path, default=None)
    e = sub.add_parser("easysr", help="EasySR generator (+ discriminator) from isotropic images")
    e.add_argument("bids_dir", type=Path)
    e.add_argument("output_dir", type=Path)
    e.add_argument("--participant-label", nargs="+", default=[])
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
    e.add_argument("--split", nargs=3, type=float, default=[0.7, 0.15, 0.15])
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    e.add_argument("--resume", type=Path, default=None, help="checkpoints/last.pt to resume")
    e.add_argument("-w", "--work-dir", type=Path, default=None)
    c = sub.add_parser("pccnn", help="PCCNN (any variant) from dMRI runs")
    c.add_argument("bids_dir", type=Path)
    c.add_argument("output_dir", type=Path)
    c.add_argument("--participant-label", nargs="+", default=[])
    c.add_argument("--variant", default="PCCNN",
                   choices=["PCCNN", "PCCNN-Bv", "PCCNN-Sp", "PCCNN-Bv-Sp"])
    c.add_argument("--size", choices=["official", "small", "tiny"], default="official",
                   help="official: the released widths (0.77-0.85 M parameters); small: "
                        "narrower layers; tiny: narrow and 1+2 blocks (CPU smoke training)")
    c.add_argument("--q-in", nargs=2, type=int, default=[6, 20], metavar=("MIN", "MAX"),
                   help="context directions per sample (reference 6 20)")
    c.add_argument("--q-out", type=int, default=10, help="targets per sample (reference 10)")
    c.add_argument("--shells", nargs="+", type=int, default=None,
                   help="shells to sample (default: all shells the subjects share)")
    c.add_argument("--cross-shell", action="store_true",
                   help="draw targets from any shell, not only the context's (reference "
                        "sampling; for --pccnn-context all)")
    c.add_argument("--unmasked-loss", action="store_true",
                   help="L1 over whole tiles, background included (reference loss); "
                        "default: brain voxels only")
    c.add_argument("--batch-size", type=int, default=16)
    c.add_argument("--schedule", choices=["constant", "cosine"], default="constant",
                   help="learning rate: constant (default, reference) or cosine decay to 5%% "
                        "over --epochs or --max-minutes")
    c.add_argument("--repeats", type=int, default=1,
                   help="q-space draws per tile and epoch (longer epochs, less validation)")
    c.add_argument("--eval-keep-every", type=int, default=3,
                   help="test subjects: keep every k-th direction per shell as context and "
                        "predict the others (model vs SH)")
    c.add_argument("--epochs", type=int, default=100)
    c.add_argument("--max-minutes", type=float, default=None)
    c.add_argument("--lr", type=float, default=1e-3)
    c.add_argument("--split", nargs=3, type=float, default=[0.7, 0.15, 0.15])
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--devices", default="1", help="devices per node (DDP when > 1)")
    c.add_argument("--accelerator", default="auto")
    c.add_argument("--resume", type=Path, default=None, help="Lightning checkpoint to resume")
    c.add_argument("-w", "--work-dir", type=Path, default=None)
    a = sub.add_parser("aid", help="AID prior from slice sequences (NIfTI volumes or k-space)")
    a.add_argument("bids_dir", type=Path,
                   help="BIDS dataset, or with --kspace a folder of fully sampled k-space files")
    a.add_argument("output_dir", type=Path)
    a.add_argument("--kspace", action="store_true",
                   help="train on coil-combined complex images of *.h5/*.mrd k-space files")
    a.add_argument("--participant-label", nargs="+", default=[])
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
    a.add_argument("--split", nargs=3, type=float, default=[0.7, 0.15, 0.15])
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("-w", "--work-dir", type=Path, default=None)
    return p


def _aid_inputs(opts) -> list[tuple[str, Path]]:
    root = opts.bids_dir.resolve()
    if opts.kspace:
        files = sorted(p for ext in ("*.h5", "*.mrd") for p in root.rglob(ext))
        out = []
        for p in files:
            label = "".join(ch for ch in p.name.split(".")[0] if ch.isalnum()) or "x"
            out.append((f"sub-{label}", p))
        return out
    return _isotropic_images(root, opts.participant_label, opts.suffix)


def train_aid(opts) -> int:
    from srprep.models.training_run import split_subjects
    from srprep.pipelines.training import AIDTraining

    from .. import engine

    out, work = opts.output_dir.resolve(), (opts.work_dir or opts.output_dir / "work").resolve()
    engine.configure_environment(work, 1)
    images = _aid_inputs(opts)
    subjects = sorted({n.split("_")[0] for n, _ in images})
    if len(subjects) < 2:
        what = "k-space files" if opts.kspace else f"isotropic {'/'.join(opts.suffix)} images"
        print(f"srprep-train: error: need {what} of at least 2 participants, found "
              f"{len(subjects)}", file=sys.stderr)
        return 2
    levels = len(opts.channel_mult)
    if opts.slice_size % 2 ** (levels - 1):
        print(f"srprep-train: error: --slice-size must be divisible by {2 ** (levels - 1)}",
              file=sys.stderr)
        return 2
    split = split_subjects(subjects, tuple(opts.split), opts.seed)
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
    outputs = _run(task, work)
    if outputs is None:
        return 1
    report = outputs.report
    trained = Path(report["weights"])           # the task's folder: weights + sidecar
    copy_file(trained, out / "aid" / "aid.pt")
    copy_file(trained.with_suffix(".json"), out / "aid" / "aid.json")
    write_json(out / "training_report.json", {"config": config, **report})
    cols = [c for c in (report["test"][0] if report["test"] else {})]
    write_text(out / "test_metrics.tsv", "\n".join(["\t".join(cols)] + [
        "\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
        for r in report["test"]]) + "\n")
    print(json.dumps({"weights": str(out / "aid" / "aid.pt"), "final_loss": report["final_loss"],
                      "seconds": report["seconds"], "split": split}))
    return 0


#: a CPU-sized PCCNN (same structure, narrower layers)
PCCNN_SMALL = {"c_in": 32, "in_split": [16, 16], "mid": 24, "out_split": [16, 8], "out1": 16,
               "hidden_in": [16, 16], "hidden_inblocks": [16, 8], "hidden_mid": [8, 16],
               "hidden_outblocks": [8, 8], "hidden_out1": [8, 16], "hidden_out2": [16, 16]}


PCCNN_TINY = {"c_in": 16, "in_split": [8, 8], "mid": 16, "out_split": [8, 8], "out1": 8,
              "hidden_in": [16, 16], "hidden_inblocks": [16, 8], "hidden_mid": [8, 16],
              "hidden_outblocks": [8, 8], "hidden_out1": [8, 16], "hidden_out2": [16, 16],
              "n_in_blocks": 1, "n_out_blocks": 2}


def _dwi_runs(bids: Path, labels: list[str]) -> list[tuple[str, Path, Path, Path]]:
    from srprep.core.dwi import read_bvals_bvecs

    from ..naming import BIDSName

    runs = []
    for path in sorted(bids.glob("sub-*/**/dwi/*_dwi.nii*")):
        name = BIDSName.parse(path.name)
        if labels and name.entities["sub"] not in labels:
            continue
        stem = path.name.split(".nii")[0]
        bval, bvec = path.with_name(stem + ".bval"), path.with_name(stem + ".bvec")
        if not (bval.is_file() and bvec.is_file()):
            continue
        read_bvals_bvecs(bval, bvec)
        key = "_".join(f"{k}-{name.entities[k]}" for k in ("sub", "ses", "acq", "run")
                       if k in name.entities) + "_dwi"
        runs.append((key, path, bval, bvec))
    return runs


def train_pccnn(opts) -> int:
    from srprep.models.training_run import split_subjects
    from srprep.pipelines.training import PCCNNTraining

    from .. import engine

    out, work = opts.output_dir.resolve(), (opts.work_dir or opts.output_dir / "work").resolve()
    engine.configure_environment(work, 1)
    runs = _dwi_runs(opts.bids_dir.resolve(), opts.participant_label)
    subjects = sorted({r[0].split("_")[0] for r in runs})
    if len(subjects) < 2:
        print(f"srprep-train: error: need dwi runs (with .bval/.bvec) of at least 2 "
              f"participants, found {len(subjects)}", file=sys.stderr)
        return 2
    if not 1 <= opts.q_in[0] <= opts.q_in[1] or opts.q_out < 1:
        print("srprep-train: error: need 1 <= --q-in MIN <= MAX and --q-out >= 1", file=sys.stderr)
        return 2
    split = split_subjects(subjects, tuple(opts.split), opts.seed)
    network = {"official": {}, "small": PCCNN_SMALL, "tiny": PCCNN_TINY}[opts.size]
    config = {"variant": opts.variant, "network": network,
              "q": {"q_in_min": opts.q_in[0], "q_in_max": opts.q_in[1], "q_out": opts.q_out,
                    "shells": opts.shells, "seed": opts.seed,
                    "cross_shell": opts.cross_shell, "masked": not opts.unmasked_loss},
              "batch_size": opts.batch_size, "epochs": opts.epochs,
              "max_minutes": opts.max_minutes, "lr": opts.lr, "seed": opts.seed,
              "accelerator": opts.accelerator,
              "devices": int(opts.devices) if str(opts.devices).isdigit() else opts.devices,
              "progress": sys.stderr.isatty(), "eval_keep_every": opts.eval_keep_every,
              "repeats": opts.repeats, "schedule": opts.schedule}
    task = PCCNNTraining(dwi=[str(r[1]) for r in runs], bval=[str(r[2]) for r in runs],
                         bvec=[str(r[3]) for r in runs], names=[r[0] for r in runs],
                         subject_split=split, config=config,
                         resume=str(opts.resume.resolve()) if opts.resume else None)
    outputs = _run(task, work)
    if outputs is None:
        return 1
    report = outputs.report
    src = Path(report["weights"])
    target = out / "pccnn" / src.name
    copy_file(src, target)
    copy_file(src.with_suffix(".json"), target.with_suffix(".json"))
    trained = src.parents[1]
    shutil.copytree(trained / "tensorboard", out / "tensorboard", dirs_exist_ok=True)
    copy_file(Path(report["last_checkpoint"]), out / "checkpoints" / "last.ckpt")
    write_json(out / "training_report.json", report)
    cols = ["subject", "context", "held_out", "nrmse_model", "nrmse_sh", "psnr_model", "psnr_sh"]
    write_text(out / "test_metrics.tsv", "\n".join(["\t".join(cols)] + [
        "\t".join(f"{r[c]:.5f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
        for r in report["test"]]) + "\n")
    print(json.dumps({"weights": str(target), "best_val_loss": report["best_val_loss"],
                      "epochs": report["epochs"], "split": split}))
    return 0


def _isotropic_images(bids: Path, labels: list[str], suffixes: list[str]) -> list[tuple[str, Path]]:
    """(name, path) of every isotropic image with one of ``suffixes``."""
    from srprep.core.nifti import check_header

    from ..naming import BIDSName

    found = []
    for path in sorted(bids.glob("sub-*/**/anat/*.nii*")):
        name = BIDSName.parse(path.name)
        if name.suffix not in suffixes or (labels and name.entities["sub"] not in labels):
            continue
        zooms = check_header(path, allow_4d=False).zooms
        if max(zooms) > 1.2 * min(zooms):
            continue
        key = "_".join(f"{k}-{name.entities[k]}" for k in ("sub", "ses", "acq", "run")
                       if k in name.entities) + f"_{name.suffix}"
        found.append((key, path))
    return found


def train_easysr(opts) -> int:
    from srprep.models.training_run import split_subjects
    from srprep.pipelines.training import EasySRTraining

    from .. import engine

    if opts.factor < 2 or opts.patch % opts.factor:
        print("srprep-train: error: --factor must be >= 2 and divide --patch", file=sys.stderr)
        return 2
    out, work = opts.output_dir.resolve(), (opts.work_dir or opts.output_dir / "work").resolve()
    engine.configure_environment(work, 1)
    images = _isotropic_images(opts.bids_dir.resolve(), opts.participant_label, opts.suffix)
    subjects = sorted({n.split("_")[0] for n, _ in images})
    if len(subjects) < 2:
        print(f"srprep-train: error: need isotropic {'/'.join(opts.suffix)} images of at least "
              f"2 participants, found {len(subjects)}", file=sys.stderr)
        return 2
    split = split_subjects(subjects, tuple(opts.split), opts.seed)
    if opts.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print("srprep-train: error: --device cuda but no CUDA device", file=sys.stderr)
            return 2
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
    outputs = _run(task, work)
    if outputs is None:
        return 1
    report = outputs.report
    for key in ("generator", "discriminator"):
        src = Path(report[key])
        copy_file(src, out / "easysr" / src.name)
        copy_file(src.with_suffix(".json"), out / "easysr" / src.with_suffix(".json").name)
    trained = Path(report["generator"]).parents[1]
    copy_file(trained / "checkpoints" / "last.pt", out / "checkpoints" / "last.pt")
    for folder in ("png", "tensorboard"):      # per-epoch mid-slices and TensorBoard logs
        shutil.copytree(trained / folder, out / folder, dirs_exist_ok=True)
    copy_file(trained / "history.tsv", out / "history.tsv")
    write_json(out / "training_report.json", report)
    cols = ["volume", "axis", "psnr_model", "psnr_cubic", "ssim_model", "ssim_cubic"]
    write_text(out / "test_metrics.tsv", "\n".join(["\t".join(cols)] + [
        "\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols)
        for r in report["test"]]) + "\n")
    print(json.dumps({"generator": str(out / "easysr" / Path(report["generator"]).name),
                      "best_val_psnr": report["best_val_psnr"], "epochs": report["epochs"],
                      "split": split}))
    return 0


def _pairs(bids: Path, labels: list[str]) -> list[tuple[str, Path, Path]]:
    """(name, T1w, T2w) per session with isotropic images of both contrasts."""
    from srprep.core.nifti import check_header

    from ..naming import BIDSName

    found: dict[str, dict[str, Path]] = {}
    for path in sorted(bids.glob("sub-*/**/anat/*.nii*")):
        name = BIDSName.parse(path.name)
        if name.suffix not in ("T1w", "T2w") or (labels and name.entities["sub"] not in labels):
            continue
        zooms = check_header(path, allow_4d=False).zooms
        if max(zooms) > 1.2 * min(zooms):
            continue  # thick-slice images are inputs, not training targets
        key = f"sub-{name.entities['sub']}" + (f"_ses-{name.entities['ses']}" if "ses" in name.entities else "")
        found.setdefault(key, {}).setdefault(name.suffix, path)
    return [(k, v["T1w"], v["T2w"]) for k, v in sorted(found.items()) if {"T1w", "T2w"} <= set(v)]


def _config(opts) -> dict:
    from srprep.models.babyai import OFFICIAL, SMALL

    network = dict(SMALL, residual=True) if opts.size == "small" else dict(OFFICIAL)
    return {"network": network, "loss": opts.loss, "lr": opts.lr, "batch_size": opts.batch_size,
            "epochs": opts.epochs, "max_minutes": opts.max_minutes, "seed": opts.seed,
            "accelerator": opts.accelerator,
            "devices": int(opts.devices) if str(opts.devices).isdigit() else opts.devices,
            "strategy": "ddp" if str(opts.devices) not in ("1", "auto") else "auto",
            "degradation": {"thickness": tuple(opts.thickness), "axes": tuple(opts.axes),
                            "model": opts.synthesis},
            "sampler": {"patch": (opts.patch,) * 3, "per_subject": opts.patches_per_subject},
            "progress": sys.stderr.isatty()}


def train_babyai(opts) -> int:
    from srprep.core.templates import write_mni152
    from srprep.models.training_run import split_subjects
    from srprep.pipelines.training import BabyAITraining

    from .. import engine

    out, work = opts.output_dir.resolve(), (opts.work_dir or opts.output_dir / "work").resolve()
    engine.configure_environment(work, 1)
    pairs = _pairs(opts.bids_dir.resolve(), opts.participant_label)
    if len(pairs) < 2:
        print(f"srprep-train: error: need at least 2 sessions with isotropic T1w and T2w, "
              f"found {len(pairs)}", file=sys.stderr)
        return 2
    atlas = opts.atlas.resolve() if opts.atlas else write_mni152(
        work / "templates" / f"mni152_{opts.atlas_resolution:g}mm.nii.gz", opts.atlas_resolution)
    split = split_subjects([p[0] for p in pairs], tuple(opts.split), opts.seed)
    config = _config(opts)
    task = BabyAITraining(t1w=[str(p[1]) for p in pairs], t2w=[str(p[2]) for p in pairs],
                          names=[p[0] for p in pairs], atlas=str(atlas), subject_split=split,
                          config=config, register=not opts.no_register,
                          resume=str(opts.resume) if opts.resume else None)
    outputs = _run(task, work)
    if outputs is None:
        return 1
    report = outputs.report
    target = out / "babyai" / "pretrained_weights.pth"
    copy_file(outputs.weights, target)
    if config["network"].get("residual"):  # the loader needs to know (see models.babyai)
        write_json(target.with_suffix(".json"), config["network"])
    write_json(out / "training_report.json", {"config": config, **report})
    _write_test_tsv(report["test"], out / "test_metrics.tsv")
    print(json.dumps({"weights": str(target), "best_val_loss": report["best_val_loss"],
                      "epochs": report["epochs"], "split": split}))
    return 0


def _write_test_tsv(rows: list[dict], path: Path) -> None:
    cols = ["subject", "axis", "thickness_mm", "psnr_model", "psnr_cubic", "ssim_model", "ssim_cubic"]
    lines = ["\t".join(cols)] + ["\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c])
                                           for c in cols) for r in rows]
    write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    return {"babyai": train_babyai, "easysr": train_easysr,
            "pccnn": train_pccnn, "aid": train_aid}[opts.method](opts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
