"""AID diffusion (respacing, losses, EMA), samplers, data consistency and training."""
import json

import numpy as np
import pytest
import torch

from srprep.core import kspace as K
from srprep.models.aid import build, from_official_checkpoint
from srprep.models.aid.diffusion import EMA, GaussianDiffusion, space_timesteps
from srprep.models.aid.recon import DCSettings, _Operator, reconstruct_slice, reconstruct_volume
from srprep.models.aid.sampling import prospective, retrospective
from srprep.models.aid.train import AIDTrainConfig, tiny_config, train_aid

TINY2 = dict(image_size=16, in_channels=2, num_channels=32, channel_mult="1,2",
             attention_resolutions="8", seq_length=3)


def test_respacing_keeps_the_alpha_bars():
    base = GaussianDiffusion.linear(1000)
    assert np.isclose(base.betas[0], 1e-4) and np.isclose(base.betas[-1], 0.02)
    for spec, n in ((50, 50), ("250", 250), ("ddim50", 50), ("10,5", 15)):
        kept = space_timesteps(1000, spec)
        assert len(kept) == n and kept[0] == 0
        sp = base.respaced(spec)
        assert sp.num_timesteps == n
        np.testing.assert_allclose(sp.alphas_cumprod, base.alphas_cumprod[kept], rtol=1e-12)
        assert list(sp.timestep_map) == kept
    assert space_timesteps(1000, 50)[-1] == 999


def test_x0_prediction_and_hybrid_loss():
    d = GaussianDiffusion.linear(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 1, 8, 8, generator=g) * 2 - 1
    t = torch.tensor([0, 10, 500, 999])
    eps = torch.randn(x0.shape, generator=g)
    xt = d.q_sample(x0, t, eps)
    torch.testing.assert_close(d.predict_x0(xt, t, eps), x0, rtol=1e-4, atol=1e-4)
    # perfect eps, the variance at the lower end (true posterior variance): mse 0, vb ~ 0
    out = torch.cat([eps, -torch.ones_like(eps)], dim=2)
    terms = d.hybrid_loss(out, x0, xt, t, eps, channel_dim=2)
    assert torch.all(terms["mse"] == 0)
    assert torch.all(terms["vb"][1:] < 1e-4) and terms["vb"][0] > 0      # t=0: decoder NLL
    wrong = d.hybrid_loss(torch.cat([eps + 0.5, torch.zeros_like(eps)], 2), x0, xt, t, eps,
                          channel_dim=2)
    assert torch.allclose(wrong["mse"], torch.full((4,), 0.25)) and torch.all(wrong["vb"] > 0)


def test_ema_warmup_and_copy():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, 0.9999)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)                                  # rate min(0.9999, 2/11)
    expected = net.weight - 1.0 * (2 / 11)
    torch.testing.assert_close(ema.shadow["weight"], expected)
    other = torch.nn.Linear(2, 2)
    ema.copy_to(other)
    assert torch.equal(other.weight, ema.shadow["weight"])


def test_single_coil_data_consistency_is_exact_on_sampled_lines():
    """Unfolding set-up (A = P F): after the last DC step the sampled lines equal c*y/s."""
    torch.manual_seed(0)
    net = build(TINY2).eval()
    d = GaussianDiffusion.linear(1000, respacing=5)
    rng = np.random.default_rng(0)
    img = (rng.standard_normal((16, 16)) + 1j * rng.standard_normal((16, 16))).astype(np.complex64)
    mask = K.line_mask(16, 2)
    y = torch.as_tensor(K.forward(img, None, mask), dtype=torch.complex64)
    op = _Operator(torch.as_tensor(mask, dtype=torch.float32), None)
    x = reconstruct_slice(net, d, y, op, None, DCSettings(steps=5, cond_iters=1, scale=0.5),
                          generator=torch.Generator().manual_seed(0))
    z = torch.complex(x[0, 0], x[0, 1])
    k = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(z), norm="ortho"))
    torch.testing.assert_close(k[:, torch.as_tensor(mask)], 0.5 * y[0][:, torch.as_tensor(mask)],
                               rtol=1e-4, atol=1e-5)


def test_volume_reconstruction_units_and_window():
    """Outputs come back in k-space units whatever c is; enough Landweber steps make the
    multi-coil data residual vanish; released and fixed attention both run."""
    torch.manual_seed(0)
    net = build(TINY2).eval()
    rng = np.random.default_rng(1)
    imgs = (rng.random((4, 16, 16)) * 100).astype(np.complex64)
    maps = K.birdcage_maps(4, (16, 16))
    mask = K.line_mask(16, 2, acs=4)
    ks = np.stack([K.forward(i, maps, mask) for i in imgs])
    mps = np.broadcast_to(maps, ks.shape)
    def residual(rec):
        return np.linalg.norm(np.stack([K.forward(r, maps, mask) for r in rec]) - ks) / np.linalg.norm(ks)

    for released, scale in ((False, 0.3), (True, 1.0)):
        rec = reconstruct_volume(net, ks, mask, mps, DCSettings(steps=4, cond_iters=64, scale=scale,
                                                                released_attention=released))
        assert rec.shape == (4, 16, 16) and np.iscomplexobj(rec)
        assert residual(rec) < 1e-4
        assert abs(np.abs(rec).mean() / np.abs(imgs).mean() - 1) < 0.01     # input units
    few = reconstruct_volume(net, ks, mask, mps, DCSettings(steps=4, cond_iters=4))
    more = reconstruct_volume(net, ks, mask, mps, DCSettings(steps=4, cond_iters=16))
    assert residual(more) < 0.1 * residual(few)
    first = reconstruct_volume(net, ks, mask, mps, DCSettings(steps=2), first_image=imgs[0])
    np.testing.assert_allclose(first[0], imgs[0], rtol=1e-5)


def test_generation_modes_shapes_and_cold_start_conditioning():
    torch.manual_seed(0)
    net = build(TINY2).eval()
    d = GaussianDiffusion.linear(1000, respacing=3)
    frames = torch.rand(1, 3, 2, 16, 16)
    assert retrospective(net, d, frames).shape == (1, 3, 2, 16, 16)
    gen = prospective(net, d, 4, window=frames, generator=torch.Generator().manual_seed(0))
    assert gen.shape == (1, 4, 2, 16, 16)
    calls = []
    orig = net.forward_sample

    def spy(window, x, t, **kw):
        calls.append(window.clone())
        return orig(window, x, t, **kw)

    net.forward_sample = spy
    prospective(net, d, 3, shape=(1, 2, 16, 16), generator=torch.Generator().manual_seed(1))
    per_frame = [calls[i * 3] for i in range(3)]        # 3 reverse steps per frame
    assert per_frame[0].abs().max() == 0                 # frame 0: the zero start frame
    assert per_frame[1].shape[1] == 1 and per_frame[1].abs().max() > 0
    assert per_frame[2].shape[1] == 2                    # frame 2 sees frames 0 and 1


def test_lightning_training_one_and_two_stage(tmp_path):
    cfg = tiny_config(size=16, seq_length=3)
    vols = [np.random.default_rng(i).random((8, 1, 16, 16)).astype(np.float32) for i in range(2)]
    rep = train_aid(cfg, vols, tmp_path / "one", AIDTrainConfig(steps=3, batch_size=2, lr=1e-3))
    assert rep["stages"] == [{"multistage": 0, "steps": 3}] and np.isfinite(rep["final_loss"])
    net = from_official_checkpoint(tmp_path / "one" / "aid.pt")
    assert net.config == cfg
    raw = torch.load(tmp_path / "one" / "aid_raw.pt", weights_only=True)
    assert any(not torch.equal(raw[k], v) for k, v in net.state_dict().items())   # EMA != raw
    assert json.loads((tmp_path / "one" / "training_report.json").read_text())["sequences"] == 10

    two_cfg = tiny_config(size=16, seq_length=3, concat_cond=False)
    with pytest.raises(ValueError, match="concat_cond=False"):
        train_aid(cfg, vols, tmp_path / "bad", AIDTrainConfig(steps=2, stages=2))
    rep2 = train_aid(two_cfg, vols, tmp_path / "two",
                     AIDTrainConfig(steps=4, batch_size=2, lr=1e-3, stages=2))
    assert rep2["stages"] == [{"multistage": 1, "steps": 2}, {"multistage": 2, "steps": 2}]


@pytest.mark.parametrize("stage, trained", [(1, {"input_blocks", "middle_block", "output_blocks",
                                                  "time_embed", "out"}),
                                             (2, {"x0_blocks", "connectors"})])
def test_two_stage_training_updates_only_its_part(stage, trained):
    """Stage 1: the main U-Net alone (no conditioning branch); stage 2: main path frozen."""
    from srprep.models.aid.train import AIDModule

    torch.manual_seed(0)
    net = build(tiny_config(size=16, seq_length=3, concat_cond=False))
    for p in net.parameters():                 # leave no zero-initialised dead ends
        p.data.add_(0.01 * torch.randn_like(p))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module = AIDModule(net, AIDTrainConfig(lr=1e-2), stage)
    module.log = lambda *a, **k: None
    opt = module.configure_optimizers()
    loss = module.training_step(torch.rand(2, 4, 1, 16, 16), 0)
    loss.backward()
    opt.step()
    changed = {k.split(".")[0] for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == trained


def test_sampling_workflow_cold_and_warm(tmp_path):
    """The Pydra sampling workflow: one sequence per seed, cold and warm start."""
    from srprep.bids_app import engine
    from srprep.models.aid import save_checkpoint
    from srprep.pipelines.aid import AIDSamplingWorkflow

    torch.manual_seed(0)
    save_checkpoint(build(TINY2), tmp_path / "aid.pt")
    np.save(tmp_path / "ctx.npy", np.random.default_rng(0).random((2, 2, 16, 16)).astype(np.float32))
    cold = engine.run(AIDSamplingWorkflow(weights=tmp_path / "aid.pt", n_frames=2, steps=2,
                                          seeds=[0, 1]), tmp_path / "c1", worker="debug")
    assert cold.ok, cold.error
    a, b = (np.load(f) for f in cold.outputs.samples)
    assert a.shape == (2, 2, 16, 16) and not np.allclose(a, b)
    assert [i["start"] for i in cold.outputs.info] == ["cold", "cold"]
    warm = engine.run(AIDSamplingWorkflow(weights=tmp_path / "aid.pt", n_frames=3, steps=2,
                                          context=tmp_path / "ctx.npy", mode="retrospective"),
                      tmp_path / "c2", worker="debug")
    assert warm.ok, warm.error
    assert np.load(warm.outputs.samples[0]).shape == (2, 2, 16, 16)


def test_context_dropout_and_noise_options():
    """dropout 1 = all-zero context exactly; noise changes the loss only through the context."""
    torch.manual_seed(0)
    net = build(TINY2).eval()
    with torch.no_grad():
        for p in net.parameters():             # the zero-initialised output hides the input
            p.add_(0.05 * torch.randn_like(p))
    d = GaussianDiffusion.linear(1000)
    seq = torch.rand(2, 4, 2, 16, 16)
    t, noise = torch.tensor([10, 600]), torch.randn(2, 3, 2, 16, 16)
    with torch.no_grad():
        a = d.training_losses_temporal(net, seq, t=t, noise=noise, context_dropout=1.0,
                                       generator=torch.Generator().manual_seed(0))["loss"]
        # targets are frames 1..T: rebuild the zero-context call by hand
        xt = d.q_sample(seq[:, 1:], t, noise)
        out = net(torch.cat([torch.zeros_like(seq[:, :-1]), xt], -1), t)
        b = d.hybrid_loss(out, seq[:, 1:], xt, t, noise, channel_dim=2)["loss"]
        torch.testing.assert_close(a, b)
        plain = d.training_losses_temporal(net, seq, t=t, noise=noise)["loss"]
        noisy = d.training_losses_temporal(net, seq, t=t, noise=noise, context_noise=0.5,
                                           generator=torch.Generator().manual_seed(0))["loss"]
        assert not torch.allclose(plain, noisy)


def test_prior_size_must_match_the_kspace():
    """A 16x16 prior on 32x32 k-space ran silently before; now a one-line input error."""
    from srprep.core.errors import InputError

    net = build(TINY2).eval()
    ks = np.zeros((2, 1, 32, 32), np.complex64)
    with pytest.raises(InputError, match="trained on 16x16 images but the k-space gives 32x32"):
        reconstruct_volume(net, ks, np.ones(32, bool), None, DCSettings(steps=2))
