"""PCCNN training data: q-space draws (same-shell vs cross-shell), masked targets, loss."""
import pytest
import torch

from srprep.core.dmri_sim import multishell_phantom
from srprep.core.dwi import save_q_first, xmax_per_shell
from srprep.models.pccnn.train import DWISubject, PCCNNDataset, QSpaceInfo, l1_loss


@pytest.fixture(scope="module")
def subject(tmp_path_factory):
    ph = multishell_phantom((14, 12, 9), snr=20, seed=3)
    npy = tmp_path_factory.mktemp("pcc") / "s.npy"
    save_q_first(ph.noisy, npy)
    return DWISubject(npy, ph.bvals, ph.bvecs, ph.mask,
                      xmax_per_shell(ph.noisy, ph.bvals, ph.mask), ph.affine, "sub-x")


def _shell_of(vectors: torch.Tensor) -> set[int]:
    norms = vectors.norm(dim=-1)
    return {int(round(float(n) * 1000, -2)) for n in norms if n > 0}


def test_targets_come_from_the_context_shell_by_default(subject):
    ds = PCCNNDataset([subject], QSpaceInfo(6, 9, 5, seed=1), spatial=False, repeats=8)
    pairs = []
    for i in range(len(ds)):
        (x, a_in, a_out), y = ds[i]
        assert x.shape == (10, 10, 10, 9) and a_out.shape == (5, 3) and y.shape[-1] == 5
        pairs.append((_shell_of(a_in), _shell_of(a_out)))
    assert all(len(s_in) == 1 and s_in == s_out for s_in, s_out in pairs)
    assert {next(iter(s)) for s, _ in pairs} == {1000, 2000, 3500}


def test_cross_shell_draws_mix_shells(subject):
    ds = PCCNNDataset([subject], QSpaceInfo(6, 9, 5, seed=1, cross_shell=True), spatial=False,
                      repeats=8)
    pairs = [(_shell_of(ds[i][0][1]), _shell_of(ds[i][0][2])) for i in range(len(ds))]
    assert any(s_in != s_out for s_in, s_out in pairs)


def test_masked_targets_are_nan_outside_the_brain_and_the_loss_skips_them(subject):
    masked = PCCNNDataset([subject], QSpaceInfo(6, 9, 5), spatial=False, deterministic=True)
    plain = PCCNNDataset([subject], QSpaceInfo(6, 9, 5, masked=False), spatial=False,
                         deterministic=True)
    (_, y_m), (_, y_p) = masked[0], plain[0]
    inside = torch.isfinite(y_m[..., 0])
    assert 0 < int(inside.sum()) < 1000                     # an edge tile: brain and background
    assert torch.isnan(y_m).any(-1).eq(~inside).all()       # NaN exactly outside the mask
    torch.testing.assert_close(y_m[inside], y_p[inside])
    pred = torch.zeros_like(y_p)
    want = y_p[inside].abs().mean()
    torch.testing.assert_close(l1_loss(pred, y_m), want)
    torch.testing.assert_close(l1_loss(pred, y_p), y_p.abs().mean())   # unmasked: plain L1
