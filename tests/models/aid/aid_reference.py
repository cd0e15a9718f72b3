"""An independent, functional transcription of the reference Causal-UNet forward passes
(``../shared/specs/aid.md`` §1), evaluated directly from a state dict with
``torch.nn.functional``. It shares no code with :mod:`srprep.models.aid` and reproduces the
reference's sampling-mode attention literally: the token sequence is cut to slot ``idx``
*before* Q/K/V and the one-token result is broadcast-added to every position."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _emb(t, dim):
    half = dim // 2
    f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    a = t.float()[:, None] * f
    return torch.cat([torch.cos(a), torch.sin(a)], 1)


class Ref:
    def __init__(self, sd: dict, cfg):
        self.sd, self.c = sd, cfg

    def has(self, k):
        return k in self.sd

    def lin(self, x, p):
        return F.linear(x, self.sd[p + ".weight"], self.sd.get(p + ".bias"))

    def conv(self, x, p, pad=1, stride=1):
        return F.conv2d(x, self.sd[p + ".weight"], self.sd[p + ".bias"], stride=stride, padding=pad)

    def gn(self, x, p):
        return F.group_norm(x, 32, self.sd[p + ".weight"], self.sd[p + ".bias"], 1e-5)

    def res(self, x, emb, p, down=False):
        h = F.silu(self.gn(x, p + ".in_layers.0"))
        if down:
            h, x = F.avg_pool2d(h, 2, 2), F.avg_pool2d(x, 2, 2)
        h = self.conv(h, p + ".in_layers.2")
        e = self.lin(F.silu(emb), p + ".emb_layers.1")[:, :, None, None]
        scale, shift = torch.chunk(e, 2, 1)
        h = self.gn(h, p + ".out_layers.0") * (1 + scale) + shift
        h = self.conv(F.silu(h), p + ".out_layers.3")
        if self.has(p + ".skip_connection.weight"):
            x = self.conv(x, p + ".skip_connection", pad=0)
        return x + h

    def sattn(self, x, p, heads):
        b, c, hh, ww = x.shape
        z = x.reshape(b, c, -1)
        qkv = F.conv1d(self.gn(z, p + ".norm"), self.sd[p + ".qkv.weight"], self.sd[p + ".qkv.bias"])
        d = c // heads
        q, k, v = qkv.reshape(b * heads, 3 * d, -1).split(d, 1)
        w = torch.softmax(torch.einsum("bct,bcs->bts", q, k) / math.sqrt(d), -1)
        a = torch.einsum("bts,bcs->bct", w, v).reshape(b, c, -1)
        a = F.conv1d(a, self.sd[p + ".proj_out.weight"], self.sd[p + ".proj_out.bias"])
        return (z + a).reshape(b, c, hh, ww)

    def dit(self, tok, semb, p, idx):
        n, t, c = tok.shape
        mod = self.lin(F.silu(semb), p + ".adaLN_modulation.1")            # (B, 6C)
        mod = mod.repeat_interleave(n // semb.shape[0], 0)[:, None]
        s1, g1, a1, s2, g2, a2 = mod.chunk(6, 2)
        ln = lambda z: F.layer_norm(z, (c,), eps=1e-6)   # noqa: E731
        y = ln(tok) * (1 + g1) + s1
        if idx is not None:                    # the release: keep one token before Q/K/V
            y = y[:, idx:idx + 1] if idx != -1 else y[:, -1:]
        L = y.shape[1]
        hd = c // 4
        v = self.lin(y, p + ".attn.values").view(n, L, 4, hd)
        k = self.lin(y, p + ".attn.keys").view(n, L, 4, hd)
        q = self.lin(y, p + ".attn.queries").view(n, L, 4, hd)
        mask = 1.0 - torch.tril(torch.ones(L, L))
        e = torch.einsum("nqhd,nkhd->nhqk", q, k) + mask * -1e9
        att = torch.softmax(e / math.sqrt(c), dim=3)
        o = self.lin(torch.einsum("nhql,nlhd->nqhd", att, v).reshape(n, L, c), p + ".attn.fc_out")
        tok = tok + a1 * o
        m = self.lin(F.gelu(self.lin(ln(tok) * (1 + g2) + s2, p + ".mlp.fc1"), approximate="tanh"),
                     p + ".mlp.fc2")
        return tok + a2 * m

    def tsc(self, frames, semb, idx=None):
        """frames (B, T, C, H, W) -> list of per-level (B*T, ...) features."""
        b, t = frames.shape[:2]
        x = self.conv(frames.flatten(0, 1), "x0_blocks.0.0")
        emb = semb.repeat_interleave(t, 0)
        out = []
        for lvl in range(len(self.c.channel_mult)):
            j = 1
            while self.has(f"x0_blocks.{lvl + 1}.{j}.attn.keys.weight"):
                p = f"x0_blocks.{lvl + 1}.{j}"
                _, c, h, w = x.shape
                tok = x.reshape(b, t, c, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
                tok = self.dit(tok, semb, p, idx)
                x = tok.reshape(b, h, w, t, c).permute(0, 3, 4, 1, 2).reshape(b * t, c, h, w)
                last = not self.has(f"x0_blocks.{lvl + 1}.{j + 4}.attn.keys.weight")
                down = lvl > 0 and (last if self.c.complicated_x0 else True)
                x = self.res(x, emb, f"x0_blocks.{lvl + 1}.{j + 2}", down=down)
                j += 4
            out.append(x)
        return out

    def unet(self, h, emb, cond):
        hs, k, ds = [], 0, 1
        h = self.conv(h, "input_blocks.0.0")
        hs.append(h)
        k = 1
        for lvl, _ in enumerate(self.c.channel_mult):
            for i in range(self.c.num_res_blocks):
                if i == 0 and cond is not None:
                    h = torch.cat([h, cond[lvl]], 1)
                h = self.res(h, emb, f"input_blocks.{k}.0")
                if self.has(f"input_blocks.{k}.1.qkv.weight"):
                    h = self.sattn(h, f"input_blocks.{k}.1", self.c.num_heads)
                hs.append(h)
                k += 1
            if lvl != len(self.c.channel_mult) - 1:
                h = self.conv(h, f"input_blocks.{k}.0.op", stride=2)
                hs.append(h)
                k += 1
                ds *= 2
        h = self.res(h, emb, "middle_block.0")
        h = self.sattn(h, "middle_block.1", self.c.num_heads)
        h = self.res(h, emb, "middle_block.2")
        k = 0
        while self.has(f"output_blocks.{k}.0.in_layers.2.weight"):
            h = self.res(torch.cat([h, hs.pop()], 1), emb, f"output_blocks.{k}.0")
            j = 1
            if self.has(f"output_blocks.{k}.1.qkv.weight"):
                h = self.sattn(h, f"output_blocks.{k}.1", self.c.num_heads)
                j = 2
            if self.has(f"output_blocks.{k}.{j}.conv.weight"):
                h = self.conv(F.interpolate(h, scale_factor=2, mode="nearest"), f"output_blocks.{k}.{j}.conv")
            k += 1
        return self.conv(F.silu(self.gn(h, "out.0")), "out.2")

    def semb(self, t):
        e = self.lin(_emb(t, self.c.model_channels), "time_embed.0")
        return self.lin(F.silu(e), "time_embed.2")

    def training(self, x, t):
        b, T, c, h, w2 = x.shape
        semb = self.semb(t)
        cond = self.tsc(x[..., : w2 // 2], semb)
        out = self.unet(x[..., w2 // 2:].flatten(0, 1), semb.repeat_interleave(T, 0), cond)
        return out.reshape(b, T, *out.shape[1:])

    def sampling(self, window, x, t, idx=-1):
        """The release's forward_sample: whole window through the TSC, with the token cut."""
        b, T = window.shape[:2]
        semb = self.semb(t)
        feats = self.tsc(window, semb, idx=idx)
        cond = [f.reshape(b, T, *f.shape[1:])[:, idx] for f in feats]
        return self.unet(x, semb, cond)
