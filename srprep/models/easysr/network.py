"""EasySR networks (generator, discriminator) and the release's checkpoint format.

See the package docstring (:mod:`srprep.models.easysr`) for the method and the
deviations from the reference code."""
from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

#: the released configuration (HEAD, Feb 2024)
OFFICIAL_G = {"ngf": 32, "n_residual_blocks": 2, "factor": 3, "axis": 1}
OFFICIAL_D = {"ndf": 3, "fc_grid": (7, 11, 7)}
#: the (128, 192, 128) volumes the released discriminator was built for
OFFICIAL_HR_SHAPE = (128, 192, 128)


class ResnetBlock(nn.Module):
    """x + [conv-BN-LReLU-conv-BN](x); no activation after the sum (reference)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv3d(channels, channels, 3, padding=1), nn.BatchNorm3d(channels),
            nn.LeakyReLU(0.2), nn.Conv3d(channels, channels, 3, padding=1),
            nn.BatchNorm3d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class DeUpBlock(nn.Module):
    """Transposed convolution with kernel = stride = ``factor`` along one spatial axis."""

    def __init__(self, channels: int, factor: int, axis: int):
        super().__init__()
        kernel = [1, 1, 1]
        kernel[axis] = factor
        self.deupblock = nn.Sequential(
            nn.ConvTranspose3d(channels, channels, tuple(kernel), stride=tuple(kernel)),
            nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deupblock(x)


class ResnetGenerator(nn.Module):
    """EasySR generator: (B,1,D,H,W) -> (B,1,...) upsampled ``factor``× along ``axis``
    (0, 1, 2 = D, H, W; the release: ×3 along H).  Fully convolutional."""

    def __init__(self, input_nc: int = 1, output_nc: int = 1, ngf: int = 32,
                 n_residual_blocks: int = 2, factor: int = 3, axis: int = 1):
        super().__init__()
        if factor < 1 or axis not in (0, 1, 2):
            raise ValueError(f"need factor >= 1 and axis in 0..2, got {factor}, {axis}")
        self.factor, self.axis = int(factor), int(axis)
        self.n_residual_blocks = int(n_residual_blocks)
        self.conv_block1 = nn.Sequential(nn.Conv3d(input_nc, ngf, 3, padding=1), nn.LeakyReLU(0.2))
        for i in range(n_residual_blocks):
            self.add_module(f"residual_block{i + 1}", ResnetBlock(ngf))
        self.conv_block2 = nn.Sequential(nn.Conv3d(ngf, ngf, 3, padding=1), nn.BatchNorm3d(ngf))
        self.deup = DeUpBlock(ngf, factor, axis)
        self.conv3 = nn.Conv3d(ngf, output_nc, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.conv_block1(x)
        y = skip
        for i in range(self.n_residual_blocks):
            y = getattr(self, f"residual_block{i + 1}")(y)
        y = self.conv_block2(y) + skip
        return self.conv3(self.deup(y))

    @property
    def config(self) -> dict:
        return {"ngf": self.conv_block1[0].out_channels, "n_residual_blocks": self.n_residual_blocks,
                "factor": self.factor, "axis": self.axis}


class ResidualGenerator(ResnetGenerator):
    """EasySR generator plus the linearly upsampled input: the network learns the
    detail interpolation misses (trains far faster; not the released form)."""

    residual = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = list(x.shape[2:])
        size[self.axis] *= self.factor
        base = F.interpolate(x, size=size, mode="trilinear", align_corners=False)
        return base + super().forward(x)

    @property
    def config(self) -> dict:
        return {**super().config, "residual": True}


class PatchDiscriminator(nn.Module):
    """EasySR discriminator: a single real/fake probability per volume.

    ``forward`` returns the sigmoid probability (reference); :meth:`logits` the
    pre-sigmoid score that training feeds to BCE-with-logits.  Features whose spatial
    size differs from ``fc_grid`` are adaptively average-pooled to it.
    """

    def __init__(self, input_nc: int = 1, ndf: int = 3, fc_grid: Sequence[int] = (7, 11, 7)):
        super().__init__()
        self.fc_grid = tuple(int(g) for g in fc_grid)
        chans = [input_nc, ndf, ndf * 2, ndf * 4, ndf * 8]
        for i in range(4):
            self.add_module(f"conv{i + 1}", nn.Sequential(
                nn.Conv3d(chans[i], chans[i + 1], 4, stride=2, padding=1),
                nn.BatchNorm3d(chans[i + 1]), nn.LeakyReLU(0.2, inplace=True)))
        self.conv5 = nn.Conv3d(ndf * 8, ndf * 8, 4, stride=1, padding=1)
        self.fc = nn.Linear(ndf * 8 * math.prod(self.fc_grid), 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(4):
            x = getattr(self, f"conv{i + 1}")(x)
        x = self.conv5(x)
        if tuple(x.shape[2:]) != self.fc_grid:
            x = F.adaptive_avg_pool3d(x, self.fc_grid)
        return self.fc(torch.flatten(x, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    @property
    def config(self) -> dict:
        return {"ndf": self.conv1[0].out_channels, "fc_grid": list(self.fc_grid)}


def _shapes(net: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def expected_generator_shapes(**config) -> dict[str, tuple]:
    """State-dict keys and shapes of a generator (default: the release, 41 tensors)."""
    with torch.device("meta"):
        return _shapes(ResnetGenerator(**{**OFFICIAL_G, **config}))


def expected_discriminator_shapes(**config) -> dict[str, tuple]:
    """State-dict keys and shapes of a discriminator (default: the release, 32 tensors)."""
    with torch.device("meta"):
        return _shapes(PatchDiscriminator(**{**OFFICIAL_D, **config}))


def is_generator_state(state: dict) -> bool:
    return "deup.deupblock.0.weight" in state


def generator_config(state: dict) -> dict:
    """ngf, residual blocks, factor and axis from a generator state_dict."""
    kernel = tuple(state["deup.deupblock.0.weight"].shape[2:])
    big = [i for i, k in enumerate(kernel) if k != 1]
    if len(big) > 1:
        raise ValueError(f"up-block kernel {kernel} upsamples more than one axis")
    axis = big[0] if big else OFFICIAL_G["axis"]
    blocks = 0
    while f"residual_block{blocks + 1}.conv_block.0.weight" in state:
        blocks += 1
    return {"ngf": int(state["conv_block1.0.weight"].shape[0]), "n_residual_blocks": blocks,
            "factor": int(kernel[axis]), "axis": int(axis)}


def discriminator_config(state: dict, sidecar: dict | None = None) -> dict:
    """ndf and head grid from a discriminator state_dict (+ a srprep sidecar)."""
    ndf = int(state["conv1.0.weight"].shape[0])
    if sidecar and "fc_grid" in sidecar:
        return {"ndf": ndf, "fc_grid": tuple(sidecar["fc_grid"])}
    cells = int(state["fc.weight"].shape[1]) // (8 * ndf)
    if cells * 8 * ndf != state["fc.weight"].shape[1]:
        raise ValueError(f"fc.weight {tuple(state['fc.weight'].shape)} does not match ndf {ndf}")
    if cells == math.prod(OFFICIAL_D["fc_grid"]):
        return {"ndf": ndf, "fc_grid": OFFICIAL_D["fc_grid"]}
    side = round(cells ** (1 / 3))
    if side ** 3 != cells:
        raise ValueError(f"cannot tell the head grid of {cells} cells; keep the .json sidecar "
                         "written with the checkpoint")
    return {"ndf": ndf, "fc_grid": (side,) * 3}


def _sidecar(path) -> dict:
    side = Path(path).with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else {}


def from_official_checkpoint(path: str | os.PathLike, *, map_location: str = "cpu") -> nn.Module:
    """Load an EasySR generator or discriminator checkpoint (told apart by its keys).

    Raw state_dicts (the release, CUDA-saved; or srprep-trained) are read with
    ``weights_only=True`` onto the CPU, the configuration is inferred from the tensor
    shapes, loaded strictly, and the module is returned in eval mode on ``map_location``.
    """
    from ..weights import check_structure, load_state_dict

    state = load_state_dict(path)
    name = os.path.basename(os.fspath(path))
    if is_generator_state(state):
        config = generator_config(state)
        cls = ResidualGenerator if _sidecar(path).get("residual") else ResnetGenerator
        net: nn.Module = cls(**config)
        check_structure(state, _shapes(net), what=name)
    elif "fc.weight" in state and "conv1.0.weight" in state:
        config = discriminator_config(state, _sidecar(path))
        net = PatchDiscriminator(**config)
        check_structure(state, _shapes(net), what=name)
    else:
        raise ValueError(f"{name}: neither an EasySR generator nor a discriminator state_dict")
    net.load_state_dict(state, strict=True)
    return net.to(map_location).eval()


def save_checkpoint(net: nn.Module, path: str | os.PathLike, meta: dict | None = None) -> None:
    """Write a raw state_dict in the release's format (no wrapper, no prefix) and a
    ``.json`` sidecar with the configuration and ``meta`` (e.g. the normalisation)."""
    from srprep.core.atomic import atomic_path, write_json

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)
    write_json(Path(path).with_suffix(".json"), {**net.config, **(meta or {})})


def model_info(path: str | os.PathLike) -> dict:
    """Configuration of a generator checkpoint plus its sidecar (e.g. trained voxel size)."""
    from ..weights import load_state_dict

    return {**generator_config(load_state_dict(path)), **_sidecar(path)}
