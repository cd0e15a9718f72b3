"""BABY-AI: residual U-Net mapping [isotropic T1w, interpolated thick-slice T2w] to an
isotropic T2w (Lennartsson, Lund University; ``almalennartsson-dev/baby-ai-local``).

The network is MONAI's ``UNet`` with the released configuration (channels 32..1024,
five stride-2 levels, 10 residual sub-units per encoder block, no normalisation), so the
published ``pretrained_weights.pth`` (a raw state_dict of 221 tensors, 379 M parameters)
loads unchanged.  Inputs are (B, 2, D, H, W) with channels [T1w, T2w]; every spatial
size must be a multiple of 32.

Deviations from the reference code (documented, fixed on purpose):

* **Multi-file naming**: the reference inference script reuses its loop variable for the
  patch loop, so every output is named after the last patch index (IndexError or a
  wrong name with several subjects).  Outputs here are named from BIDS entities.
* **Glob mismatch**: the reference training script looks for ``*T2w_LR.nii.gz`` while its
  synthesis script writes ``*_T2w_LR<k>.nii.gz``; training pairs are built here from the
  synthesis task's outputs directly.
* **Silent CPU fallback**: the reference trains on CUDA only when ``SLURM_GPUS_ON_NODE``
  is set and silently falls back to the CPU otherwise; the device here comes from
  ``--device`` and ``cuda`` without a GPU is an error.
* **Output**: the reference writes the padded 192x224x192 volume in normalised units;
  srprep crops back to the atlas grid, restores the T2w's intensity scale and resamples
  to the subject's native T1w grid.
"""
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
                  num_res_units: int = OFFICIAL["num_res_units"]) -> nn.Module:
    """The BABY-AI U-Net (MONAI ``UNet``; the defaults give the released network)."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=3, in_channels=2, out_channels=1, channels=tuple(channels),
                strides=(2,) * (len(channels) - 1), num_res_units=num_res_units, norm=None)


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
    channels.append(int(state[f"{bottleneck}.conv.unit0.conv.weight"].shape[0]))
    units = sum(1 for k in state if k.startswith("model.0.conv.unit") and k.endswith("conv.weight"))
    return {"channels": tuple(channels), "num_res_units": units}


def from_official_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> nn.Module:
    """Load ``pretrained_weights.pth`` (or a checkpoint of another size saved the same way)
    strictly, with ``weights_only=True``; returns the network in eval mode."""
    from .weights import check_structure, load_state_dict

    state = load_state_dict(path)
    config = infer_config(state)
    check_structure(state, expected_shapes(**config), what=os.path.basename(os.fspath(path)))
    net = build_network(**config)
    net.load_state_dict(state, strict=True)
    return net.to(map_location).eval()


def save_official_checkpoint(net: nn.Module, path: str | os.PathLike) -> None:
    """Write a raw state_dict exactly as the reference does (no wrapper, no prefix)."""
    from srprep.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
