"""BABY-AI training: Lightning training of the supervised through-plane network (the
released configuration or its small form) and the glue from prepared subjects to a
trained, evaluated model (used by the training task).

Subject-level splits, on-the-fly thick-slice synthesis (thickness and axis drawn per
subject and epoch), MSE or L1 loss, Adam, best-validation checkpoint, TensorBoard and CSV
logs, resume from a checkpoint, and DDP when several devices are given.  The best model
is exported as an official-format raw state_dict that ``from_official_checkpoint`` and
the BIDS App load.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data import Degradation, PatchDataset, PatchSampler, Subject


def _lightning():
    try:
        import lightning.pytorch as pl
    except ImportError as exc:  # pragma: no cover - optional extra
        raise ImportError("training needs the 'train' extra: pip install 'srprep[train]'") from exc
    return pl


@dataclass
class TrainConfig:
    """Training settings (BABY-AI defaults: Adam 1e-4, MSE, 32^3 patches)."""

    network: dict = field(default_factory=lambda: {"channels": (8, 16, 32, 64), "num_res_units": 2,
                                                   "residual": True})
    loss: str = "mse"
    lr: float = 1e-4
    batch_size: int = 8
    epochs: int = 100
    max_minutes: float | None = None
    seed: int = 0
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    degradation: Degradation = field(default_factory=Degradation)
    sampler: PatchSampler = field(default_factory=PatchSampler)
    progress: bool = True


def build_lightning_module(config: TrainConfig):
    pl = _lightning()

    class SupervisedSR(pl.LightningModule):
        """Wraps the BABY-AI U-Net; hyper-parameters are saved in the checkpoint."""

        def __init__(self, network: dict, loss: str, lr: float):
            super().__init__()
            from .network import build_network

            self.save_hyperparameters()
            self.net = build_network(**network)
            self.loss_fn = nn.MSELoss() if loss == "mse" else nn.L1Loss()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, _):
            x, y = batch
            loss = self.loss_fn(self(x), y)
            self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True,
                     batch_size=x.shape[0], sync_dist=True)
            return loss

        def validation_step(self, batch, _):
            x, y = batch
            loss = self.loss_fn(self(x), y)
            self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=x.shape[0],
                     sync_dist=True)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    return SupervisedSR(dict(config.network), config.loss, config.lr)


def build_datamodule(train: list[Subject], val: list[Subject], config: TrainConfig):
    pl = _lightning()
    from torch.utils.data import DataLoader

    class PatchData(pl.LightningDataModule):
        def __init__(self):
            super().__init__()
            self.train_set = PatchDataset(train, config.degradation, config.sampler, config.seed)
            self.val_set = PatchDataset(val, config.degradation, config.sampler,
                                        config.seed + 1, fixed=True)

        def train_dataloader(self):
            epoch = self.trainer.current_epoch if self.trainer else 0
            self.train_set.set_epoch(epoch)   # new degradations and patches every epoch
            gen = torch.Generator().manual_seed(config.seed + epoch)
            return DataLoader(self.train_set, batch_size=config.batch_size, shuffle=True,
                              generator=gen, num_workers=config.num_workers)

        def val_dataloader(self):
            return DataLoader(self.val_set, batch_size=config.batch_size,
                              num_workers=config.num_workers)

    return PatchData()


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    weights: Path              # official-format state_dict of the best model
    metrics_csv: Path
    best_val_loss: float
    epochs: int


def train(train_subjects: list[Subject], val_subjects: list[Subject], out_dir: str | os.PathLike,
          config: TrainConfig | None = None, *, resume: str | os.PathLike | None = None
          ) -> TrainResult:
    """Train, keep the best validation checkpoint and export its weights."""
    pl = _lightning()
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from .network import save_official_checkpoint

    config = config or TrainConfig()
    out = Path(out_dir)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    module = build_lightning_module(config)
    data = build_datamodule(train_subjects, val_subjects, config)
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", monitor="val_loss", mode="min",
                           save_top_k=1, save_last=True, filename="best-{epoch:03d}-{val_loss:.6f}")
    csv = CSVLogger(out, name="csv", version="")
    trainer = pl.Trainer(
        max_epochs=config.epochs,
        max_time=_dt.timedelta(minutes=config.max_minutes) if config.max_minutes else None,
        accelerator=config.accelerator, devices=config.devices, strategy=config.strategy,
        callbacks=[ckpt], logger=[TensorBoardLogger(out, name="tensorboard"), csv],
        reload_dataloaders_every_n_epochs=1, enable_progress_bar=config.progress,
        enable_model_summary=False, log_every_n_steps=1, deterministic="warn",
    )
    trainer.fit(module, datamodule=data, ckpt_path=str(resume) if resume else None)
    best = Path(ckpt.best_model_path)
    state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
    module.load_state_dict(state)
    weights = out / "babyai" / "pretrained_weights.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_official_checkpoint(module.net, weights)
    return TrainResult(best, Path(ckpt.last_model_path), weights,
                       Path(csv.log_dir) / "metrics.csv", float(ckpt.best_model_score),
                       trainer.current_epoch)


__all__ = ["TrainConfig", "TrainResult", "train", "asdict"]


# -- from prepared subjects to a trained, evaluated model (the training task) --

def test_cases(degradation: Degradation) -> tuple[tuple[int, float], ...]:
    """Held-out degradations for test metrics: the middle of the training thickness range
    along every training axis, and both ends of the range axially."""
    lo, hi = degradation.thickness
    mid = round((lo + hi) / 2, 3)
    return tuple((a, mid) for a in degradation.axes) + ((2, float(lo)), (2, float(hi)))


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

    from ..sliding_window import sliding_window
    from .network import from_official_checkpoint

    net = from_official_checkpoint(weights)
    degrade = Degradation()
    rows = []
    for subject in subjects:
        target, guide = (np.asarray(v) for v in subject.open())
        mask = target > 0.05
        for axis, thickness in cases:
            lr = degrade.apply(target, axis, thickness, subject.voxel_mm,
                               raw=subject.open_raw(), pad=subject.pad)
            out = sliding_window(net, np.stack([guide, lr]), overlap=0.5, mode="gaussian",
                                 batch_size=8)[0]
            rows.append({"subject": subject.name, "axis": axis, "thickness_mm": thickness,
                         "psnr_model": psnr(target, out, mask), "ssim_model": ssim(target, out, mask),
                         "psnr_cubic": psnr(target, lr, mask), "ssim_cubic": ssim(target, lr, mask)})
    return rows


def train_from_prepared(prepared: list[dict], split: dict, config: dict, out_dir: Path,
                        resume=None) -> tuple[Path, dict]:
    subjects = {p["name"]: Subject(Path(p["target"]), Path(p["guide"]), float(p["voxel_mm"]),
                                   p["name"], Path(p["target_raw"]) if p.get("target_raw") else None,
                                   p.get("pad")) for p in prepared}
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
