"""Lightning training of supervised through-plane networks (BABY-AI and its small form).

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

import torch
from torch import nn

from .patch_data import Degradation, PatchDataset, PatchSampler, Subject


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
            from .babyai import build_network

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

    from .babyai import save_official_checkpoint

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
