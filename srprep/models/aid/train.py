"""AID training with Lightning: one stage (everything) or two stages (1: the main U-Net
alone as an unconditional per-frame DDPM; 2: main path frozen, only the conditioning branch
``x0_blocks`` and the ``connectors`` learn), AdamW, uniform timesteps, EMA weights.

Defaults follow the reference (AdamW lr 1e-4, no weight decay, EMA 0.9999) except where a
short CPU run needs otherwise; ``AIDTrainConfig`` records every choice in the report."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .diffusion import EMA, GaussianDiffusion
from .network import AIDConfig, CausalUNet

__all__ = ["AIDTrainConfig", "AIDModule", "train_aid", "tiny_config"]

MAIN_PATH = ("time_embed", "input_blocks", "middle_block", "output_blocks", "out")


def tiny_config(*, size: int = 32, channels: int = 1, seq_length: int = 5,
                concat_cond: bool = True, model_channels: int = 32) -> AIDConfig:
    """The small CPU configuration of the spec's honest test (mc 32, mult (1,2,2))."""
    return AIDConfig(image_size=size, in_channels=channels, model_channels=model_channels,
                     channel_mult=(1, 2, 2), num_res_blocks=1, attention_ds=(4,),
                     seq_length=seq_length, concat_cond=concat_cond)


@dataclass
class AIDTrainConfig:
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.0
    ema_rate: float = 0.9999
    stages: int = 1                 #: 1 = one-stage, 2 = two-stage (needs concat_cond=False)
    stage1_fraction: float = 0.5    #: share of ``steps`` spent in stage 1 of two-stage training
    seed: int = 0
    max_minutes: float | None = None
    context_noise: float = 0.0      #: max std of noise added to conditioning frames (0: reference)
    context_dropout: float = 0.0    #: probability of an all-zero context (0: reference)


class AIDModule:
    """Built lazily so ``lightning`` is only imported when training."""

    def __new__(cls, net: CausalUNet, cfg: AIDTrainConfig, multistage: int):
        import lightning as L

        class _Module(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.net = net
                self.diffusion = GaussianDiffusion.linear(1000, learn_sigma=net.config.learn_sigma)
                self.multistage = multistage
                self.ema = EMA(net, cfg.ema_rate)
                self.gen = torch.Generator().manual_seed(cfg.seed)
                self.history: list[dict] = []
                if multistage == 2:            # freeze the main path (reference: second stage)
                    for name, p in net.named_parameters():
                        if name.split(".")[0] in MAIN_PATH:
                            p.requires_grad_(False)

            def training_step(self, batch, _idx):
                seq = batch.to(self.device)
                if self.multistage == 1:          # unconditional per-frame DDPM on all frames
                    frames = seq.flatten(0, 1)
                    t = torch.randint(0, 1000, (frames.shape[0],), generator=self.gen).to(self.device)
                    noise = torch.randn(frames.shape, generator=self.gen).to(self.device)
                    xt = self.diffusion.q_sample(frames, t, noise)
                    out = self.net.forward_unconditional(xt, t)
                    terms = self.diffusion.hybrid_loss(out, frames, xt, t, noise)
                else:
                    terms = self.diffusion.training_losses_temporal(
                        self.net, seq, multistage=self.multistage, generator=self.gen,
                        context_noise=cfg.context_noise, context_dropout=cfg.context_dropout)
                loss = terms["loss"].mean()
                self.log("loss", loss, prog_bar=True)
                self.history.append({"step": int(self.global_step), "loss": float(loss.detach()),
                                     "mse": float(terms["mse"].mean().detach())})
                return loss

            def on_train_batch_end(self, *_a):
                self.ema.update(self.net)

            def configure_optimizers(self):
                params = [p for p in self.net.parameters() if p.requires_grad]
                return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)

        return _Module()


def _fit(net, loader, cfg: AIDTrainConfig, steps: int, multistage: int, log_dir: Path,
         minutes: float | None):
    import lightning as L
    from lightning.pytorch.callbacks import Timer

    module = AIDModule(net, cfg, multistage)
    callbacks = [Timer(duration=dict(minutes=minutes))] if minutes else []
    trainer = L.Trainer(max_steps=steps, accelerator="auto", devices=1, logger=False,
                        enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=True, callbacks=callbacks,
                        default_root_dir=str(log_dir), num_sanity_val_steps=0)
    trainer.fit(module, loader)
    return module


@torch.no_grad()
def temporal_loss(net: CausalUNet, seqs: torch.Tensor, *, multistage: int = 0, seed: int = 1,
                  draws: int = 4, without_context: bool = False) -> float:
    """Mean eps-MSE of the teacher-forced objective over fixed timesteps and noise
    (comparable between models and calls: same t, same noise). ``without_context`` zeroes
    every conditioning frame: the gap to the real-context loss measures how much the
    preceding slices help."""
    diffusion = GaussianDiffusion.linear(1000, learn_sigma=net.config.learn_sigma)
    g = torch.Generator().manual_seed(seed)
    net.eval()
    vals = []
    for _ in range(draws):
        t = torch.randint(0, 1000, (seqs.shape[0],), generator=g)
        noise = torch.randn(seqs[:, 1:].shape, generator=g)
        terms = diffusion.training_losses_temporal(net, seqs, multistage=multistage, t=t, noise=noise,
                                                   context_dropout=1.0 if without_context else 0.0)
        vals.append(float(terms["mse"].mean()))
    return float(np.mean(vals))


def train_aid(config: AIDConfig, train_volumes: list[np.ndarray], out_dir: str | Path,
              cfg: AIDTrainConfig | None = None) -> dict:
    """Train on slice sequences of ``train_volumes`` ((S, C, H, W) each); write
    ``aid.pt`` (EMA weights, release format) + ``aid.json`` and ``aid_raw.pt``; return a
    report (loss history, timing, stages)."""
    from . import save_checkpoint
    from .data import SequenceDataset

    cfg = cfg or AIDTrainConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.stages == 2 and config.concat_cond:
        raise ValueError("two-stage training needs concat_cond=False (connector fusion)")
    torch.manual_seed(cfg.seed)
    net = CausalUNet(config)
    data = SequenceDataset(train_volumes, config.seq_length, seed=cfg.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=len(data) > cfg.batch_size,
                                         generator=torch.Generator().manual_seed(cfg.seed))
    t0 = time.time()
    history, stages = [], []
    if cfg.stages == 1:
        plan = [(0, cfg.steps)]
    else:
        s1 = max(1, int(round(cfg.steps * cfg.stage1_fraction)))
        plan = [(1, s1), (2, cfg.steps - s1)]
    module = None
    for multistage, steps in plan:
        left = None if cfg.max_minutes is None else max(0.1, cfg.max_minutes - (time.time() - t0) / 60)
        module = _fit(net, loader, cfg, steps, multistage, out, left)
        history += [dict(h, stage=multistage) for h in module.history]
        stages.append({"multistage": multistage, "steps": len(module.history)})
    seconds = time.time() - t0
    for p in net.parameters():
        p.requires_grad_(True)
    raw = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    torch.save(raw, out / "aid_raw.pt")
    module.ema.copy_to(net)
    report = {"config": config.to_dict(), "train": asdict(cfg), "stages": stages,
              "seconds": round(seconds, 1), "sequences": len(data),
              "steps_per_second": round(len(history) / max(seconds, 1e-9), 3),
              "final_loss": float(np.mean([h["loss"] for h in history[-50:]])) if history else math.nan,
              "history": history[:: max(1, len(history) // 200)]}
    save_checkpoint(net, out / "aid.pt", extra={"report": {k: v for k, v in report.items()
                                                           if k != "history"}})
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def run_training(volumes: list[dict], split: dict, config: dict, out_dir: str | Path) -> dict:
    """Train on the ``train`` subjects' slices and test on the ``test`` subjects.

    ``config``: size, seq_length, model_channels, channel_mult, num_res_blocks,
    attention_ds, plus :class:`AIDTrainConfig` fields (steps, batch_size, lr, ema_rate,
    stages, seed, max_minutes) and eval_slices/eval_steps for the test."""
    from . import from_official_checkpoint
    from .recon import simulated_comparison

    out = Path(out_dir)
    subject = lambda v: v["name"].split("_")[0]      # noqa: E731
    channels = {v["channels"] for v in volumes}
    if len(channels) != 1:
        raise ValueError("all training volumes must have the same channel count (magnitude "
                         "NIfTI and complex k-space cannot be mixed)")
    stages = int(config.get("stages", 1))
    arch = AIDConfig(image_size=int(config["size"]), in_channels=channels.pop(),
                     model_channels=int(config.get("model_channels", 32)),
                     channel_mult=tuple(config.get("channel_mult", (1, 2, 2))),
                     num_res_blocks=int(config.get("num_res_blocks", 1)),
                     attention_ds=tuple(config.get("attention_ds", (4,))),
                     seq_length=int(config.get("seq_length", 5)), concat_cond=stages == 1)
    tfields = set(AIDTrainConfig.__dataclass_fields__)
    tcfg = AIDTrainConfig(**{k: v for k, v in config.items() if k in tfields})
    train = [np.load(v["file"]) for v in volumes if subject(v) in split["train"] + split.get("val", [])]
    if not train:
        raise ValueError("no training volumes")
    report = train_aid(arch, train, out, tcfg)
    net = from_official_checkpoint(out / "aid.pt")
    tests = []
    for v in volumes:
        if subject(v) not in split.get("test", []):
            continue
        slices = np.load(v["file"])
        seqs = torch.as_tensor(np.stack([slices[i:i + arch.seq_length + 1]
                                         for i in range(0, len(slices) - arch.seq_length,
                                                        arch.seq_length + 1)]))
        row = {"volume": v["name"], "eps_mse": temporal_loss(net, seqs)}
        row["eps_mse_without_context"] = temporal_loss(net, seqs, without_context=True)
        n = int(config.get("eval_slices", 8))
        mid = len(slices) // 2
        comp = simulated_comparison(net, slices[max(0, mid - n // 2): max(0, mid - n // 2) + n],
                                    steps=int(config.get("eval_steps", 50)), seed=tcfg.seed)
        for k, m in comp["metrics"].items():
            row[f"psnr_{k}"], row[f"nrmse_{k}"] = m["psnr"], m["nrmse"]
        tests.append(row)
    report.update(weights=str(out / "aid.pt"), test=tests, split=split,
                  test_setup="8 synthetic coils, equispaced R=4, 1% noise, 50 steps")
    (out / "training_report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    return report
