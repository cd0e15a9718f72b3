"""PCCNN network: continuous spatio-angular convolutions, the four variants and the
official checkpoint format.  See :mod:`srprep.models.pccnn` for the method and the
deviations from the reference code."""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

VARIANTS = ("PCCNN", "PCCNN-Bv", "PCCNN-Sp", "PCCNN-Bv-Sp")
D_MAX = 1.0


def variant_flags(variant: str) -> tuple[bool, bool]:
    """(b-value aware, spatial) flags of a variant name (case-insensitive)."""
    names = {v.lower(): v for v in VARIANTS}
    if variant.lower() not in names:
        raise ValueError(f"unknown PCCNN variant {variant!r}; use one of {', '.join(VARIANTS)}")
    v = names[variant.lower()]
    return "-Bv" in v, "-Sp" in v


def coord_dim(bv: bool, sp: bool) -> int:
    return 3 + (3 if bv else 2) + (3 if sp else 0)


class WeightNet(nn.Module):
    """Fourier features (L levels, level-major, sines then cosines) -> 3-layer MLP
    with LeakyReLU(0.1) -> one kernel value per input channel."""

    def __init__(self, dim: int, hidden: Sequence[int], out_channels: int, levels: int):
        super().__init__()
        self.levels = int(levels)
        h1, h2 = hidden
        self.layers = nn.Sequential(
            nn.Linear(2 * levels * dim, h1), nn.LeakyReLU(0.1), nn.Linear(h1, h2),
            nn.LeakyReLU(0.1), nn.Linear(h2, out_channels), nn.Identity())
        self.register_buffer("_freqs", (2.0 ** torch.arange(levels)) * math.pi, persistent=False)

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        ang = p[..., None, :] * self._freqs.to(p.dtype)[:, None]          # (..., L, D)
        feats = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)       # (..., L, 2D)
        return self.layers(feats.flatten(-2))


def _unit_and_norm(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.linalg.vector_norm(a, dim=-1)
    u = torch.nan_to_num(a / r[..., None], nan=0.0)
    return u, r


def angular_distance(a_in: torch.Tensor, a_out: torch.Tensor) -> torch.Tensor:
    """Antipodally symmetric angle (B, Q_out, Q_in) in [0, pi/2]; zero vectors are at
    pi/2 from everything."""
    u_in, _ = _unit_and_norm(a_in)
    u_out, _ = _unit_and_norm(a_out)
    dot = torch.einsum("boc,bic->boi", u_out, u_in)
    return torch.minimum(torch.arccos(dot.clamp(-1, 1)), torch.arccos((-dot).clamp(-1, 1)))


def neighbourhood_mask(dist: torch.Tensor, k_max: int, d_max: float = D_MAX) -> torch.Tensor:
    """(d <= d_max) and (rank of the input by distance < k_max; 0 = all)."""
    mask = dist <= d_max
    q_in = dist.shape[-1]
    if 0 < k_max < q_in:
        order = torch.sort(dist, dim=-1).indices
        rank = torch.empty_like(order)
        rank.scatter_(-1, order, torch.arange(q_in, device=dist.device).expand_as(order))
        mask = mask & (rank < k_max)
    return mask


def _tap_coords(kernel: Sequence[int], device, dtype) -> torch.Tensor:
    axes = [torch.linspace(0, 1, k, device=device, dtype=dtype) if k > 1
            else torch.zeros(1, device=device, dtype=dtype) for k in kernel]
    grid = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grid], dim=-1)            # (T, 3), row-major


class PCConv(nn.Module):
    """One continuous spatio-angular convolution (depthwise), then ``feature_layer``
    (C_in -> C_out, no bias) and ``bias``.  ``channel_mix=False`` (factorised stages 1-3)
    keeps C_in channels and has neither."""

    def __init__(self, c_in: int, c_out: int, hidden: Sequence[int], levels: int,
                 kernel: Sequence[int] = (1, 1, 1), k_max: int = 0, d_max: float = D_MAX,
                 bv: bool = False, sp: bool = False, channel_mix: bool = True,
                 weight_net: WeightNet | None = None):
        super().__init__()
        if d_max > math.pi / 2:
            raise ValueError("d_max must be <= pi/2")
        self.kernel, self.k_max, self.d_max = tuple(int(k) for k in kernel), int(k_max), float(d_max)
        self.bv, self.sp = bv, sp
        if channel_mix:
            self.bias = nn.Parameter(torch.zeros(c_out))
        else:
            self.register_parameter("bias", None)
        self.weight_net = weight_net if weight_net is not None else WeightNet(
            coord_dim(bv, sp), hidden, c_in, levels)
        self.feature_layer = nn.Linear(c_in, c_out, bias=False) if channel_mix else None

    def _angular(self, r_in: torch.Tensor, r_out: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
        """(B, Q_out, Q_in, n_ang): [d, r_o - r_i] or [d, r_i, r_o] (Bv)."""
        ri = r_in[:, None, :].expand_as(dist)
        ro = r_out[:, :, None].expand_as(dist)
        parts = [dist, ri, ro] if self.bv else [dist, ro - ri]
        return torch.stack(parts, dim=-1)

    def _coords(self, taps: torch.Tensor, ang: torch.Tensor, s: torch.Tensor | None) -> torch.Tensor:
        """(B, T, *ang.shape[1:-1], D) coordinate vectors [t, angular, (s)]."""
        b, t = ang.shape[0], taps.shape[0]
        mid = ang.shape[1:-1]
        parts = [taps.view(1, t, *([1] * len(mid)), 3).expand(b, t, *mid, 3),
                 ang[:, None].expand(b, t, *mid, ang.shape[-1])]
        if self.sp:
            if s is None:
                raise ValueError("Sp variants need the patch centroid (patch_pos)")
            parts.append(s.view(b, 1, *([1] * len(mid)), 3).expand(b, t, *mid, 3))
        return torch.cat(parts, dim=-1)

    def _shifted(self, f: torch.Tensor) -> torch.Tensor:
        """(B, X, Y, Z, T, Q, C): the neighbour each tap reads, 'same' zero padding."""
        if self.kernel == (1, 1, 1):
            return f.unsqueeze(4)
        pads = []
        for k in reversed(self.kernel):               # F.pad wants the last axis first
            left = (k - 1) // 2
            pads += [left, k - 1 - left]
        x = f.permute(0, 4, 5, 1, 2, 3)                # (B, Q, C, X, Y, Z)
        x = F.pad(x, pads)
        x = x.unfold(3, self.kernel[0], 1).unfold(4, self.kernel[1], 1).unfold(5, self.kernel[2], 1)
        # (B, Q, C, X, Y, Z, k1, k2, k3) -> (B, X, Y, Z, T, Q, C)
        x = x.flatten(-3).permute(0, 3, 4, 5, 6, 1, 2)
        return x

    def _line_conv(self, f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Depthwise conv along the one axis with K > 1 (or pointwise): sum of shifted
        copies weighted per (batch, tap, q-point, channel); 'same' zero padding."""
        axes = [a for a, k in enumerate(self.kernel) if k > 1]
        if not axes:
            return f * w[:, 0, None, None, None]
        if len(axes) > 1:
            return torch.einsum("bxyztoc,btoc->bxyzoc", self._shifted(f), w)
        a, k = axes[0], self.kernel[axes[0]]
        left = (k - 1) // 2
        pad = [0, 0, 0, 0] + [0, 0] * (2 - a) + [left, k - 1 - left]
        fp = F.pad(f, pad)
        n = f.shape[1 + a]
        out = None
        for t in range(k):
            term = fp.narrow(1 + a, t, n) * w[:, t, None, None, None]
            out = term if out is None else out + term
        return out

    def forward(self, f: torch.Tensor, a_in: torch.Tensor, a_out: torch.Tensor,
                s: torch.Tensor | None = None) -> torch.Tensor:
        _, r_in = _unit_and_norm(a_in)
        _, r_out = _unit_and_norm(a_out)
        dist = angular_distance(a_in, a_out)                                  # (B, O, I)
        taps = _tap_coords(self.kernel, f.device, f.dtype)
        ang = self._angular(r_in, r_out, dist)                                # (B, O, I, n)
        if self.k_max == 1:
            # one neighbour per output: gather it instead of masking all Q_in inputs
            near = dist.argmin(dim=-1)                                        # (B, O)
            d_near = dist.gather(-1, near[..., None])                         # (B, O, 1)
            ang = ang.gather(2, near[..., None, None].expand(-1, -1, 1, ang.shape[-1])).squeeze(2)
            w = self.weight_net(self._coords(taps, ang, s))                   # (B, T, O, C)
            w = w * (d_near <= self.d_max).to(w.dtype)[:, None]
            same = near.shape[1] == f.shape[4] and bool(
                (near == torch.arange(near.shape[1], device=near.device)).all())
            picked = f if same else torch.take_along_dim(f, near[:, None, None, None, :, None], dim=4)
            h = self._line_conv(picked, w)
        else:
            mask = neighbourhood_mask(dist, self.k_max, self.d_max)
            w = self.weight_net(self._coords(taps, ang, s))                   # (B, T, O, I, C)
            w = w * mask.to(w.dtype)[:, None, :, :, None]
            h = torch.einsum("bxyztic,btoic->bxyzoc", self._shifted(f), w)
        if self.feature_layer is None:
            return h
        return self.feature_layer(h) + self.bias


class PCConvFactorised(nn.Module):
    """Three 1-D spatial stages (kernels 3x1x1, 1x3x1, 1x1x3; k_max 1, in -> in) and a
    pointwise in -> out stage, all sharing one WeightNet; ``feature_layer``/``bias`` are
    the last stage's (aliases, as in the reference's state_dict)."""

    def __init__(self, c_in: int, c_out: int, hidden: Sequence[int], levels: int,
                 bv: bool = False, sp: bool = False):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(c_out))
        self.weightnet = WeightNet(coord_dim(bv, sp), hidden, c_in, levels)
        self.feature_layer = nn.Linear(c_in, c_out, bias=False)
        common = dict(hidden=hidden, levels=levels, bv=bv, sp=sp, weight_net=self.weightnet)
        for i, kernel in enumerate(((3, 1, 1), (1, 3, 1), (1, 1, 3))):
            self.add_module(f"pcconv{i + 1}", PCConv(c_in, c_in, kernel=kernel, k_max=1,
                                                     channel_mix=False, **common))
        self.pcconv4 = PCConv(c_in, c_out, kernel=(1, 1, 1), k_max=0, **common)
        self.pcconv4.bias = self.bias
        self.pcconv4.feature_layer = self.feature_layer

    def forward(self, f, a_in, a_out, s=None):
        for stage in (self.pcconv1, self.pcconv2, self.pcconv3):
            f = stage(f, a_in, a_in, s)
        return self.pcconv4(f, a_in, a_out, s)


class PCConvBlock(nn.Module):
    """[ReLU(pointwise) ⊕ ReLU(factorised)] (+ input, then ReLU, when residual)."""

    def __init__(self, c_in: int, c1: int, c3: int, hidden: Sequence[int], levels: int,
                 residual: bool = True, bv: bool = False, sp: bool = False):
        super().__init__()
        if residual and c1 + c3 != c_in:
            raise ValueError("a residual block needs c1 + c3 == c_in")
        self.residual = residual
        self.pcconv1 = PCConv(c_in, c1, hidden, levels, bv=bv, sp=sp)
        self.pcconv3 = PCConvFactorised(c_in, c3, hidden, levels, bv=bv, sp=sp)

    def forward(self, f, a_in, a_out, s=None):
        y = torch.cat([F.relu(self.pcconv1(f, a_in, a_out, s)),
                       F.relu(self.pcconv3(f, a_in, a_out, s))], dim=-1)
        return F.relu(y + f) if self.residual else F.relu(y)


#: the released configuration: widths, WeightNet hidden sizes and Fourier levels
OFFICIAL = {"c_in": 256, "in_split": (128, 128), "mid": 160, "out_split": (128, 32), "out1": 64,
            "hidden_in": (64, 64), "hidden_inblocks": (128, 32), "hidden_mid": (32, 256),
            "hidden_outblocks": (16, 16), "hidden_out1": (32, 64), "hidden_out2": (256, 256),
            "n_in_blocks": 3, "n_out_blocks": 5}


class PCCNNNet(nn.Module):
    """The network (the reference's inner ``pccnn`` module) for one variant."""

    def __init__(self, variant: str = "PCCNN", **config):
        super().__init__()
        self.variant = variant
        self.bv, self.sp = variant_flags(variant)
        c = {**OFFICIAL, **config}
        self.config = c
        kw = dict(bv=self.bv, sp=self.sp)
        self.pcconv_in = PCConv(1, c["c_in"], c["hidden_in"], 15, **kw)
        self.in_blocks = nn.ModuleList(
            PCConvBlock(c["c_in"], *c["in_split"], c["hidden_inblocks"], 5, True, **kw)
            for _ in range(c["n_in_blocks"]))
        self.pcconv_mid = PCConv(c["c_in"], c["mid"], c["hidden_mid"], 15, **kw)
        self.out_blocks = nn.ModuleList(
            PCConvBlock(c["mid"], *c["out_split"], c["hidden_outblocks"], 15, i > 0, **kw)
            for i in range(c["n_out_blocks"]))
        self.pcconv_out1 = PCConv(c["mid"], c["out1"], c["hidden_out1"], 15, **kw)
        self.pcconv_out2 = PCConv(c["out1"], 1, c["hidden_out2"], 10, **kw)

    def encode(self, dmri_in: torch.Tensor, bvec_in: torch.Tensor,
               patch_pos: torch.Tensor | None = None) -> torch.Tensor:
        """Context stages (up to ``pcconv_mid``): they do not see the targets, so
        prediction computes them once per tile and reuses them for every target chunk."""
        s = patch_pos if self.sp else None
        x = F.relu(self.pcconv_in(dmri_in.unsqueeze(-1), bvec_in, bvec_in, s))
        for block in self.in_blocks:
            x = block(x, bvec_in, bvec_in, s)
        return F.relu(self.pcconv_mid(x, bvec_in, bvec_in, s))

    def decode(self, x: torch.Tensor, bvec_in: torch.Tensor, bvec_out: torch.Tensor,
               patch_pos: torch.Tensor | None = None) -> torch.Tensor:
        """Target stages: context features -> (B, X, Y, Z, Q_out)."""
        s = patch_pos if self.sp else None
        for i, block in enumerate(self.out_blocks):
            x = block(x, bvec_in if i == 0 else bvec_out, bvec_out, s)
        x = F.relu(self.pcconv_out1(x, bvec_out, bvec_out, s))
        return self.pcconv_out2(x, bvec_out, bvec_out, s).squeeze(-1)

    def forward(self, dmri_in: torch.Tensor, bvec_in: torch.Tensor, bvec_out: torch.Tensor,
                patch_pos: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(dmri_in, bvec_in, patch_pos), bvec_in, bvec_out, patch_pos)


class PCCNN(nn.Module):
    """The reference's LightningModule layout (``.pccnn`` inner module), so state_dict
    keys carry the ``pccnn.`` prefix.  ``forward(dmri_in (B,X,Y,Z,Q_in), bvec_in
    (B,Q_in,3), bvec_out (B,Q_out,3)[, patch_pos (B,3)])`` -> (B,X,Y,Z,Q_out)."""

    def __init__(self, variant: str = "PCCNN", **config):
        super().__init__()
        self.pccnn = PCCNNNet(variant, **config)

    @property
    def variant(self) -> str:
        return self.pccnn.variant

    @property
    def spatial(self) -> bool:
        return self.pccnn.sp

    def forward(self, dmri_in, bvec_in, bvec_out, patch_pos=None):
        return self.pccnn(dmri_in, bvec_in, bvec_out, patch_pos)


def expected_shapes(variant: str = "PCCNN", **config) -> dict[str, tuple]:
    """All 368 state_dict keys (aliases included) and their shapes."""
    with torch.device("meta"):
        net = PCCNN(variant, **config)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def expected_shapes_pccnn() -> dict[str, tuple]:
    return expected_shapes("PCCNN")


def expected_shapes_pccnn_bv() -> dict[str, tuple]:
    return expected_shapes("PCCNN-Bv")


def expected_shapes_pccnn_sp() -> dict[str, tuple]:
    return expected_shapes("PCCNN-Sp")


def expected_shapes_pccnn_bv_sp() -> dict[str, tuple]:
    return expected_shapes("PCCNN-Bv-Sp")


def _normalise_keys(state: dict) -> dict:
    """Accept a Lightning checkpoint (``state_dict`` entry), the LightningModule
    state_dict (``pccnn.`` prefix) or the bare network's (no prefix)."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if not any(k.startswith("pccnn.") for k in state):
        state = {f"pccnn.{k}": v for k, v in state.items()}
    return state


def infer_variant(state: dict) -> str:
    """Variant from the WeightNet input width of ``pcconv_in`` (2·15·D)."""
    width = int(state["pccnn.pcconv_in.weight_net.layers.0.weight"].shape[1])
    dims = {coord_dim(*variant_flags(v)): v for v in VARIANTS}
    if width % 30 or width // 30 not in dims:
        raise ValueError(f"pcconv_in WeightNet input width {width} matches no PCCNN variant")
    return dims[width // 30]


def _config_from_state(state: dict) -> dict:
    """Widths of a (possibly smaller, srprep-trained) network from its shapes."""
    g = lambda k: tuple(state[f"pccnn.{k}"].shape)  # noqa: E731
    n_in = sum(1 for k in state if k.startswith("pccnn.in_blocks.") and k.endswith(".pcconv1.bias"))
    n_out = sum(1 for k in state if k.startswith("pccnn.out_blocks.") and k.endswith(".pcconv1.bias"))
    hid = lambda m: (g(f"{m}.layers.0.weight")[0], g(f"{m}.layers.2.weight")[0])  # noqa: E731
    return {"c_in": g("pcconv_in.bias")[0],
            "in_split": (g("in_blocks.0.pcconv1.bias")[0], g("in_blocks.0.pcconv3.bias")[0]),
            "mid": g("pcconv_mid.bias")[0],
            "out_split": (g("out_blocks.0.pcconv1.bias")[0], g("out_blocks.0.pcconv3.bias")[0]),
            "out1": g("pcconv_out1.bias")[0],
            "hidden_in": hid("pcconv_in.weight_net"),
            "hidden_inblocks": hid("in_blocks.0.pcconv1.weight_net"),
            "hidden_mid": hid("pcconv_mid.weight_net"),
            "hidden_outblocks": hid("out_blocks.0.pcconv1.weight_net"),
            "hidden_out1": hid("pcconv_out1.weight_net"),
            "hidden_out2": hid("pcconv_out2.weight_net"),
            "n_in_blocks": n_in, "n_out_blocks": n_out}


def from_official_checkpoint(path: str | os.PathLike, variant: str | None = None, *,
                             map_location: str = "cpu") -> PCCNN:
    """Load a PCCNN checkpoint strictly (``weights_only=True``) and return the model in
    eval mode.  ``variant`` is one of ``PCCNN``, ``PCCNN-Bv``, ``PCCNN-Sp``,
    ``PCCNN-Bv-Sp`` (checked against the file; inferred when omitted).  Aliased keys
    must hold identical values (they are one tensor in the module)."""
    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    state = _normalise_keys(state)
    found = infer_variant(state)
    if variant is not None:
        want = {v.lower(): v for v in VARIANTS}.get(variant.lower())
        if want is None:
            raise ValueError(f"unknown PCCNN variant {variant!r}; use one of {', '.join(VARIANTS)}")
        if want != found:
            raise ValueError(f"{os.path.basename(os.fspath(path))} holds a {found} model, not {want}")
    config = _config_from_state(state)
    net = PCCNN(found, **config)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    # files saved without aliases (distinct tensors only) are completed from the owners
    owners: dict[int, str] = {}      # storage -> first key (aliases share storage)
    for name, tensor in expected.items():
        owners.setdefault(tensor.data_ptr(), name)
    for name in missing:
        owner = owners.get(expected[name].data_ptr())
        if owner in state:
            state[name] = state[owner]
    for name, tensor in expected.items():
        owner = owners[tensor.data_ptr()]
        if owner != name and name in state and not torch.equal(state[name], state[owner]):
            raise ValueError(f"{name} differs from its alias {owner} in the checkpoint")
    net.load_state_dict(state, strict=True)
    return net.to(map_location).eval()


def save_official_checkpoint(net: PCCNN, path: str | os.PathLike) -> None:
    """Write the LightningModule-style state_dict (368 keys, aliases included)."""
    from srprep.core.atomic import atomic_path

    with atomic_path(path) as tmp:
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, tmp)


__all__ = ["PCCNN", "PCCNNNet", "PCConv", "PCConvFactorised", "PCConvBlock", "WeightNet",
           "VARIANTS", "from_official_checkpoint", "save_official_checkpoint", "expected_shapes"]
