"""``srprep-train pccnn``: any PCCNN variant from dMRI runs (q-space draws per tile, held-out
directions scored against spherical-harmonic interpolation)."""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from srprep.core.atomic import copy_file

from . import common

#: a CPU-sized PCCNN (same structure, narrower layers)
PCCNN_SMALL = {"c_in": 32, "in_split": [16, 16], "mid": 24, "out_split": [16, 8], "out1": 16,
               "hidden_in": [16, 16], "hidden_inblocks": [16, 8], "hidden_mid": [8, 16],
               "hidden_outblocks": [8, 8], "hidden_out1": [8, 16], "hidden_out2": [16, 16]}
#: narrow and 1 + 2 blocks: CPU smoke training
PCCNN_TINY = {"c_in": 16, "in_split": [8, 8], "mid": 16, "out_split": [8, 8], "out1": 8,
              "hidden_in": [16, 16], "hidden_inblocks": [16, 8], "hidden_mid": [8, 16],
              "hidden_outblocks": [8, 8], "hidden_out1": [8, 16], "hidden_out2": [16, 16],
              "n_in_blocks": 1, "n_out_blocks": 2}


def add_parser(sub) -> argparse.ArgumentParser:
    c = sub.add_parser("pccnn", help="PCCNN (any variant) from dMRI runs")
    common.add_common(c)
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
    common.add_split(c)
    c.add_argument("--devices", default="1", help="devices per node (DDP when > 1)")
    c.add_argument("--accelerator", default="auto")
    c.add_argument("--resume", type=Path, default=None, help="Lightning checkpoint to resume")
    common.add_work_dir(c)
    return c


def _dwi_runs(bids: Path, labels: list[str]) -> list[tuple[str, Path, Path, Path]]:
    """(name, series, .bval, .bvec) of every dwi run with a readable gradient table."""
    from srprep.core.dwi import read_bvals_bvecs

    from ...naming import BIDSName

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
        runs.append((common.entity_key(name, "dwi"), path, bval, bvec))
    return runs


def run(opts) -> int:
    from srprep.pipelines.pccnn import PCCNNTraining

    out, work = common.start(opts)
    runs = _dwi_runs(opts.bids_dir.resolve(), opts.participant_label)
    subjects = sorted({r[0].split("_")[0] for r in runs})
    if len(subjects) < 2:
        return common.error(f"need dwi runs (with .bval/.bvec) of at least 2 participants, "
                            f"found {len(subjects)}")
    if not 1 <= opts.q_in[0] <= opts.q_in[1] or opts.q_out < 1:
        return common.error("need 1 <= --q-in MIN <= MAX and --q-out >= 1")
    split = common.split(subjects, opts)
    network = {"official": {}, "small": PCCNN_SMALL, "tiny": PCCNN_TINY}[opts.size]
    config = {"variant": opts.variant, "network": network,
              "q": {"q_in_min": opts.q_in[0], "q_in_max": opts.q_in[1], "q_out": opts.q_out,
                    "shells": opts.shells, "seed": opts.seed,
                    "cross_shell": opts.cross_shell, "masked": not opts.unmasked_loss},
              "batch_size": opts.batch_size, "epochs": opts.epochs,
              "max_minutes": opts.max_minutes, "lr": opts.lr, "seed": opts.seed,
              "accelerator": opts.accelerator, "devices": common.devices(opts.devices),
              "progress": sys.stderr.isatty(), "eval_keep_every": opts.eval_keep_every,
              "repeats": opts.repeats, "schedule": opts.schedule}
    task = PCCNNTraining(dwi=[str(r[1]) for r in runs], bval=[str(r[2]) for r in runs],
                         bvec=[str(r[3]) for r in runs], names=[r[0] for r in runs],
                         subject_split=split, config=config,
                         resume=str(opts.resume.resolve()) if opts.resume else None)

    def export(outputs, report) -> dict:
        src = Path(report["weights"])
        target = out / "pccnn" / src.name
        copy_file(src, target)
        copy_file(src.with_suffix(".json"), target.with_suffix(".json"))
        shutil.copytree(src.parents[1] / "tensorboard", out / "tensorboard", dirs_exist_ok=True)
        copy_file(Path(report["last_checkpoint"]), out / "checkpoints" / "last.ckpt")
        return {"weights": target}

    return common.run_and_report(
        task, work, out, export=export, split=split, digits=5,
        columns=["subject", "context", "held_out", "nrmse_model", "nrmse_sh", "psnr_model",
                 "psnr_sh"], summary=["best_val_loss", "epochs"])
