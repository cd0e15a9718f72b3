"""AID causal U-Net: released structures, checkpoint round trips, equality with an
independent functional transcription of the reference, causality and sampling modes."""
import re

import pytest
import torch

from srprep.core.errors import ConfigurationError
from srprep.models.aid import (AIDConfig, CausalUNet, build, from_official_checkpoint,
                               released_config, save_checkpoint)
from srprep.models.aid.configs import RELEASED, config_from_reference

from .aid_reference import Ref
from tests.helpers import SHARED, needs_files

SHAPES = SHARED / "specs/aid_state_dict_shapes.txt"
COUNTS = {"fastmri_320_cplx": 139_201_540, "cardiac_latent": 26_056_582,
          "3d-abide": 26_955_010, "normal_fastmri_320_cplx": 121_022_404}


def _randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial weights: the zero-initialised output convolutions would hide everything."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return net.eval()


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_released_parameter_counts(name):
    net = build(name, device="meta")
    assert sum(p.numel() for p in net.parameters()) == COUNTS[name]


@needs_files(SHAPES, what="the published key/shape listing (../shared/specs)")
def test_released_keys_and_shapes_match_the_listing():
    text = SHAPES.read_text()
    listing = {}
    for block in re.split(r"^##### ", text, flags=re.M)[1:]:
        head, *lines = block.strip().split("\n")
        listing[head.split(":")[0]] = {ln.split("\t")[0]: tuple(eval(ln.split("\t")[1]))
                                       for ln in lines if "\t" in ln}
    assert len(listing) == 7
    for head, want in listing.items():
        name = head.split(" ")[0]
        kw = {}
        if "concat_cond=False" in head:
            kw["concat_cond"] = False
        net = build(released_config(name, **kw), device="meta")
        got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        assert got == want, head


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_official_format_round_trip(name, tmp_path):
    """A file in the release's format (plain state_dict) loads strictly by config name and
    by the reference's argument dict, tensor for tensor."""
    torch.manual_seed(0)
    net = build(name)
    path = tmp_path / f"{name}.pt"
    torch.save(net.state_dict(), path)          # exactly how the reference saves
    args, _ = RELEASED[name]
    for cfg in (name, dict(args)):
        back = from_official_checkpoint(path, cfg)
        sd, sd2 = net.state_dict(), back.state_dict()
        assert list(sd) == list(sd2)
        assert all(torch.equal(sd[k], sd2[k]) for k in sd)
    del net, back


def test_wrong_config_is_a_one_line_error(tmp_path):
    net = build(dict(image_size=32, in_channels=1, num_channels=32, channel_mult="1,2",
                     attention_resolutions="16", seq_length=3))
    path = tmp_path / "m.pt"
    torch.save(net.state_dict(), path)
    with pytest.raises(ConfigurationError, match="m.pt: .*(missing|mismatch)"):
        from_official_checkpoint(path, dict(image_size=32, in_channels=2, num_channels=32,
                                            channel_mult="1,2", attention_resolutions="16"))
    with pytest.raises(ConfigurationError, match="unknown AID configuration"):
        from_official_checkpoint(path, "nonexistent")


TINY = [
    dict(image_size=32, in_channels=2, num_channels=32, channel_mult="1,2,2",
         attention_resolutions="16,8", seq_length=5),
    dict(image_size=32, in_channels=1, num_channels=64, channel_mult="0.5,1,2",
         attention_resolutions="8", seq_length=4),
    dict(image_size=16, in_channels=3, num_channels=32, channel_mult="1,2",
         attention_resolutions="8", seq_length=4, complicated_x0=True, num_complicated=1),
]


@pytest.mark.parametrize("args", TINY)
def test_training_mode_equals_the_functional_reference(args):
    net = _randomise(build(args))
    ref = Ref(net.state_dict(), net.config)
    torch.manual_seed(1)
    c, s, t = net.config.in_channels, net.config.image_size, net.config.seq_length
    x = torch.randn(2, t, c, s, 2 * s)
    ts = torch.tensor([3, 700])
    with torch.no_grad():
        out = net(x, ts)
        want = ref.training(x, ts)
    assert out.shape == (2, t, 2 * c, s, s)
    assert want.abs().mean() > 1e-2                         # not a trivial comparison
    torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("args", TINY[:2])
def test_released_sampling_attention_equals_the_functional_reference(args):
    net = _randomise(build(args))
    ref = Ref(net.state_dict(), net.config)
    torch.manual_seed(2)
    c, s, t = net.config.in_channels, net.config.image_size, net.config.seq_length
    window, x, ts = torch.randn(1, t, c, s, s), torch.randn(1, c, s, s), torch.tensor([250])
    with torch.no_grad():
        for idx in (-1, 1):
            got = net.forward_sample(window, x, ts, idx=idx, released_attention=True)
            want = ref.sampling(window, x, ts, idx=idx)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            # the release sees frame idx only
            other = window.clone()
            keep = idx % t
            other[:, [i for i in range(t) if i != keep]] = torch.randn(1, t - 1, c, s, s)
            again = net.forward_sample(other, x, ts, idx=idx, released_attention=True)
            assert torch.equal(again, got)


def test_causality_in_training_mode():
    net = _randomise(build(TINY[0]))
    torch.manual_seed(3)
    t, s = 5, 32
    x = torch.randn(1, t, 2, s, 2 * s)
    ts = torch.tensor([500])
    with torch.no_grad():
        base = net(x, ts)
        for k in (1, 3):
            y = x.clone()
            y[:, k, ..., :s] += torch.randn(2, s, s)         # conditioning frame k
            out = net(y, ts)
            assert torch.equal(out[:, :k], base[:, :k])      # exactly: positions < k
            assert (out[:, k:] - base[:, k:]).abs().amax() > 1e-4


def test_default_sampling_mode_matches_training_mode_at_every_position():
    """Fixed attention: forward_sample at slot idx == training output at position idx;
    the released attention differs (and the difference depends on earlier frames)."""
    net = _randomise(build(TINY[0]))
    torch.manual_seed(4)
    t, s = 5, 32
    window, noisy = torch.randn(1, t, 2, s, s), torch.randn(1, t, 2, s, s)
    ts = torch.tensor([123])
    with torch.no_grad():
        train = net(torch.cat([window, noisy], dim=-1), ts)
        for idx in range(t):
            got = net.forward_sample(window, noisy[:, idx], ts, idx=idx)
            torch.testing.assert_close(got, train[:, idx], rtol=1e-5, atol=1e-5)
            # a shorter window ending at idx gives the same result (causal)
            short = net.forward_sample(window[:, :idx + 1], noisy[:, idx], ts, idx=-1)
            torch.testing.assert_close(short, got, rtol=1e-5, atol=1e-5)
        rel = net.forward_sample(window, noisy[:, -1], ts, idx=-1, released_attention=True)
        assert (rel - train[:, -1]).abs().amax() > 1e-5


def test_plain_unet_and_stage_modes():
    guide = _randomise(build(dict(image_size=32, in_channels=2, num_channels=32,
                                  channel_mult="1,2", attention_resolutions="16", causal=False)))
    assert not hasattr(guide, "x0_blocks")
    out = guide(torch.randn(3, 2, 32, 32), torch.tensor([1, 2, 3]))
    assert out.shape == (3, 4, 32, 32)
    two = build(dict(TINY[0], concat_cond=False))
    assert any(k.startswith("connectors.") for k in two.state_dict())
    x = torch.randn(1, 5, 2, 32, 64)
    for stage in (0, 1, 2):
        assert two(x, torch.tensor([10]), multistage=stage).shape == (1, 5, 4, 32, 32)
    with pytest.raises(ValueError, match="one stage"):
        build(TINY[0])(x, torch.tensor([10]), multistage=1)


def test_srprep_checkpoint_with_sidecar(tmp_path):
    net = _randomise(build(TINY[1]))
    save_checkpoint(net, tmp_path / "aid.pt", extra={"trained_on": "test"})
    back = from_official_checkpoint(tmp_path / "aid.pt")
    assert back.config == net.config
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), back.state_dict().values()))


def test_reference_argument_translation():
    cfg = config_from_reference(dict(image_size=128, in_channels=3, latent=True,
                                     num_channels=64, attention_resolutions="16,8,4"))
    assert (cfg.image_size, cfg.channel_mult, cfg.attention_ds) == (32, (1, 2, 2, 4), (2, 4, 8))
    assert released_config("fastmri_320_cplx").attention_ds == (16, 32)
    assert isinstance(CausalUNet(AIDConfig.from_dict(cfg.to_dict())), CausalUNet)
    with pytest.raises(ConfigurationError):
        config_from_reference(dict(image_size=48, in_channels=1))
