"""AID evidence at toy scale on a CPU (spec §9 B): train a tiny causal U-Net on axial slice
sequences of the demo dataset (MNI152-derived, participants 1-3, T1w/T2w/PDw, 32x32 or
larger), the same main path without conditioning ("Guide") for the same number of steps,
then reconstruct a held-out participant's T2w slices from simulated 8-coil k-space
(synthetic birdcage maps, equispaced R=4, no ACS, 1% noise) and report PSNR/NRMSE of
zero-filled, SENSE-l1 (sigpy), Guide and AID against the fully sampled truth.

    python benchmarks/aid_tiny.py --out /tmp/aid-tiny --size 32 --steps 1500 --minutes 20
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from srprep.bids_app.demo import build_demo
from srprep.models.aid import from_official_checkpoint
from srprep.models.aid.data import load_anat_slices
from srprep.models.aid.recon import simulated_comparison
from srprep.models.aid.train import AIDTrainConfig, temporal_loss, tiny_config, train_aid


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--minutes", type=float, default=None)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--recon-steps", type=int, default=100)
    ap.add_argument("--slices", type=int, default=10)
    ap.add_argument("--accel", type=int, default=4)
    ap.add_argument("--coils", type=int, default=8)
    ap.add_argument("--no-guide", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="keep models already trained in --out")
    ap.add_argument("--context-noise", type=float, default=0.0)
    ap.add_argument("--context-dropout", type=float, default=0.0)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    data = a.out / "demo"
    if not (data / "groundtruth").is_dir():
        build_demo(data, participants=4, resolution=2.0)
    gt = data / "groundtruth"
    train_files = sorted(p for s in ("01", "02", "03") for p in gt.glob(f"sub-{s}/**/anat/*.nii.gz"))
    test_file = next(gt.glob("sub-04/**/anat/*_T2w.nii.gz"))
    train = load_anat_slices(train_files, size=a.size)
    test = load_anat_slices([test_file], size=a.size)[0]
    results = {"size": a.size, "context_noise": a.context_noise,
               "context_dropout": a.context_dropout, "train_volumes": [p.name for p in train_files],
               "test_volume": test_file.name}

    cfg = tiny_config(size=a.size)
    tcfg = AIDTrainConfig(steps=a.steps, batch_size=4, lr=a.lr, max_minutes=a.minutes,
                          context_noise=a.context_noise, context_dropout=a.context_dropout)
    if a.reuse and (a.out / "aid" / "training_report.json").is_file():
        rep = json.loads((a.out / "aid" / "training_report.json").read_text())
    else:
        rep = train_aid(cfg, train, a.out / "aid", tcfg)
    results["aid_train"] = {k: rep[k] for k in ("seconds", "stages", "final_loss", "steps_per_second")}
    aid = from_official_checkpoint(a.out / "aid" / "aid.pt")
    guide = None
    if not a.no_guide:
        gcfg = dataclasses.replace(cfg, causal=False)
        # the plain U-Net learns single frames: sequences of length 1 -> frames 1..T alone
        done = a.out / "guide" / "guide_report.json"
        if a.reuse and done.is_file():
            grep = json.loads(done.read_text())
        else:
            grep = _train_guide(gcfg, train, a.out / "guide", tcfg)
            done.write_text(json.dumps(grep) + "\n")
        results["guide_train"] = grep
        guide = from_official_checkpoint(a.out / "guide" / "aid.pt")

    # teacher-forced eps-MSE on held-out sequences: does the conditioning help?
    seqs = torch.as_tensor(np.stack([test[i:i + cfg.seq_length + 1]
                                     for i in range(0, len(test) - cfg.seq_length, 3)]))
    results["heldout_eps_mse_aid"] = temporal_loss(aid, seqs)

    results["heldout_eps_mse_aid_without_context"] = temporal_loss(aid, seqs, without_context=True)

    # reconstruction of held-out slices from simulated multi-coil k-space
    mid = len(test) // 2
    truth = test[mid - a.slices // 2: mid - a.slices // 2 + a.slices]
    extra = {"guide": guide} if guide is not None else {}
    comp = simulated_comparison(aid, truth, acceleration=a.accel, coils=a.coils,
                                steps=a.recon_steps, extra_models=extra)
    rel = simulated_comparison(aid, truth, acceleration=a.accel, coils=a.coils,
                               steps=a.recon_steps, released_attention=True)
    comp["metrics"]["aid_released_attention"] = rel["metrics"]["aid"]
    results["recon"] = comp["metrics"]
    results["recon_seconds_per_slice"] = comp["seconds_per_slice"]
    results["recon_setup"] = comp["setup"]
    results["generation"] = _generation(aid, guide, test, a.recon_steps)
    np.save(a.out / "recons.npy", {k: np.abs(v) for k, v in comp["images"].items()}
            | {"truth": np.abs(comp["truth"])})
    (a.out / "results.json").write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(json.dumps(results, indent=2, default=float))


def _corr(a, b):
    a, b = np.ravel(a), np.ravel(b)
    return float(np.corrcoef(a, b)[0, 1])


def _generation(aid, guide, test, steps, n=6):
    """Spec §9 B.3: warm-start prospective generation after real held-out slices; mean
    correlation of consecutive frames (and of the first new frame with the last real one)
    vs the true data and vs independent samples of the unconditional "Guide" model."""
    from srprep.models.aid.diffusion import GaussianDiffusion
    from srprep.models.aid.sampling import prospective, reverse_loop

    diff = GaussianDiffusion.linear(1000, respacing=steps)
    t = aid.config.seq_length
    mid = len(test) // 2
    window = torch.as_tensor(test[mid - t: mid])[None]
    gen = prospective(aid, diff, n, window=window, generator=torch.Generator().manual_seed(0))[0].numpy()
    out = {"steps": steps, "frames": n,
           "aid_consecutive_r": float(np.mean([_corr(gen[i], gen[i + 1]) for i in range(n - 1)])),
           "aid_first_vs_last_real_r": _corr(gen[0], test[mid - 1]),
           "data_consecutive_r": float(np.mean([_corr(test[mid + i], test[mid + i + 1])
                                                for i in range(n - 1)]))}
    if guide is not None:
        g = torch.Generator().manual_seed(0)
        shape = (n, *test.shape[1:])
        samples = reverse_loop(lambda x, tt: guide(x, tt), shape, diff, generator=g).numpy()
        out["guide_consecutive_r"] = float(np.mean([_corr(samples[i], samples[i + 1])
                                                    for i in range(n - 1)]))
    return out


def _train_guide(gcfg, train, out, tcfg):
    """The same main path trained on single frames (the reference's "Guide" baseline)."""
    from srprep.models.aid import save_checkpoint
    from srprep.models.aid.diffusion import EMA, GaussianDiffusion
    from srprep.models.aid.network import CausalUNet

    torch.manual_seed(tcfg.seed)
    net = CausalUNet(gcfg)
    frames = torch.as_tensor(np.concatenate(train))
    diff = GaussianDiffusion.linear()
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr)
    ema = EMA(net, tcfg.ema_rate)
    g = torch.Generator().manual_seed(tcfg.seed)
    t0 = time.time()
    per = tcfg.batch_size * gcfg.seq_length             # same frames per step as AID
    steps = 0
    for steps in range(1, tcfg.steps + 1):
        idx = torch.randint(0, len(frames), (per,), generator=g)
        x0 = frames[idx]
        if torch.rand((), generator=g) < 0.5:
            x0 = x0.flip(-1)
        t = torch.randint(0, 1000, (per,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        xt = diff.q_sample(x0, t, noise)
        loss = diff.hybrid_loss(net(xt, t), x0, xt, t, noise)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update(net)
        if tcfg.max_minutes and time.time() - t0 > 60 * tcfg.max_minutes:
            break
    ema.copy_to(net)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(net, out / "aid.pt")
    return {"seconds": round(time.time() - t0, 1), "steps": steps}


if __name__ == "__main__":
    main()
