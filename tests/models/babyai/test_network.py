"""BABY-AI network: official structure, checkpoint round trips, reference equality."""
import numpy as np
import pytest
import torch

from srprep.core.errors import ConfigurationError
from srprep.models import babyai


def test_official_structure_matches_the_released_checkpoint():
    shapes = babyai.expected_shapes()
    assert len(shapes) == 221
    assert sum(int(np.prod(s)) for s in shapes.values()) == 379_053_826
    assert shapes["model.0.conv.unit0.conv.weight"] == (32, 2, 3, 3, 3)
    assert shapes["model.0.conv.unit9.adn.A.weight"] == (1,)
    bottleneck = "model.1.submodule.1.submodule.1.submodule.1.submodule.1.submodule"
    assert shapes[f"{bottleneck}.residual.weight"] == (1024, 512, 1, 1, 1)
    assert shapes["model.1.submodule.1.submodule.1.submodule.1.submodule.2.0.conv.weight"] == (1536, 256, 3, 3, 3)
    assert shapes["model.1.submodule.2.0.conv.weight"] == (128, 32, 3, 3, 3)
    assert babyai.infer_config({k: torch.empty(v, device="meta") for k, v in shapes.items()}) == babyai.OFFICIAL


def _reference_unet(channels, units):
    from monai.networks.nets import UNet   # built independently of srprep's builder

    return UNet(spatial_dims=3, in_channels=2, out_channels=1, channels=channels,
                strides=(2,) * (len(channels) - 1), num_res_units=units, norm=None)


def test_small_checkpoint_round_trip_is_exact(tmp_path):
    torch.manual_seed(0)
    ref = _reference_unet((8, 16, 32, 64), 2).eval()
    torch.save(ref.state_dict(), tmp_path / "w.pth")          # the reference's format
    net = babyai.from_official_checkpoint(tmp_path / "w.pth")
    for k, v in ref.state_dict().items():
        assert torch.equal(net.state_dict()[k], v)
    babyai.save_official_checkpoint(net, tmp_path / "again.pth")
    again = torch.load(tmp_path / "again.pth", weights_only=True)
    assert list(again) == list(ref.state_dict()) and not (tmp_path / "again.json").exists()
    x = torch.randn(1, 2, 32, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x), rtol=0, atol=1e-6)


def test_residual_models_carry_a_sidecar(tmp_path):
    net = babyai.build_network(**babyai.SMALL, residual=True)
    babyai.save_official_checkpoint(net, tmp_path / "r.pth")
    assert (tmp_path / "r.json").is_file()
    loaded = babyai.from_official_checkpoint(tmp_path / "r.pth")
    assert loaded.residual
    x = torch.randn(1, 2, 32, 32, 32)
    with torch.no_grad():
        plain = babyai.build_network(**babyai.SMALL)
        plain.load_state_dict(loaded.state_dict())
        torch.testing.assert_close(loaded(x), plain(x) + x[:, 1:2])


def test_wrong_checkpoint_is_refused(tmp_path):
    state = _reference_unet((8, 16, 32, 64), 2).state_dict()
    state["model.0.conv.unit0.conv.weight"] = torch.zeros(8, 3, 3, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ConfigurationError, match="shape mismatch"):
        babyai.from_official_checkpoint(tmp_path / "bad.pth")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "junk.pth")
    with pytest.raises(ConfigurationError, match="not a BABY-AI .MONAI UNet. state_dict: no "
                                                 "model.0.conv.unit0.conv.weight .keys: weights"):
        babyai.from_official_checkpoint(tmp_path / "junk.pth")
    torch.save({k: v for k, v in state.items() if k.startswith("model.0.")}, tmp_path / "half.pth")
    with pytest.raises(ConfigurationError, match="no model.1.submodule.conv.unit0.conv.weight"):
        babyai.from_official_checkpoint(tmp_path / "half.pth")


@pytest.mark.slow
def test_official_configuration_equals_monai_reference(tmp_path):
    """Released configuration (379 M parameters): official-format file -> srprep network
    gives the reference network's output within 1e-5."""
    torch.manual_seed(1)
    ref = _reference_unet((32, 64, 128, 256, 512, 1024), 10).eval()
    torch.save(ref.state_dict(), tmp_path / "pretrained_weights.pth")
    net = babyai.from_official_checkpoint(tmp_path / "pretrained_weights.pth")
    x = torch.randn(1, 2, 32, 32, 32)
    with torch.no_grad():
        expected = ref(x)
        del ref
        got = net(x)
    assert got.shape == (1, 1, 32, 32, 32)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
