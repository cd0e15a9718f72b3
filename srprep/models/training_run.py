"""Glue from prepared subjects to a trained, evaluated model (used by the training task)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .patch_data import Degradation, PatchSampler, Subject
from .training import TrainConfig, train

def test_cases(degradation: Degradation) -> tuple[tuple[int, float], ...]:
    """Held-out degradations for test metrics: the middle of the training thickness range
    along every training axis, and both ends of the range axially."""
    lo, hi = degradation.thickness
    mid = round((lo + hi) / 2, 3)
    return tuple((a, mid) for a in degradation.axes) + ((2, float(lo)), (2, float(hi)))


def split_subjects(names: list[str], fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict:
    """Subject-level split (shuffled with ``seed``); every part non-empty when possible."""
    order = list(sorted(names))
    np.random.default_rng(seed).shuffle(order)
    n = len(order)
    n_val = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
    n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else 0
    n_train = n - n_val - n_test
    return {"train": order[:n_train], "val": order[n_train:n_train + n_val] or order[:1],
            "test": order[n_train + n_val:]}


def config_from_dict(d: dict) -> TrainConfig:
    d = dict(d)
    deg = d.pop("degradation", {})
    smp = d.pop("sampler", {})
    cfg = TrainConfig(**{k: v for k, v in d.items() if k in TrainConfig.__dataclass_fields__})
    cfg.degradation = Degradation(**{**cfg.degradation.__dict__, **deg})
    cfg.sampler = PatchSampler(**{**cfg.sampler.__dict__, **smp})
    return cfg


def evaluate_subjects(weights: Path, subjects: list[Subject], cases) -> list[dict]:
    """PSNR/SSIM of the model and of cubic interpolation on held-out degradations."""
    from srprep.core.metrics import psnr, ssim

    from .babyai import from_official_checkpoint
    from .inference import sliding_window

    net = from_official_checkpoint(weights)
    degrade = Degradation()
    rows = []
    for subject in subjects:
        target, guide = (np.asarray(v) for v in subject.open())
        mask = target > 0.05
        for axis, thickness in cases:
            lr = degrade.apply(target, axis, thickness, subject.voxel_mm)
            out = sliding_window(net, np.stack([guide, lr]), overlap=0.5, mode="gaussian",
                                 batch_size=8)[0]
            rows.append({"subject": subject.name, "axis": axis, "thickness_mm": thickness,
                         "psnr_model": psnr(target, out, mask), "ssim_model": ssim(target, out, mask),
                         "psnr_cubic": psnr(target, lr, mask), "ssim_cubic": ssim(target, lr, mask)})
    return rows


def train_from_prepared(prepared: list[dict], split: dict, config: dict, out_dir: Path,
                        resume=None) -> tuple[Path, dict]:
    subjects = {p["name"]: Subject(Path(p["target"]), Path(p["guide"]), float(p["voxel_mm"]),
                                   p["name"]) for p in prepared}
    cfg = config_from_dict(config)
    result = train([subjects[n] for n in split["train"]], [subjects[n] for n in split["val"]],
                   out_dir, cfg, resume=resume)
    test = evaluate_subjects(result.weights, [subjects[n] for n in split.get("test", [])],
                             test_cases(cfg.degradation))
    report = {"best_val_loss": result.best_val_loss, "epochs": result.epochs,
              "best_checkpoint": str(result.best_checkpoint),
              "last_checkpoint": str(result.last_checkpoint),
              "metrics_csv": str(result.metrics_csv), "split": split, "test": test}
    return result.weights, report
