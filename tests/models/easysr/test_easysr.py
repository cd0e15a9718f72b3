"""EasySR networks: official checkpoints, a functional reference written from the spec,
state_dict round trips, size-agnostic discriminator, tiled inference."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from srprep.models import easysr
from srprep.models.weights import load_state_dict
from tests.helpers import SHARED, needs_files

OFFICIAL_DIR = Path(os.environ.get("SRPREP_EASYSR_WEIGHTS",
                                   SHARED / "weights/easysr"))
OFFICIAL = {n: OFFICIAL_DIR / f"{n}.pth" for n in
            ("G_latest_T1", "G_latest_Mixed", "D_latest_T1", "D_latest_Mixed")}
needs_official = needs_files(*OFFICIAL.values(), what="official EasySR checkpoints "
                             "(../shared/weights/easysr or $SRPREP_EASYSR_WEIGHTS)")


# ---- reference forward passes, written from the spec's tables (spec §1.1, §1.2) ----------
def _bn(x, s, p):
    return F.batch_norm(x, s[f"{p}.running_mean"], s[f"{p}.running_var"], s[f"{p}.weight"],
                        s[f"{p}.bias"], training=False, eps=1e-5)


def _conv(x, s, p, **kw):
    return F.conv3d(x, s[f"{p}.weight"], s[f"{p}.bias"], **kw)


def reference_generator(s, x, blocks=2):
    c1 = F.leaky_relu(_conv(x, s, "conv_block1.0", padding=1), 0.2)
    y = c1
    for i in range(1, blocks + 1):
        p = f"residual_block{i}.conv_block"
        b = F.leaky_relu(_bn(_conv(y, s, f"{p}.0", padding=1), s, f"{p}.1"), 0.2)
        y = y + _bn(_conv(b, s, f"{p}.3", padding=1), s, f"{p}.4")
    y = _bn(_conv(y, s, "conv_block2.0", padding=1), s, "conv_block2.1") + c1
    w = s["deup.deupblock.0.weight"]
    y = F.leaky_relu(F.conv_transpose3d(y, w, s["deup.deupblock.0.bias"], stride=w.shape[2:]), 0.2)
    return _conv(y, s, "conv3", padding=1)


def reference_discriminator(s, x):
    for i in range(1, 5):
        x = F.leaky_relu(_bn(_conv(x, s, f"conv{i}.0", stride=2, padding=1), s, f"conv{i}.1"), 0.2)
    x = _conv(x, s, "conv5", stride=1, padding=1)
    return torch.sigmoid(F.linear(x.flatten(1), s["fc.weight"], s["fc.bias"]))


def _randomise_bn(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.eval()


# ---- structure ------------------------------------------------------------------------------
def test_release_structure_matches_the_spec():
    g = easysr.expected_generator_shapes()
    d = easysr.expected_discriminator_shapes()
    assert len(g) == 41 and len(d) == 32
    assert g["deup.deupblock.0.weight"] == (32, 32, 1, 3, 1)
    assert g["conv_block1.0.weight"] == (32, 1, 3, 3, 3) and g["conv3.weight"] == (1, 32, 3, 3, 3)
    assert d["fc.weight"] == (1, 12936) and d["conv5.weight"] == (24, 24, 4, 4, 4)
    gen, disc = easysr.ResnetGenerator(), easysr.PatchDiscriminator()
    assert sum(p.numel() for p in gen.parameters()) == 143_585
    assert sum(p.numel() for p in disc.parameters()) == 74_344


@pytest.mark.parametrize("factor,axis", [(3, 1), (2, 0), (4, 2)])
def test_generator_equals_reference_forward(factor, axis):
    torch.manual_seed(factor)
    net = _randomise_bn(easysr.ResnetGenerator(ngf=8, factor=factor, axis=axis))
    x = torch.rand(2, 1, 6, 5, 7) * 255
    with torch.no_grad():
        out = net(x)
        ref = reference_generator(net.state_dict(), x)
    shape = [2, 1, 6, 5, 7]
    shape[2 + axis] *= factor
    assert list(out.shape) == shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-4)


def test_old_x6_generator_layout_loads(tmp_path):
    old = easysr.ResnetGenerator(ngf=16, n_residual_blocks=4, factor=6, axis=1)
    state = old.state_dict()
    assert len(state) == 69 and state["deup.deupblock.0.weight"].shape == (16, 16, 1, 6, 1)
    torch.save(state, tmp_path / "G_latest.pth")
    net = easysr.from_official_checkpoint(tmp_path / "G_latest.pth")
    assert net.config == {"ngf": 16, "n_residual_blocks": 4, "factor": 6, "axis": 1}


# ---- official checkpoints -------------------------------------------------------------------
@needs_official
@pytest.mark.parametrize("name", ["G_latest_T1", "G_latest_Mixed"])
def test_official_generator_loads_strictly_and_matches_reference(name):
    state = load_state_dict(OFFICIAL[name])            # weights_only, CUDA-saved -> CPU
    assert set(state) == set(easysr.expected_generator_shapes())
    net = easysr.from_official_checkpoint(OFFICIAL[name])
    assert isinstance(net, easysr.ResnetGenerator) and not net.training
    assert net.config == {"ngf": 32, "n_residual_blocks": 2, "factor": 3, "axis": 1}
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k].cpu()), k
    torch.manual_seed(1)
    x = torch.rand(1, 1, 16, 8, 12) * 255
    with torch.no_grad():
        out, ref = net(x), reference_generator(state, x)
    assert out.shape == (1, 1, 16, 24, 12)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-3)
    assert float(out.std()) > 1.0          # a trained network, not a constant


@needs_official
@pytest.mark.parametrize("name", ["D_latest_T1", "D_latest_Mixed"])
def test_official_discriminator_loads_and_matches_reference(name):
    state = load_state_dict(OFFICIAL[name])
    net = easysr.from_official_checkpoint(OFFICIAL[name])
    assert isinstance(net, easysr.PatchDiscriminator) and net.fc_grid == (7, 11, 7)
    torch.manual_seed(2)
    x = torch.rand(1, 1, 128, 192, 128) * 255
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference_discriminator(state, x), rtol=1e-5, atol=1e-6)
        other = net(torch.rand(2, 1, 64, 64, 48) * 255)    # any size: pooled head
    assert other.shape == (2, 1) and bool(((other >= 0) & (other <= 1)).all())


@needs_official
def test_weights_registry_checks_the_official_structure(tmp_path):
    from srprep.models import weights

    for n, p in OFFICIAL.items():
        (tmp_path / "easysr").mkdir(exist_ok=True)
        (tmp_path / "easysr" / p.name).symlink_to(p)
    report = weights.verify("easysr-g-mixed", tmp_path)
    assert report["structure"] == "ok (41 tensors)"
    assert weights.verify("easysr-d-t1", tmp_path)["structure"] == "ok (32 tensors)"


# ---- round trips and srprep-trained models -------------------------------------------------
def test_state_dict_round_trip_with_sidecars(tmp_path):
    torch.manual_seed(0)
    g = _randomise_bn(easysr.ResidualGenerator(ngf=8, factor=2, axis=1))
    d = easysr.PatchDiscriminator(ndf=4, fc_grid=(2, 2, 2))
    easysr.save_checkpoint(g, tmp_path / "G_latest_Mine.pth", {"voxel_mm": 2.0})
    easysr.save_checkpoint(d, tmp_path / "D_latest_Mine.pth")
    raw = torch.load(tmp_path / "G_latest_Mine.pth", weights_only=True)
    assert type(raw) is dict and not any(k.startswith("module.") for k in raw)
    g2 = easysr.from_official_checkpoint(tmp_path / "G_latest_Mine.pth")
    d2 = easysr.from_official_checkpoint(tmp_path / "D_latest_Mine.pth")
    assert isinstance(g2, easysr.ResidualGenerator) and d2.fc_grid == (2, 2, 2)
    for a, b in ((g, g2), (d, d2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.rand(1, 1, 8, 6, 8)
    with torch.no_grad():
        torch.testing.assert_close(g.eval()(x), g2(x))
    assert easysr.model_info(tmp_path / "G_latest_Mine.pth")["voxel_mm"] == 2.0


def test_loader_rejects_other_state_dicts(tmp_path):
    torch.save({"weight": torch.zeros(3)}, tmp_path / "x.pth")
    with pytest.raises(ValueError, match="neither an EasySR generator"):
        easysr.from_official_checkpoint(tmp_path / "x.pth")


# ---- inference ------------------------------------------------------------------------------
def test_generate_tiles_exactly_and_moves_the_thick_axis():
    torch.manual_seed(3)
    net = _randomise_bn(easysr.ResnetGenerator(ngf=8, factor=3, axis=1))
    vol = np.random.default_rng(0).random((30, 20, 7)).astype(np.float32) * 255
    whole = easysr.generate(net, vol, axis=2)
    tiled = easysr.generate(net, vol, axis=2, max_voxels=30 * 7 * 2)     # slabs of 2 + halo
    assert whole.shape == (30, 20, 21)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-3)
    with torch.no_grad():   # by hand: thick axis 2 -> the generator's axis 1
        manual = net(torch.from_numpy(np.moveaxis(vol, 2, 1).copy())[None, None])[0, 0].numpy()
    np.testing.assert_allclose(whole, np.moveaxis(manual, 1, 2), rtol=1e-5, atol=1e-3)


@pytest.mark.gpu
def test_amp_training_epoch_on_gpu(tmp_path):
    from srprep.models.easysr.train import EasySRTrainConfig, Volume, train_easysr

    rng = np.random.default_rng(0)
    vols = []
    for i in range(2):
        p = tmp_path / f"v{i}.npy"
        np.save(p, rng.random((40, 40, 40), dtype=np.float32) * 1000)
        vols.append(Volume(p, f"sub-0{i}_T2w"))
    cfg = EasySRTrainConfig(factor=2, ngf=8, patch=32, patches_per_volume=4, epochs=2,
                            device="cuda", progress=False, adv_start=0)
    report = train_easysr(vols[:1], vols[1:], tmp_path / "out", cfg)
    assert len(report["history"]) == 2 and np.isfinite(report["history"][-1]["loss_g"])
    net = easysr.from_official_checkpoint(report["generator"])
    assert net.factor == 2 and isinstance(net, easysr.ResidualGenerator)
