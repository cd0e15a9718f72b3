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


def _reference_run(model, data, bvals, bvecs, tb, tv, mask):
    """The reference's ``run_subject`` written out from the spec (section 4), for
    diffusion-weighted context and targets: per-shell xmax, x' = 2x/xmax - 1, pad the
    normalised volume with 0 to a multiple of 10 (left ceil, right floor), tiles with brain in C order,
    items = tile x 10 consecutive targets in file order through the whole network, tiles
    without brain -1, de-normalise (y + 1) xmax / 2, crop."""
    from srprep.models.pccnn.qspace import prediction_xmax, qcoords

    ctx = np.arange(len(bvals))
    xin, xout = prediction_xmax(data, bvals, mask, ctx, tb)
    shell = lambda b: min(xin, key=lambda s: abs(s - b))            # noqa: E731
    x = 2 * data / np.array([xin[shell(b)] for b in bvals], np.float32) - 1
    pads = [(((-n) % 10 + 1) // 2, (-n) % 10 // 2) for n in data.shape[:3]]   # left: ceil(P/2)
    xp = np.pad(x, pads + [(0, 0)], constant_values=0.0)
    mp = np.pad(mask, pads)
    out = -np.ones(xp.shape[:3] + (len(tb),), np.float32)
    a_in = torch.from_numpy(qcoords(bvals, bvecs))[None].float()
    with torch.no_grad():
        for i in range(0, xp.shape[0], 10):
            for j in range(0, xp.shape[1], 10):
                for k in range(0, xp.shape[2], 10):
                    if not mp[i:i + 10, j:j + 10, k:k + 10].any():
                        continue
                    tile = torch.from_numpy(xp[None, i:i + 10, j:j + 10, k:k + 10]).float()
                    for c in range(0, len(tb), 10):
                        a_out = torch.from_numpy(qcoords(tb[c:c + 10], tv[c:c + 10]))[None].float()
                        out[i:i + 10, j:j + 10, k:k + 10, c:c + 10] = model(tile, a_in, a_out)[0].numpy()
    crop = tuple(slice(p[0], p[0] + n) for p, n in zip(pads, data.shape[:3]))
    xm = np.array([xout[min(xout, key=lambda s: abs(s - b))] for b in tb], np.float32)
    return (out[crop] + 1) * xm / 2


def test_reference_parity_reproduces_the_reference_protocol(phantom):
    ph = phantom
    dw = np.flatnonzero(ph.bvals > 50)
    ctx, targets = dw[::3], np.setdiff1d(dw, dw[::3])[:20]
    net = _model("PCCNN-Bv", 2)
    args = (net, ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx], ph.bvals[targets],
            ph.bvecs[targets], ph.mask, ph.affine)
    ours, rep = predict_subject(*args, context_mode="reference")
    expected = _reference_run(net, ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx],
                              ph.bvals[targets], ph.bvecs[targets], ph.mask)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-3)
    assert rep["chunks"] == [10, 10] and rep["context_mode"] == "reference"
    srprep_way, _ = predict_subject(*args, context_mode="all")      # -1 padding, set chunks
    assert np.abs(srprep_way - expected).max() > 1e-3
    from srprep.core.errors import InputError

    with pytest.raises(InputError, match="multiple of 10"):
        predict_subject(*args[:4], ph.bvals[targets[:13]], ph.bvecs[targets[:13]], ph.mask,
                        ph.affine, context_mode="reference")


def test_large_shells_are_split_into_averaged_subsets(phantom, monkeypatch):
    """--pccnn-max-context: a 32-direction shell is fed as 3 well-spread subsets of <= 12
    (every volume once), and the prediction is the mean of the three subsets' own
    predictions; independent of the volumes' file order."""
    from srprep.models.pccnn import inference

    ph = phantom
    ctx, held = _split(ph, every=2)
    targets = held[:6]                                          # one shell's directions
    assert len(set(ph.bvals[targets].round(-2))) == 1
    args = (ph.noisy[..., ctx], ph.bvals[ctx], ph.bvecs[ctx], ph.bvals[targets],
            ph.bvecs[targets], ph.mask, ph.affine)
    net = _model(seed=4)
    whole, rep_whole = predict_subject(net, *args)
    seen = []
    real = inference.context_subsets
    monkeypatch.setattr(inference, "context_subsets",
                        lambda *a: seen.append(real(*a)) or seen[-1])
    split, rep = predict_subject(net, *args, max_context=12)
    (subsets,) = seen
    dw_b = ph.bvals[ctx][ph.bvals[ctx] > 50]                   # the network's context
    own = np.flatnonzero(np.abs(dw_b - ph.bvals[targets[0]]) < 50)
    assert rep_whole["context_subsets"] == [[own.size]] and own.size == 32
    assert sorted(len(s) for s in subsets) == [10, 11, 11] == sorted(rep["context_subsets"][0])
    np.testing.assert_array_equal(np.sort(np.concatenate(subsets)), own)
    alone = []
    for s in subsets:                                           # each subset on its own
        monkeypatch.setattr(inference, "context_subsets", lambda *a, s=s: [s])
        alone.append(predict_subject(net, *args, max_context=12)[0])
    np.testing.assert_allclose(split, np.mean(alone, axis=0), rtol=1e-5, atol=1e-4)
    assert np.abs(split - whole)[ph.mask].max() > 1e-3          # not the whole-shell answer
    monkeypatch.setattr(inference, "context_subsets", real)
    perm = np.random.default_rng(2).permutation(ctx.size)
    again, _ = predict_subject(net, ph.noisy[..., ctx[perm]], ph.bvals[ctx[perm]],
                               ph.bvecs[ctx[perm]], *args[3:], max_context=12)
    np.testing.assert_allclose(again, split, rtol=1e-5, atol=1e-4)


def test_trained_context_range_is_read_from_the_training_sidecar(tmp_path):
    from srprep.models.weights import PCCNN_OFFICIAL_MAX_CONTEXT, pccnn_max_context

    weights = tmp_path / "pccnn_weights.pt"
    assert pccnn_max_context(weights) == PCCNN_OFFICIAL_MAX_CONTEXT == 20    # official: 6-20
    weights.with_suffix(".json").write_text('{"q": {"q_in_min": 6, "q_in_max": 12}}')
    assert pccnn_max_context(weights) == 12
