"""AID — autoregressive image diffusion prior (Luo, Huang & Uecker, NeurIPS 2024).

* :mod:`.network`   — the causal U-Net (state_dict-compatible with the four releases);
* :mod:`.configs`   — released configurations, reference arguments -> :class:`AIDConfig`;
* :mod:`.diffusion` — Gaussian diffusion (linear betas, eps prediction, learned-range
  variance, hybrid loss, respacing) and EMA;
* :mod:`.sampling`  — retrospective/prospective, warm/cold-start sequence generation;
* :mod:`.recon`     — posterior sampling for undersampled multi-coil k-space;
* :mod:`.train`     — Lightning training (one- and two-stage) on slice sequences.

Deviations from the reference (documented where they live): full causal attention in
sampling mode (``released_attention=True`` restores the release), cold start conditions on
the frames already generated, windows shorter than ``seq_length`` are allowed, training
sequences never straddle two volumes, the data-consistency step of a one-channel (real)
prior keeps the real part only.  Refused instead of run silently: k-space whose matrix
differs from the prior's image size, and the latent-space ``cardiac_latent`` release
(srprep has no decoder for its VQ autoencoder).  With the fully sampled first slice
(``--first-slice full``) slice 0 is left out of every method's PSNR/NRMSE, as in the
reference's evaluation; the random mask draws the reference's own lines (legacy NumPy
generator, seed 1234).
"""
from __future__ import annotations

import os

import torch

from .configs import RELEASED, config_from_reference, released_config
from .network import AIDConfig, CausalUNet

__all__ = ["AIDConfig", "CausalUNet", "RELEASED", "build", "config_from_reference",
           "from_official_checkpoint", "released_config", "save_checkpoint"]


def _config(config) -> AIDConfig:
    if isinstance(config, AIDConfig):
        return config
    if isinstance(config, str):
        return released_config(config)
    if isinstance(config, dict):
        if "model_channels" in config and "attention_ds" in config:
            return AIDConfig.from_dict(config)
        return config_from_reference(config)
    raise TypeError(f"config must be a released name, a dict or an AIDConfig, not {type(config).__name__}")


def build(config, *, device: str | torch.device = "cpu") -> CausalUNet:
    """Build a network from a released name, reference arguments or an :class:`AIDConfig`."""
    with torch.device(device):
        return CausalUNet(_config(config))


def from_official_checkpoint(path: str | os.PathLike, config=None, *,
                             map_location: str = "cpu") -> CausalUNet:
    """Load a released AID (or guided-diffusion "Guide") checkpoint strictly.

    ``config``: a released model's name (``fastmri_320_cplx``, ``cardiac_latent``,
    ``3d-abide``, ``normal_fastmri_320_cplx``), a dict of the reference's model arguments,
    or None for a srprep-trained file with its ``.json`` sidecar. The state dict is read
    with ``weights_only=True``; a ``{"model": ...}``/``{"state_dict": ...}`` wrapper or a
    ``module.`` prefix (multi-GPU saves) is unwrapped. Returns the network in eval mode."""
    from pathlib import Path

    from srprep.models.weights import check_structure, load_state_dict

    state = load_state_dict(path)
    for key in ("ema", "model", "state_dict"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
            break
    state = {k.removeprefix("module.").removeprefix("model."): v for k, v in state.items()}
    if config is None:
        side = Path(path).with_suffix(".json")
        if not side.is_file():
            raise ValueError(f"{Path(path).name}: give config= (a released name or the model "
                             "arguments); no .json sidecar beside the file")
        import json
        config = json.loads(side.read_text())["config"]
    cfg = _config(config)
    check_structure(state, expected_shapes(cfg), what=Path(path).name)
    net = CausalUNet(cfg)
    net.load_state_dict(state, strict=True)
    return net.to(map_location).eval()


def expected_shapes(config) -> dict:
    """{key: shape} of a configuration (built on the meta device, no memory)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in CausalUNet(_config(config)).state_dict().items()}


def expected_shapes_brain() -> dict:
    return expected_shapes("fastmri_320_cplx")


def expected_shapes_guide() -> dict:
    return expected_shapes("normal_fastmri_320_cplx")


def expected_shapes_cardiac() -> dict:
    return expected_shapes("cardiac_latent")


def expected_shapes_abide() -> dict:
    return expected_shapes("3d-abide")


def save_checkpoint(net: CausalUNet, path: str | os.PathLike, *, extra: dict | None = None) -> None:
    """Plain state_dict as the release (loads into the reference), plus a ``.json`` sidecar
    with the architecture so :func:`from_official_checkpoint` needs no config."""
    from pathlib import Path

    from srprep.core.atomic import atomic_path, write_json

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    write_json(Path(path).with_suffix(".json"), {"config": net.config.to_dict(), **(extra or {})})
