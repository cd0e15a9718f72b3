"""Causal U-Net of AID (Luo, Huang & Uecker 2024): the guided-diffusion U-Net for the noisy
frame plus a temporal-spatial conditioning (TSC) branch over the clean preceding frames.

State-dict names and shapes follow the released checkpoints exactly
(``../shared/specs/aid_state_dict_shapes.txt``), so the official ``.pt`` files load with
``strict=True``. The module tree mirrors theirs only where a parameter name depends on it;
parameter-free modules (token reshapes, activations) are placeholders at the same indices.

Deviations from the reference code, all behind options that reproduce the release:

* **Sampling-mode attention.** The reference slices the token sequence to the conditioning
  frame ``idx`` *before* computing queries, keys and values, so prospective sampling and
  reconstruction condition on that one frame only (a first-order Markov chain), although
  training used the whole causal prefix. By default :meth:`CausalUNet.forward_sample`
  attends over the whole window up to ``idx`` (query at ``idx``), which equals the
  training-mode output at that position; ``released_attention=True`` reproduces the
  release (only frame ``idx`` is used; computed on that frame alone, which is identical and
  ~3-10x cheaper).
* **Window length.** The reference requires exactly ``seq_length`` conditioning frames (the
  causal mask and the reshapes are built for it); here any window of 1..seq_length frames
  works, which the causal mask makes equivalent for the frames present.
* The attention logits keep the reference's 1/sqrt(full width) scaling (not per head): the
  weights were trained with it.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AIDConfig", "CausalUNet", "timestep_embedding"]


@dataclass(frozen=True)
class AIDConfig:
    """Architecture of a causal (or, with ``causal=False``, plain guided-diffusion) U-Net.

    ``attention_ds`` are downsampling rates (the reference configs give feature-map sizes,
    converted by :func:`srprep.models.aid.configs.config_from_reference`)."""

    image_size: int
    in_channels: int
    model_channels: int
    channel_mult: tuple = (1, 2, 2)
    num_res_blocks: int = 2
    attention_ds: tuple = ()
    num_heads: int = 4
    num_head_channels: int = -1
    seq_length: int = 5
    learn_sigma: bool = True
    use_scale_shift_norm: bool = True
    concat_cond: bool = True
    complicated_x0: bool = False
    num_complicated: int = 0
    dropout: float = 0.0
    conv_resample: bool = True
    causal: bool = True
    tsc_heads: int = 4

    @property
    def out_channels(self) -> int:
        return self.in_channels * (2 if self.learn_sigma else 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["attention_ds"] = list(self.attention_ds)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "AIDConfig":
        d = dict(d)
        d["channel_mult"] = tuple(d["channel_mult"])
        d["attention_ds"] = tuple(d.get("attention_ds", ()))
        return cls(**d)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos | sin] of (possibly fractional) timesteps, as guided diffusion."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32,
                                                           device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class GroupNorm32(nn.GroupNorm):
    """GroupNorm(32) evaluated in float32 (guided diffusion's ``normalization``)."""

    def __init__(self, channels: int):
        super().__init__(32, channels)

    def forward(self, x):
        return super().forward(x.float()).type(x.dtype)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        p.detach().zero_()
    return module


class ResBlock(nn.Module):
    """Time-conditioned residual block (FiLM scale-shift); ``down`` average-pools by 2."""

    def __init__(self, channels: int, emb_channels: int, out_channels: int | None = None, *,
                 scale_shift: bool = True, dropout: float = 0.0, down: bool = False):
        super().__init__()
        out_channels = out_channels or channels
        self.scale_shift = scale_shift
        self.down = down
        self.in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(),
                                       nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(
            nn.SiLU(), nn.Linear(emb_channels, out_channels * (2 if scale_shift else 1)))
        self.out_layers = nn.Sequential(GroupNorm32(out_channels), nn.SiLU(), nn.Dropout(dropout),
                                        _zero(nn.Conv2d(out_channels, out_channels, 3, padding=1)))
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if self.down:
            h = self.in_layers[1](self.in_layers[0](x))
            h = self.in_layers[2](F.avg_pool2d(h, 2))
            x = F.avg_pool2d(x, 2)
        else:
            h = self.in_layers(x)
        e = self.emb_layers(emb).type(h.dtype)[..., None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_layers[0](h) * (1 + scale) + shift
            for layer in self.out_layers[1:]:
                h = layer(h)
        else:
            h = self.out_layers(h + e)
        return self.skip_connection(x) + h


class AttentionBlock(nn.Module):
    """Spatial multi-head self-attention (guided diffusion's legacy head split)."""

    def __init__(self, channels: int, num_heads: int = 1, num_head_channels: int = -1):
        super().__init__()
        self.heads = num_heads if num_head_channels == -1 else channels // num_head_channels
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = _zero(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, *spatial = x.shape
        flat = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(flat))
        n = flat.shape[-1]
        d = c // self.heads
        # legacy order: heads first, then (q, k, v) within each head
        q, k, v = qkv.reshape(b * self.heads, 3 * d, n).split(d, dim=1)
        s = 1.0 / math.sqrt(math.sqrt(d))
        w = torch.softmax(torch.einsum("bct,bcs->bts", q * s, k * s).float(), dim=-1).type(q.dtype)
        h = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, n)
        return (flat + self.proj_out(h)).reshape(b, c, *spatial)


class Downsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels: int, use_conv: bool):
        super().__init__()
        self.use_conv = use_conv
        if use_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class Step(nn.Sequential):
    """Sequential whose ResBlocks receive the time embedding."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


class CausalAttention(nn.Module):
    """Multi-head attention along the sequence axis with a causal mask (per pixel).

    Logits are scaled by 1/sqrt(full width), as in the released models."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"TSC width {width} is not divisible by {heads} heads")
        self.width, self.heads = width, heads
        self.values = nn.Linear(width, width)
        self.keys = nn.Linear(width, width)
        self.queries = nn.Linear(width, width)
        self.fc_out = nn.Linear(width, width)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        n, t, c = u.shape
        d = c // self.heads

        def split(z):
            return z.view(n, t, self.heads, d).transpose(1, 2)       # n h t d

        q, k, v = split(self.queries(u)), split(self.keys(u)), split(self.values(u))
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=1.0 / math.sqrt(c))
        return self.fc_out(out.transpose(1, 2).reshape(n, t, c))


class _Mlp(nn.Module):
    def __init__(self, width: int, hidden: int, conv: bool = False):
        super().__init__()
        make = (lambda i, o: nn.Conv2d(i, o, 1)) if conv else nn.Linear
        self.fc1, self.fc2 = make(width, hidden), make(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """adaLN-modulated causal transformer block over per-pixel token sequences."""

    def __init__(self, width: int, emb_channels: int, heads: int):
        super().__init__()
        self.width = width
        self.attn = CausalAttention(width, heads)
        self.mlp = _Mlp(width, 4 * width)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 6 * width))

    def forward(self, u: torch.Tensor, mod: torch.Tensor) -> torch.Tensor:
        """u: (N, T, C) tokens; mod: (N, 1, 6C) modulation (depends on the time step only)."""
        b1, g1, a1, b2, g2, a2 = mod.chunk(6, dim=-1)
        ln = lambda z: F.layer_norm(z, (self.width,), eps=1e-6)   # noqa: E731
        u = u + a1 * self.attn(ln(u) * (1 + g1) + b1)
        return u + a2 * self.mlp(ln(u) * (1 + g2) + b2)


class TSCStage(nn.Sequential):
    """One level of the conditioning branch: [tokens, DiT, frames, ResBlock] x n (indices as
    released, the reshapes are parameter-free placeholders)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, b: int) -> torch.Tensor:
        """x: (B*T, C, H, W) frames of B sequences; emb: (B, E) time embedding."""
        bt = x.shape[0]
        t = bt // b
        for layer in self:
            if isinstance(layer, DiTBlock):
                _, c, h, w = x.shape
                tokens = x.view(b, t, c, h * w).permute(0, 3, 1, 2).reshape(b * h * w, t, c)
                mod = layer.adaLN_modulation(emb)                            # (B, 6C)
                mod = mod.repeat_interleave(h * w, dim=0)[:, None, :]
                tokens = layer(tokens, mod)
                x = tokens.view(b, h * w, t, c).permute(0, 2, 3, 1).reshape(bt, c, h, w)
            elif isinstance(layer, ResBlock):
                x = layer(x, emb.repeat_interleave(t, dim=0))
        return x


class Connector(nn.Module):
    """Two-stage fusion ("ConnectorPlus"): spatial FiLM of the main path from TSC features,
    with an optional attention branch; with ``concat`` it is a channel concatenation."""

    def __init__(self, channels: int, concat: bool, attention: bool):
        super().__init__()
        self.concat, self.attention = concat, attention
        if concat:
            return
        factor = 6 if attention else 3
        if attention:
            self.norm1 = GroupNorm32(channels)
            self.attn = AttentionBlock(channels, num_heads=4)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Conv2d(channels, factor * channels, 1))
        self.mlp = _Mlp(channels, 4 * channels, conv=True)
        self.norm2 = GroupNorm32(channels)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.concat:
            return torch.cat([h, c], dim=1)
        parts = self.modulation(c).chunk(6 if self.attention else 3, dim=1)
        if self.attention:
            ag, ab, as_ = parts[:3]
            h = h + ag * self.attn(self.norm1(h) * (1 + as_) + ab)
            parts = parts[3:]
        mg, mb, ms = parts
        return h + mg * self.mlp(self.norm2(h) * (1 + ms) + mb)


class CausalUNet(nn.Module):
    """AID's denoiser. ``forward`` takes the reference's training layout:

    ``x`` (B, T, C, H, 2W) = clean conditioning frames ‖ noisy targets along the width,
    ``timesteps`` (B,) (one diffusion time per sequence); returns (B, T, 2C, H, W):
    ε and the variance interpolation value for targets 1..T, each conditioned causally on
    frames 0..i. With ``causal=False`` it is the plain guided-diffusion U-Net:
    ``forward(x (B, C, H, W), t)``.
    """

    def __init__(self, config: AIDConfig):
        super().__init__()
        self.config = cfg = config
        mc, emb_ch = cfg.model_channels, 4 * cfg.model_channels
        ss, drop = cfg.use_scale_shift_norm, cfg.dropout
        self.time_embed = nn.Sequential(nn.Linear(mc, emb_ch), nn.SiLU(), nn.Linear(emb_ch, emb_ch))
        ch = first = int(cfg.channel_mult[0] * mc)
        concat = cfg.causal and cfg.concat_cond
        self.input_blocks = nn.ModuleList([Step(nn.Conv2d(cfg.in_channels, ch, 3, padding=1))])
        skips, ds = [ch], 1
        self._level_starts = []                     # input_blocks index of each level's first ResBlock
        for level, mult in enumerate(cfg.channel_mult):
            for i in range(cfg.num_res_blocks):
                out = int(mult * mc)
                if i == 0:
                    self._level_starts.append(len(self.input_blocks))
                layers = [ResBlock(2 * ch if (i == 0 and concat) else ch, emb_ch, out,
                                   scale_shift=ss, dropout=drop)]
                ch = out
                if ds in cfg.attention_ds:
                    layers.append(AttentionBlock(ch, cfg.num_heads, cfg.num_head_channels))
                self.input_blocks.append(Step(*layers))
                skips.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(Step(Downsample(ch, cfg.conv_resample)))
                skips.append(ch)
                ds *= 2

        if cfg.causal:
            self.x0_blocks = nn.ModuleList([Step(nn.Conv2d(cfg.in_channels, first, 3, padding=1))])
            self.connectors = nn.ModuleList()
            prev, cur, res = first, first, 1
            for level, mult in enumerate(cfg.channel_mult):
                pairs = [(prev, cur, level > 0 and not cfg.complicated_x0)]
                if cfg.complicated_x0:
                    pairs += [(cur, cur, False)] * cfg.num_complicated + [(cur, cur, level > 0)]
                layers = []
                for width, out, down in pairs:
                    layers += [nn.Identity(), DiTBlock(width, emb_ch, cfg.tsc_heads), nn.Identity(),
                               ResBlock(width, emb_ch, out, scale_shift=ss, dropout=drop, down=down)]
                self.x0_blocks.append(TSCStage(*layers))
                self.connectors.append(Connector(cur, cfg.concat_cond, res in cfg.attention_ds))
                prev, cur = cur, int(mult * mc)
                res = res if level == 0 else res * 2

        self.middle_block = Step(ResBlock(ch, emb_ch, scale_shift=ss, dropout=drop),
                                 AttentionBlock(ch, cfg.num_heads, cfg.num_head_channels),
                                 ResBlock(ch, emb_ch, scale_shift=ss, dropout=drop))
        self.output_blocks = nn.ModuleList()
        for level, mult in list(enumerate(cfg.channel_mult))[::-1]:
            for i in range(cfg.num_res_blocks + 1):
                out = int(mc * mult)
                layers = [ResBlock(ch + skips.pop(), emb_ch, out, scale_shift=ss, dropout=drop)]
                ch = out
                if ds in cfg.attention_ds:
                    layers.append(AttentionBlock(ch, cfg.num_heads, cfg.num_head_channels))
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch, cfg.conv_resample))
                    ds //= 2
                self.output_blocks.append(Step(*layers))
        self.out = nn.Sequential(GroupNorm32(ch), nn.SiLU(),
                                 _zero(nn.Conv2d(first, cfg.out_channels, 3, padding=1)))

    # ------------------------------------------------------------------------------------
    def _temb(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.time_embed(timestep_embedding(timesteps, self.config.model_channels))

    def _unet(self, h: torch.Tensor, emb: torch.Tensor, cond: list | None) -> torch.Tensor:
        """Main path on frames h (N, C, H, W); ``cond[l]`` are TSC features fused before the
        first ResBlock of level l (None: plain U-Net / first training stage)."""
        hs = []
        level = 0
        for k, block in enumerate(self.input_blocks):
            if cond is not None and level < len(self._level_starts) and k == self._level_starts[level]:
                h = self.connectors[level](h, cond[level])
                level += 1
            h = block(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)

    def tsc_features(self, frames: torch.Tensor, emb: torch.Tensor) -> list:
        """Conditioning branch on (B, T, C, H, W) clean frames -> per-level (B*T, C_l, H_l, W_l)."""
        b, t = frames.shape[:2]
        x = self.x0_blocks[0](frames.reshape(b * t, *frames.shape[2:]), None)
        feats = []
        for stage in self.x0_blocks[1:]:
            x = stage(x, emb, b)
            feats.append(x)
        return feats

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, *, multistage: int = 0) -> torch.Tensor:
        cfg = self.config
        emb_seq = self._temb(timesteps)
        if not cfg.causal:
            return self._unet(x, emb_seq, None)
        if cfg.concat_cond and multistage:
            raise ValueError("concat_cond models train in one stage only (multistage=0)")
        b, t, c, hgt, w2 = x.shape
        cond_frames, noisy = x[..., : w2 // 2], x[..., w2 // 2:]
        emb = emb_seq.repeat_interleave(t, dim=0)
        cond = None if multistage == 1 else self.tsc_features(cond_frames, emb_seq)
        out = self._unet(noisy.reshape(b * t, c, hgt, w2 // 2), emb, cond)
        return out.view(b, t, *out.shape[1:])

    def forward_sample(self, window: torch.Tensor, x: torch.Tensor, timesteps: torch.Tensor, *,
                       idx: int = -1, released_attention: bool = False) -> torch.Tensor:
        """Denoise one frame ``x`` (B, C, H, W) given the clean ``window`` (B, T, C, H, W);
        ``idx`` is the window slot of the most recent frame. Returns (B, 2C, H, W).

        Default: causal attention over window[0..idx] (= the training-mode prediction at
        position idx). ``released_attention``: the release's behaviour, frame idx only."""
        t = window.shape[1]
        idx = idx % t
        emb_seq = self._temb(timesteps)
        frames = window[:, idx:idx + 1] if released_attention else window[:, :idx + 1]
        feats = self.tsc_features(frames, emb_seq)
        last = frames.shape[1] - 1
        cond = [f.view(x.shape[0], frames.shape[1], *f.shape[1:])[:, last] for f in feats]
        return self._unet(x, emb_seq, cond)

    def forward_unconditional(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """Main path alone on single frames (first training stage / plain U-Net)."""
        return self._unet(x, self._temb(timesteps), None)
