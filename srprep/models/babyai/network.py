"""BABY-AI network: MONAI residual U-Net and the official checkpoint format.

See the package docstring (:mod:`srprep.models.babyai`) for the method and the
deviations from the reference code."""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

#: the released configuration
OFFICIAL = {"channels": (32, 64, 128, 256, 512, 1024), "num_res_units": 10}
#: a small configuration for CPU training and tests (documented in the README)
SMALL = {"channels": (8, 16, 32, 64), "num_res_units": 2}


def build_network(channels: Sequence[int] = OFFICIAL["channels"],
                  num_res_units: int = OFFICIAL["num_res_units"], residual: bool = False
                  ) -> nn.Module:
    """The BABY-AI U-Net (MONAI ``UNet``; the defaults give the released network).

    ``residual=True`` (srprep's option for new training, off for the released weights)
    adds the interpolated T2w input to the output, so the network learns only the
    correction: much faster convergence for small models.  The state_dict is unchanged.
    """
    from monai.networks.nets import UNet

    class BabyAIUNet(UNet):
        def forward(self, x):
            out = super().forward(x)
            return out + x[:, 1:2] if self.residual else out

    net = BabyAIUNet(spatial_dims=3, in_channels=2, out_channels=1, channels=tuple(channels),
                     strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, norm=None)
    net.residual = bool(residual)
    return net


def expected_shapes(channels: Sequence[int] = OFFICIAL["channels"],
                    num_res_units: int = OFFICIAL["num_res_units"]) -> dict[str, tuple]:
    """State-dict keys and shapes of a configuration (built on the meta device: no memory)."""
    with torch.device("meta"):
        net = build_network(channels, num_res_units)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def infer_config(state: dict) -> dict:
    """Channels and residual units of a BABY-AI/MONAI-UNet state_dict."""
    channels, depth = [], 0
    while True:
        enc = "model.0" if depth == 0 else "model.1." + "submodule.1." * (depth - 1) + "submodule.0"
        key = f"{enc}.conv.unit0.conv.weight"
        if key not in state:
            break
        channels.append(int(state[key].shape[0]))
        depth += 1
    bottleneck = "model.1." + "submodule.1." * (depth - 1) + "submodule"
    key = f"{bottleneck}.conv.unit0.conv.weight"
    if depth == 0 or key not in state:
        from srprep.core.errors import ConfigurationError

        absent = key if depth else "model.0.conv.unit0.conv.weight"
        raise ConfigurationError(f"not a BABY-AI (MONAI UNet) state_dict: no {absent} "
                                 f"(keys: {', '.join(sorted(state)[:3])}...)")
    channels.append(int(state[key].shape[0]))
    units = sum(1 for k in state if k.startswith("model.0.conv.unit") and k.endswith("conv.weight"))
    return {"channels": tuple(channels), "num_res_units": units}


def from_official_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> nn.Module:
    """Load ``pretrained_weights.pth`` (or a checkpoint of another size saved the same way)
    strictly, with ``weights_only=True``; returns the network in eval mode."""
    from ..weights import check_structure, load_state_dict

    state = load_state_dict(path)
    config = infer_config(state)
    check_structure(state, expected_shapes(**config), what=os.path.basename(os.fspath(path)))
    net = build_network(**config, residual=_sidecar(path).get("residual", False))
    net.load_state_dict(state, strict=True)
    return net.to(map_location).eval()


def _sidecar(path) -> dict:
    """Options of a srprep-trained model, kept beside its weights (``<name>.json``)."""
    import json
    from pathlib import Path

    side = Path(path).with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else {}


def save_official_checkpoint(net: nn.Module, path: str | os.PathLike) -> None:
    """Write a raw state_dict exactly as the reference does (no wrapper, no prefix); a
    residual model also gets a ``.json`` sidecar saying so."""
    from pathlib import Path

    from srprep.core.atomic import atomic_path, write_json

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    side = Path(path).with_suffix(".json")
    if getattr(net, "residual", False):
        write_json(side, {"residual": True, **infer_config(net.state_dict())})
    elif side.exists():
        side.unlink()
