"""Adversarial training of EasySR generators on a user's isotropic images.

Each epoch, every training volume gets a thick-slice version along a randomly drawn axis
(box profile: a slice of thickness ``f·r`` is the mean of ``f`` thin slices, the same
geometry the inference grids assume), both are mapped with the thick volume's affine
intensity map (as at inference), and aligned patch pairs are drawn with a foreground
bias.  The generator minimises ``content + λ·adversarial``; the discriminator sees real
and generated patches (BCE on logits).  BatchNorm is back in training mode every epoch,
AMP is used on CUDA, the model with the best validation PSNR is exported in the
release's raw state_dict format, and ``last.pt`` holds everything needed to resume.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srprep.core.throughplane import box_downsample, zscore_minmax

from .data import Volume, _pairs_for_epoch
from .inference import generate
from .network import PatchDiscriminator, ResidualGenerator, ResnetGenerator, save_checkpoint


@dataclass
class EasySRTrainConfig:
    """Settings of :func:`train_easysr` (defaults: the reference's optimiser)."""

    factor: int = 3
    ngf: int = 32
    n_residual_blocks: int = 2
    residual: bool = True            # add the linearly upsampled input (new models only)
    ndf: int = 3
    patch: int = 48                  # thin-slice patch edge (a multiple of factor)
    patches_per_volume: int = 16
    batch_size: int = 4
    epochs: int = 50
    max_minutes: float | None = None
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    content: str = "l1"              # or "mse"
    adv_weight: float = 1e-3
    adv_start: int = 1               # epochs of content-only warm-up
    axes: tuple[int, ...] = (0, 1, 2)
    noise: float = 0.0               # max Gaussian noise on thick inputs (fraction of range)
    foreground: float = 0.9
    seed: int = 0
    device: str = "cpu"
    amp: bool = True                 # on CUDA only
    model_name: str = "Mixed"        # exported as G_latest_<name>.pth / D_latest_<name>.pth
    progress: bool = True

    def __post_init__(self):
        if self.factor < 2:
            raise ValueError("factor must be >= 2")
        if self.patch % self.factor or self.patch < 16:
            raise ValueError(f"patch ({self.patch}) must be >= 16 and a multiple of factor")


def build_generator(config: EasySRTrainConfig) -> ResnetGenerator:
    cls = ResidualGenerator if config.residual else ResnetGenerator
    return cls(ngf=config.ngf, n_residual_blocks=config.n_residual_blocks, factor=config.factor,
               axis=1)


def disc_grid(patch: int) -> tuple[int, int, int]:
    """conv5 output size for a cubic patch (four stride-2 k4 p1 convs, then k4 s1 p1)."""
    n = patch
    for _ in range(4):
        n = (n + 2 - 4) // 2 + 1
    return (max(1, n - 1),) * 3


def _thick_model_cubic(net: ResnetGenerator, path: Path, axis: int, factor: int, device: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, generator, cubic) for the box-thick version of a volume along ``axis``;
    the truth is cropped to whole thick slices."""
    from srprep.core.resample import resample
    from srprep.core.throughplane import lr_grid_for

    hr = np.asarray(np.load(path), np.float32)
    n = (hr.shape[axis] // factor) * factor
    hr = np.take(hr, np.arange(n), axis=axis)
    lr = box_downsample(hr, axis, factor)
    scale = zscore_minmax(lr)
    sr = scale.invert(generate(net, scale.apply(lr), axis, device=device))
    lr_affine = lr_grid_for(np.eye(4), hr.shape, axis, factor).lr_affine
    cubic = resample(lr, lr_affine, np.eye(4), hr.shape, order=3, mode="nearest")
    return hr, sr, cubic


def validate(net: ResnetGenerator, volumes: list[Volume], factor: int, axis: int = 2,
             device: str = "cpu") -> dict:
    """PSNR/SSIM of the generator and of cubic interpolation on box-thick versions of
    the validation volumes (one thick axis), inside ``truth > 10 %`` of the range.

    ``out["first"]`` keeps (truth, generator, cubic) of the first volume, so that the
    per-epoch picture does not run the generator over it a second time."""
    from srprep.core.metrics import psnr, ssim

    rows, first = [], None
    for v in volumes:
        hr, sr, cubic = _thick_model_cubic(net, v.path, axis, factor, device)
        first = first or (hr, sr, cubic)
        mask = hr > hr.min() + 0.1 * (hr.max() - hr.min())
        rows.append({"name": v.name, "psnr_model": psnr(hr, sr, mask),
                     "psnr_cubic": psnr(hr, cubic, mask), "ssim_model": ssim(hr, sr, mask),
                     "ssim_cubic": ssim(hr, cubic, mask)})
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "name"}
    out["cases"] = rows
    out["first"] = first
    return out


def _mid_slice_png(truth: np.ndarray, sr: np.ndarray, cubic: np.ndarray, path: Path) -> np.ndarray:
    """thick (cubic) | generated | truth, middle coronal slice (thick axis 2)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    y = truth.shape[1] // 2
    tiles = [np.rot90(a[:, y, :]) for a in (cubic, sr, truth)]
    strip = np.concatenate(tiles, axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, strip, cmap="gray", vmin=float(truth.min()),
               vmax=float(np.percentile(truth, 99.5)))
    return strip


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state()}


def train_easysr(train: list[Volume], val: list[Volume], out_dir: str | os.PathLike,
                 config: EasySRTrainConfig | None = None, *, resume: str | os.PathLike | None = None
                 ) -> dict:
    """Train a generator/discriminator pair; returns a report (paths, history, best).

    Writes ``out_dir/easysr/G_latest_<name>.pth`` (+ ``D_latest_<name>.pth`` and
    ``.json`` sidecars: configuration, voxel size, normalisation), ``checkpoints/last.pt``
    (resume), ``png/epoch_NNN.png``, ``tensorboard/`` and ``history.tsv``.
    """
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    from srprep.core.atomic import atomic_path, write_json, write_text

    config = config or EasySRTrainConfig()
    if not train or not val:
        raise ValueError("need at least one training and one validation volume")
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    device = config.device
    use_amp = bool(config.amp and device.startswith("cuda"))
    torch.manual_seed(config.seed)
    gen = build_generator(config).to(device)
    disc = PatchDiscriminator(ndf=config.ndf, fc_grid=disc_grid(config.patch)).to(device)
    opt_g = torch.optim.Adam(gen.parameters(), lr=config.lr, betas=config.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=config.lr, betas=config.betas)
    scaler_g = torch.amp.GradScaler("cuda", enabled=use_amp)
    scaler_d = torch.amp.GradScaler("cuda", enabled=use_amp)
    content_fn = nn.L1Loss() if config.content == "l1" else nn.MSELoss()
    bce = nn.BCEWithLogitsLoss()
    start_epoch, best, history, best_state = 0, -math.inf, [], None
    if resume:
        state = torch.load(resume, map_location=device, weights_only=False)
        gen.load_state_dict(state["generator"])
        disc.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        scaler_g.load_state_dict(state["scaler_g"])
        scaler_d.load_state_dict(state["scaler_d"])
        torch.set_rng_state(state["rng"]["torch"])
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
        best_state = state.get("best_state")
    writer = SummaryWriter(str(out / "tensorboard"))
    weights_dir = out / "easysr"
    g_file = weights_dir / f"G_latest_{config.model_name}.pth"
    d_file = weights_dir / f"D_latest_{config.model_name}.pth"
    side = train[0].path.with_suffix(".json")
    voxel = float(json.loads(side.read_text())["voxel_mm"]) if side.is_file() else 1.0
    meta = {"voxel_mm": voxel, "trained_by": "srprep-train easysr",
            "normalisation": "min-max of the thick image to [0, 255] (inverted on output)",
            "training": {k: v for k, v in asdict(config).items() if k not in ("progress",)}}
    started = time.monotonic()
    for epoch in range(start_epoch, config.epochs):
        rng = np.random.default_rng([config.seed, epoch])
        xs, ys = _pairs_for_epoch(train, config, rng)
        gen.train()   # the reference never switched back after validation (frozen BN)
        disc.train()
        sums = {"loss_g": 0.0, "loss_content": 0.0, "loss_adv": 0.0, "loss_d": 0.0}
        batches = range(0, len(xs), config.batch_size)
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
                   disable=not config.progress, leave=False)
        adversarial = epoch >= config.adv_start and config.adv_weight > 0
        for i in bar:
            x = torch.from_numpy(np.stack(xs[i:i + config.batch_size]))[:, None].to(device)
            y = torch.from_numpy(np.stack(ys[i:i + config.batch_size]))[:, None].to(device)
            with torch.autocast(device_type="cuda" if use_amp else "cpu", enabled=use_amp):
                fake = gen(x)
                loss_c = content_fn(fake / 255.0, y / 255.0)
                loss_a = bce(disc.logits(fake), torch.ones(len(x), 1, device=device)) \
                    if adversarial else torch.zeros((), device=device)
                loss_g = loss_c + config.adv_weight * loss_a
            opt_g.zero_grad(set_to_none=True)
            scaler_g.scale(loss_g).backward()
            scaler_g.step(opt_g)
            scaler_g.update()
            with torch.autocast(device_type="cuda" if use_amp else "cpu", enabled=use_amp):
                real_l = disc.logits(y)
                fake_l = disc.logits(fake.detach())
                loss_d = 0.5 * (bce(real_l, torch.ones_like(real_l))
                                + bce(fake_l, torch.zeros_like(fake_l)))
            opt_d.zero_grad(set_to_none=True)
            scaler_d.scale(loss_d).backward()
            scaler_d.step(opt_d)
            scaler_d.update()
            for k, v in (("loss_g", loss_g), ("loss_content", loss_c), ("loss_adv", loss_a),
                         ("loss_d", loss_d)):
                sums[k] += float(v.detach()) * len(x)
            bar.set_postfix(loss_g=f"{float(loss_g.detach()):.4f}", loss_d=f"{float(loss_d.detach()):.3f}")
        row = {"epoch": epoch + 1, **{k: v / len(xs) for k, v in sums.items()}}
        gen.eval()
        metrics = validate(gen, val, config.factor, device=device)
        row.update({k: metrics[k] for k in ("psnr_model", "psnr_cubic", "ssim_model", "ssim_cubic")})
        history.append(row)
        for k, v in row.items():
            if k != "epoch":
                writer.add_scalar(k, v, epoch + 1)
        strip = _mid_slice_png(*metrics.pop("first"),
                               out / "png" / f"epoch_{epoch + 1:03d}.png")  # val[0], axis 2
        writer.add_image("mid_slice", (strip - strip.min()) / (np.ptp(strip) + 1e-6), epoch + 1,
                         dataformats="HW")
        if row["psnr_model"] > best:
            best = row["psnr_model"]
            best_state = {"generator": {k: v.detach().cpu().clone() for k, v in gen.state_dict().items()},
                          "discriminator": {k: v.detach().cpu().clone()
                                            for k, v in disc.state_dict().items()},
                          "epoch": epoch + 1}
        with atomic_path(ckpt_dir / "last.pt") as tmp:
            torch.save({"generator": gen.state_dict(), "discriminator": disc.state_dict(),
                        "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
                        "scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict(),
                        "epoch": epoch, "best": best, "history": history, "best_state": best_state,
                        "config": asdict(config), "rng": _rng_state()}, tmp)
        cols = list(history[0])
        write_text(out / "history.tsv", "\t".join(cols) + "\n" + "".join(
            "\t".join(f"{r[c]:.6g}" if isinstance(r[c], float) else str(r[c]) for c in cols) + "\n"
            for r in history))
        if config.max_minutes and (time.monotonic() - started) / 60 > config.max_minutes:
            break
    writer.close()
    if best_state is None:
        raise RuntimeError("no epoch was trained (is --epochs larger than the resumed epoch?)")
    best_g = build_generator(config)
    best_g.load_state_dict(best_state["generator"])
    best_d = PatchDiscriminator(ndf=config.ndf, fc_grid=disc_grid(config.patch))
    best_d.load_state_dict(best_state["discriminator"])
    save_checkpoint(best_g, g_file, {**meta, "epoch": best_state["epoch"], "val_psnr": best})
    save_checkpoint(best_d, d_file, {"epoch": best_state["epoch"]})
    report = {"generator": str(g_file), "discriminator": str(d_file), "best_val_psnr": best,
              "epochs": len(history), "history": history, "config": asdict(config)}
    write_json(out / "training_report.json", report)
    return report


def evaluate_volumes(generator_file, volumes: list[Volume], axes=(0, 1, 2), device: str = "cpu"
                     ) -> list[dict]:
    """Generator vs cubic on box-thick versions of each volume along each axis."""
    from .network import from_official_checkpoint

    net = from_official_checkpoint(generator_file)
    rows = []
    for v in volumes:
        for axis in axes:
            m = validate(net, [v], net.factor, axis=axis, device=device)
            rows.append({"volume": v.name, "axis": axis, **{k: float(m[k]) for k in
                         ("psnr_model", "psnr_cubic", "ssim_model", "ssim_cubic")}})
    return rows


def run_training(prepared: list[dict], split: dict, config: dict, out_dir: str | os.PathLike,
                 resume: str | os.PathLike | None = None) -> dict:
    """Subject-level split of prepared volumes, training, and test-set evaluation."""
    cfg = EasySRTrainConfig(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in config.items()})
    by_split: dict[str, list[Volume]] = {"train": [], "val": [], "test": []}
    for item in prepared:
        subject = item["name"].split("_")[0]
        for part, members in split.items():
            if subject in members:
                by_split[part].append(Volume(Path(item["volume"]), item["name"]))
    report = train_easysr(by_split["train"], by_split["val"], out_dir, cfg, resume=resume)
    report["test"] = evaluate_volumes(report["generator"], by_split["test"], device=cfg.device) \
        if by_split["test"] else []
    report["split"] = split
    return report
