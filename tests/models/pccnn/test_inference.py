"""Whole-subject PCCNN prediction: any number/order of targets, b=0 carried through,
tiles without brain, Sp positions, scale, files."""
import nibabel as nib
import numpy as np
import pytest
import torch

from srprep.core.dmri_sim import multishell_phantom
from srprep.core.dwi import write_bvals_bvecs
from srprep.models import pccnn
from srprep.models.pccnn.inference import predict_files, predict_subject

SMALL = {"c_in": 8, "in_split": (4, 4), "mid": 6, "out_split": (4, 2), "out1": 4,
         "hidden_in": (8, 8), "hidden_inblocks": (8, 4), "hidden_mid": (4, 8),
         "hidden_outblocks": (4, 4), "hidden_out1": (4, 8), "hidden_out2": (8, 8)}


@pytest.fixture(scope="module")
def phantom():
    return multishell_phantom((14, 12, 9), snr=20, seed=5)


def _split(ph, every=4):
    b = ph.bvals
    dw = np.flatnonzero(b > 50)
    ctx = np.concatenate([np.flatnonzero(b <= 50), dw[::every]])
    held = np.setdiff1d(dw, dw[::every])
    return ctx, held


def _model(variant="PCCNN", seed=0):
    torch.manual_seed(seed)
    return pccnn.PCCNN(variant, **SMALL).eval()


def test_targets_any_count_any_order_and_b0_carried(phantom):
    ph = phantom
    ctx, held = _split(ph)
    targets = np.concatenate([[0], held[:13]])                 # one b=0 + 13 directions
    tb, tv = ph.bvals[targets], ph.bvecs[targets]
    net = _model()
    out, rep = predict_subject(net, ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx], tb, tv,
                               ph.mask, ph.affine)
    assert out.shape == ph.mask.shape + (14,) and out.dtype == np.float32
    np.testing.assert_array_equal(out[..., 0], ph.noisy[..., 0])   # b=0: unchanged
    assert rep["b0_targets"] == 1 and sum(rep["chunks"]) == 13
    perm = np.random.default_rng(1).permutation(14)
    again, _ = predict_subject(net, ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx], tb[perm],
                               -tv[perm], ph.mask, ph.affine)     # order and sign of vectors
    np.testing.assert_allclose(again, out[..., perm], rtol=1e-5, atol=1e-4)


def test_tiles_without_brain_are_zero_and_scale_is_restored(phantom):
    ph = phantom
    ctx, held = _split(ph)
    mask = np.zeros_like(ph.mask)
    mask[2:6, 2:6, 2:6] = True                                  # one tile of brain
    out, rep = predict_subject(_model(seed=3), ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx],
                               ph.bvals[held[:5]], ph.bvecs[held[:5]], mask, ph.affine)
    assert rep["tiles"] == 1
    assert np.all(out[10:, :, :] == 0) or np.all(out[:, 10:, :] == 0)
    xmax = max(rep["xmax_target"].values())
    inside = out[2:6, 2:6, 2:6]
    assert 0 < np.abs(inside).max() < 10 * xmax                 # de-normalised units


@pytest.mark.parametrize("variant", ["PCCNN-Sp", "PCCNN-Bv-Sp"])
def test_spatial_variants_receive_tile_positions(phantom, variant):
    ph = phantom
    ctx, held = _split(ph, 6)
    net = _model(variant, 2)
    args = (ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx], ph.bvals[held[:4]],
            ph.bvecs[held[:4]], ph.mask)
    a, _ = predict_subject(net, *args, ph.affine)
    shifted = ph.affine.copy()
    shifted[0, 0] *= -1                                           # other world coordinates
    b, _ = predict_subject(net, *args, shifted)
    assert a.shape[-1] == 4 and not np.allclose(a, b)             # the position is used


def test_context_modes(phantom):
    ph = phantom
    ctx, held = _split(ph, 5)
    net = _model("PCCNN-Bv", 4)
    kw = dict(mask=ph.mask, affine=ph.affine)
    shell, r1 = predict_subject(net, ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx],
                                ph.bvals[held[::9]], ph.bvecs[held[::9]], context_mode="shell", **kw)
    both, r2 = predict_subject(net, ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx],
                               ph.bvals[held[::9]], ph.bvecs[held[::9]], context_mode="all", **kw)
    assert shell.shape == both.shape and not np.allclose(shell, both)
    assert r1["context_mode"] == "shell" and r2["context_mode"] == "all"


def test_predict_files(tmp_path, phantom):
    ph = phantom
    ctx, held = _split(ph)
    nib.save(nib.Nifti1Image(ph.noisy[..., ctx], ph.affine), tmp_path / "dwi.nii.gz")
    write_bvals_bvecs(ph.bvals[ctx], ph.bvecs[ctx], tmp_path / "dwi.bval", tmp_path / "dwi.bvec")
    write_bvals_bvecs(ph.bvals[held[:7]], ph.bvecs[held[:7]], tmp_path / "t.bval", tmp_path / "t.bvec")
    nib.save(nib.Nifti1Image(ph.mask.astype(np.uint8), ph.affine), tmp_path / "mask.nii.gz")
    net = _model("PCCNN-Bv")
    pccnn.save_official_checkpoint(net, tmp_path / "w.pt")
    rep = predict_files(tmp_path / "dwi.nii.gz", tmp_path / "dwi.bval", tmp_path / "dwi.bvec",
                        tmp_path / "t.bval", tmp_path / "t.bvec", tmp_path / "mask.nii.gz",
                        tmp_path / "w.pt", tmp_path / "out.nii.gz", variant="PCCNN-Bv")
    out = nib.load(tmp_path / "out.nii.gz")
    assert out.shape == ph.mask.shape + (7,) and np.allclose(out.affine, ph.affine)
    assert isinstance(out, nib.Nifti1Image) and rep["variant"] == "PCCNN-Bv"
