"""PCCNN: structure of all four variants against the published key/shape list, a
functional reference written from the spec (explicit broadcast over taps × inputs, as the
reference materialises it), checkpoint round trips and invariances."""
import math
import re

import pytest
import torch
from torch.nn import functional as F

from srprep.models import pccnn
from tests.helpers import SHARED, needs_files

SHAPES = SHARED / "specs/pccnn_state_dict_shapes.txt"
SMALL = {"c_in": 8, "in_split": (4, 4), "mid": 6, "out_split": (4, 2), "out1": 4,
         "hidden_in": (8, 8), "hidden_inblocks": (8, 4), "hidden_mid": (4, 8),
         "hidden_outblocks": (4, 4), "hidden_out1": (4, 8), "hidden_out2": (8, 8),
         "n_in_blocks": 3, "n_out_blocks": 5}


# ---- reference, from spec §1 ------------------------------------------------------------------
def ref_weightnet(s, prefix, p, levels):
    feats = []
    for level in range(levels):
        feats += [torch.sin(2 ** level * math.pi * p), torch.cos(2 ** level * math.pi * p)]
    x = torch.cat(feats, -1)
    x = F.leaky_relu(F.linear(x, s[f"{prefix}.layers.0.weight"], s[f"{prefix}.layers.0.bias"]), 0.1)
    x = F.leaky_relu(F.linear(x, s[f"{prefix}.layers.2.weight"], s[f"{prefix}.layers.2.bias"]), 0.1)
    return F.linear(x, s[f"{prefix}.layers.4.weight"], s[f"{prefix}.layers.4.bias"])


def ref_pcconv(s, wn, f, a_in, a_out, levels, bv, pos, kernel=(1, 1, 1), k_max=0,
               feature=None, bias=None):
    """h[b,x,o,c] = sum_k sum_i m_io w(p(k,i,o))_c f_pad[b, x+k-pad, i, c], broadcast in full."""
    B, X, Y, Z, QI, C = f.shape
    QO = a_out.shape[1]
    r_in, r_out = a_in.norm(dim=-1), a_out.norm(dim=-1)
    u_in = torch.nan_to_num(a_in / r_in[..., None])
    u_out = torch.nan_to_num(a_out / r_out[..., None])
    dot = torch.einsum("boc,bic->boi", u_out, u_in)
    d = torch.minimum(torch.arccos(dot.clamp(-1, 1)), torch.arccos((-dot).clamp(-1, 1)))
    k = QI if k_max == 0 else k_max
    rank = torch.argsort(torch.argsort(d, dim=-1), dim=-1)
    m = ((d <= 1.0) & (rank < k)).float()                                       # (B, O, I)
    taps = [(i, j, l) for i in range(kernel[0]) for j in range(kernel[1]) for l in range(kernel[2])]
    t = torch.tensor([[a / (kk - 1) if kk > 1 else 0.0 for a, kk in zip(tap, kernel)]
                      for tap in taps])                                         # (T, 3)
    pad = [(kk - 1) // 2 for kk in kernel]
    fp = F.pad(f.permute(0, 4, 5, 1, 2, 3),
               [pad[2], kernel[2] - 1 - pad[2], pad[1], kernel[1] - 1 - pad[1],
                pad[0], kernel[0] - 1 - pad[0]]).permute(0, 3, 4, 5, 1, 2)
    h = torch.zeros(B, X, Y, Z, QO, C)
    for ti, tap in enumerate(taps):
        ang = torch.stack([d, r_in[:, None].expand_as(d), r_out[:, :, None].expand_as(d)] if bv
                          else [d, r_out[:, :, None] - r_in[:, None]], -1)       # (B, O, I, n)
        parts = [t[ti].expand(B, QO, QI, 3), ang]
        if pos is not None:
            parts.append(pos[:, None, None].expand(B, QO, QI, 3))
        w = ref_weightnet(s, wn, torch.cat(parts, -1), levels) * m[..., None]    # (B, O, I, C)
        shifted = fp[:, tap[0]:tap[0] + X, tap[1]:tap[1] + Y, tap[2]:tap[2] + Z]  # (B,X,Y,Z,I,C)
        full = shifted[:, :, :, :, None, :, :] * w[:, None, None, None]          # (B,X,Y,Z,O,I,C)
        h = h + full.sum(5)
    if feature is None:
        return h
    return F.linear(h, s[feature]) + s[bias]


def ref_block(s, p, f, a_in, a_out, levels, bv, pos, residual):
    y1 = F.relu(ref_pcconv(s, f"{p}.pcconv1.weight_net", f, a_in, a_out, levels, bv, pos,
                           feature=f"{p}.pcconv1.feature_layer.weight", bias=f"{p}.pcconv1.bias"))
    g = f
    for kern in ((3, 1, 1), (1, 3, 1), (1, 1, 3)):
        g = ref_pcconv(s, f"{p}.pcconv3.weightnet", g, a_in, a_in, levels, bv, pos, kern, k_max=1)
    y3 = F.relu(ref_pcconv(s, f"{p}.pcconv3.weightnet", g, a_in, a_out, levels, bv, pos,
                           feature=f"{p}.pcconv3.feature_layer.weight", bias=f"{p}.pcconv3.bias"))
    y = torch.cat([y1, y3], -1)
    return F.relu(y + f) if residual else F.relu(y)


def ref_pccnn(s, x, a_in, a_out, bv, pos, n_in=3, n_out=5):
    s = {k[len("pccnn."):]: v for k, v in s.items()}
    pc = lambda name, f, ai, ao, lv: ref_pcconv(  # noqa: E731
        s, f"{name}.weight_net", f, ai, ao, lv, bv, pos, feature=f"{name}.feature_layer.weight",
        bias=f"{name}.bias")
    h = F.relu(pc("pcconv_in", x[..., None], a_in, a_in, 15))
    for i in range(n_in):
        h = ref_block(s, f"in_blocks.{i}", h, a_in, a_in, 5, bv, pos, True)
    h = F.relu(pc("pcconv_mid", h, a_in, a_in, 15))
    for i in range(n_out):
        h = ref_block(s, f"out_blocks.{i}", h, a_in if i == 0 else a_out, a_out, 15, bv, pos, i > 0)
    h = F.relu(pc("pcconv_out1", h, a_out, a_out, 15))
    return pc("pcconv_out2", h, a_out, a_out, 10)[..., 0]


def _randomise(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("bias") and p.dim() == 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)   # PCConv biases start at 0
    return net.eval()


def _qpoints(b, n, seed, shells=(1.0, 2.0, 3.0)):
    g = torch.Generator().manual_seed(seed)
    u = F.normalize(torch.randn(b, n, 3, generator=g), dim=-1)
    r = torch.tensor(shells)[torch.randint(len(shells), (b, n), generator=g)]
    return u * r[..., None]


# ---- tests ------------------------------------------------------------------------------------
@needs_files(SHAPES, what="the published key/shape listing (../shared/specs)")
@pytest.mark.parametrize("variant", pccnn.VARIANTS)
def test_keys_order_and_shapes_match_the_published_list(variant):
    text = SHAPES.read_text()
    tag = {"PCCNN": "pccnn ", "PCCNN-Bv": "pccnn-bv ", "PCCNN-Sp": "pccnn-sp ",
           "PCCNN-Bv-Sp": "pccnn-bv-sp "}[variant]
    block = text.split("## " + tag)[1].split("\n## ")[0]
    listed = [(m.group(1), tuple(int(x) for x in m.group(2).replace(" ", "").split(",") if x))
              for m in re.finditer(r"^(pccnn\.\S+) \(([\d, ]*)\)", block, re.M)]
    assert len(listed) == 368
    assert list(pccnn.expected_shapes(variant).items()) == listed


def test_parameter_counts_and_aliases():
    counts = {"PCCNN": 765_282, "PCCNN-Bv": 786_722, "PCCNN-Sp": 829_602, "PCCNN-Bv-Sp": 851_042}
    for v, n in counts.items():
        net = pccnn.PCCNN(v)
        state = net.state_dict()
        assert len(state) == 368 and len({t.data_ptr() for t in state.values()}) == 160
        assert sum(p.numel() for p in net.parameters()) == n
    b = net.pccnn.in_blocks[0].pcconv3
    assert b.pcconv4.bias is b.bias and b.pcconv4.feature_layer is b.feature_layer
    assert all(getattr(b, f"pcconv{i}").weight_net is b.weightnet for i in range(1, 5))


@pytest.mark.parametrize("variant", pccnn.VARIANTS)
def test_forward_equals_the_reference(variant):
    bv, sp = pccnn.variant_flags(variant)
    torch.manual_seed(1)
    net = _randomise(pccnn.PCCNN(variant, **SMALL))
    x = torch.rand(2, 4, 3, 5, 7) * 2 - 1
    a_in, a_out = _qpoints(2, 7, 2), _qpoints(2, 4, 3)
    a_in[1, -2:] = 0                                   # padded context points (zero vectors)
    pos = torch.rand(2, 3) if sp else None
    with torch.no_grad():
        out = net(x, a_in, a_out, pos)
        ref = ref_pccnn(net.state_dict(), x, a_in, a_out, bv, pos)
    assert out.shape == (2, 4, 3, 5, 4)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_released_size_equals_the_reference_on_a_small_patch():
    torch.manual_seed(4)
    net = _randomise(pccnn.PCCNN("PCCNN-Bv-Sp"))
    x = torch.rand(1, 3, 3, 2, 6) * 2 - 1
    a_in, a_out, pos = _qpoints(1, 6, 5), _qpoints(1, 3, 6), torch.rand(1, 3)
    with torch.no_grad():
        out, ref = net(x, a_in, a_out, pos), ref_pccnn(net.state_dict(), x, a_in, a_out, True, pos)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_checkpoint_round_trip_all_forms(tmp_path):
    torch.manual_seed(0)
    net = _randomise(pccnn.PCCNN("PCCNN-Sp", **SMALL))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    pccnn.save_official_checkpoint(net, tmp_path / "a.pt")
    saved = torch.load(tmp_path / "a.pt", weights_only=True)
    assert list(saved) == list(state) and all(k.startswith("pccnn.") for k in saved)
    forms = {"lightning_module": saved,
             "lightning_ckpt": {"state_dict": saved, "epoch": 3},
             "bare": {k[len("pccnn."):]: v for k, v in saved.items()},
             "distinct_only": {k: v for k, v in saved.items()
                               if ".pcconv3.pcconv" not in k}}            # aliases dropped
    for name, obj in forms.items():
        torch.save(obj, tmp_path / f"{name}.pt")
        back = pccnn.from_official_checkpoint(tmp_path / f"{name}.pt", "PCCNN-Sp")
        got = back.state_dict()
        assert list(got) == list(state), name
        assert all(torch.equal(got[k], state[k]) for k in state), name
    with pytest.raises(ValueError, match="holds a PCCNN-Sp model, not PCCNN-Bv"):
        pccnn.from_official_checkpoint(tmp_path / "a.pt", "PCCNN-Bv")
    bad = dict(saved)
    key = "pccnn.in_blocks.0.pcconv3.pcconv2.weight_net.layers.0.bias"
    bad[key] = bad[key] + 1
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="differs from its alias"):
        pccnn.from_official_checkpoint(tmp_path / "bad.pt")


def test_any_number_of_context_points_and_rotation_invariance():
    """D4 fixed: one instance, changing Q_in/Q_out/patch size; plain variants depend on
    the gradient frame only through angles and norms."""
    torch.manual_seed(2)
    net = _randomise(pccnn.PCCNN("PCCNN", **SMALL))
    with torch.no_grad():
        for q_in, q_out, size in ((5, 3, 4), (9, 7, 3), (6, 1, 5)):
            x = torch.rand(1, size, size, size, q_in)
            assert net(x, _qpoints(1, q_in, q_in), _qpoints(1, q_out, q_out)).shape == \
                (1, size, size, size, q_out)
        x = torch.rand(1, 3, 3, 3, 6)
        a_in, a_out = _qpoints(1, 6, 7), _qpoints(1, 4, 8)
        from scipy.spatial.transform import Rotation

        rot = torch.tensor(Rotation.from_euler("xyz", (30, -20, 45), degrees=True).as_matrix(),
                           dtype=torch.float32)
        base = net(x, a_in, a_out)
        torch.testing.assert_close(net(x, a_in @ rot.T, a_out @ rot.T), base, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(net(x, -a_in, a_out), base, atol=0, rtol=0)


def test_zero_padded_context_points_are_inert():
    torch.manual_seed(3)
    net = _randomise(pccnn.PCCNN("PCCNN-Bv", **SMALL))
    x = torch.rand(1, 3, 3, 3, 5)
    a_in, a_out = _qpoints(1, 5, 1), _qpoints(1, 3, 2)
    padded_x = torch.cat([x, torch.rand(1, 3, 3, 3, 2)], -1)       # any value: masked out
    padded_a = torch.cat([a_in, torch.zeros(1, 2, 3)], 1)
    with torch.no_grad():
        torch.testing.assert_close(net(padded_x, padded_a, a_out), net(x, a_in, a_out),
                                   atol=1e-5, rtol=1e-5)
