"""srprep-recon end to end: a fastMRI-style and an ISMRMRD file of simulated 8-coil k-space
(MNI slices, birdcage maps, oversampled readout), a briefly trained tiny AID, BIDS output."""
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.recon import main as srprep_recon
from srprep.bids_app.validate import find_validator, validate_dataset
from srprep.core import kspace as K
from srprep.models.aid.data import volume_to_slices
from srprep.models.aid.train import AIDTrainConfig, tiny_config, train_aid
from tests.core.test_kspace import write_fastmri, write_ismrmrd

SIZE = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory, mni_t1):
    root = tmp_path_factory.mktemp("recon")
    slices, _ = volume_to_slices(mni_t1[0], size=SIZE)
    mid = len(slices) // 2
    # train on every slice outside the 6 reconstructed ones (and a gap of 3)
    train = [slices[: mid - 6, None], slices[mid + 9:, None]]
    report = train_aid(tiny_config(size=SIZE, seq_length=3), train, root / "model",
                       AIDTrainConfig(steps=60, batch_size=4, lr=2e-3, seed=0))
    truth = slices[mid - 3: mid + 3]
    maps = K.birdcage_maps(8, (2 * SIZE, SIZE))           # readout 2x oversampled
    padded = np.pad(truth, ((0, 0), (SIZE // 2, SIZE // 2), (0, 0)))
    ks = np.stack([K.fft2c(maps * p) for p in padded]).astype(np.complex64)
    write_fastmri(root / "file_brain_AXT2_0001.h5", ks)
    return root, truth, report


@pytest.mark.slow
def test_fastmri_file_to_bids(setup, capsys):
    root, truth, report = setup
    assert report["stages"][0]["steps"] == 60
    out = root / "bids"
    code = srprep_recon([str(root / "file_brain_AXT2_0001.h5"), str(out), "--participant-label",
                         "01", "--method", "aid", "zerofilled", "sensel1", "--acceleration", "4",
                         "--weights", str(root / "model" / "aid.pt"), "--steps", "30",
                         "-w", str(root / "work")])
    assert code == 0, capsys.readouterr().err
    anat = out / "sub-01" / "anat"
    names = sorted(p.name for p in anat.glob("*.nii.gz"))
    assert names == [f"sub-01_rec-{m}_T2w.nii.gz" for m in ("aid", "fullysampled", "sensel1", "zerofilled")]
    img = nib.load(anat / "sub-01_rec-aid_T2w.nii.gz")
    assert img.shape == (SIZE, SIZE, 6) and np.allclose(np.diag(img.affine)[:3], [2, 2, 5])
    full = np.asarray(nib.load(anat / "sub-01_rec-fullysampled_T2w.nii.gz").dataobj)
    inside = np.transpose(truth, (1, 2, 0)) > 0.05
    assert np.abs(full - np.transpose(truth, (1, 2, 0)))[inside].max() < 0.02   # readout crop
    side = {m: json.loads((anat / f"sub-01_rec-{m}_T2w.json").read_text())
            for m in ("aid", "zerofilled", "sensel1")}
    aid = side["aid"]
    assert aid["Acceleration"] == 4 and aid["UndersamplingMask"] == "equispaced"
    assert aid["Steps"] == 30 and aid["Seed"] == 0 and aid["Coils"] == 8
    assert aid["SampledPhaseEncodeLines"] == list(range(0, SIZE, 4))
    assert aid["Weights"]["sha256"] and aid["Sources"] == ["kspace:file_brain_AXT2_0001.h5"]
    print({m: (s["PSNR"], s["NRMSE"]) for m, s in side.items()})
    # a briefly trained prior + data consistency beats zero-filled by a clear margin
    assert aid["PSNR"] > side["zerofilled"]["PSNR"] + 3
    assert side["sensel1"]["PSNR"] > side["zerofilled"]["PSNR"] + 3
    if find_validator():
        assert validate_dataset(out).ok


@pytest.mark.slow
def test_ismrmrd_undersampled_input_and_errors(setup, capsys):
    root, truth, _ = setup
    maps = K.birdcage_maps(8, (SIZE, SIZE))
    mask = K.line_mask(SIZE, 2, acs=10)
    ks = np.stack([K.forward(t, maps, mask) for t in truth]).astype(np.complex64)
    write_ismrmrd(root / "scan.mrd", ks)
    out = root / "bids-mrd"
    code = srprep_recon([str(root / "scan.mrd"), str(out), "--method", "zerofilled", "sensel1",
                         "--suffix", "T1w", "-w", str(root / "work2")])
    assert code == 0, capsys.readouterr().err
    side = json.loads((out / "sub-scan/anat/sub-scan_rec-sensel1_T1w.json").read_text())
    assert side["Retrospective"] is False and side["EffectiveAcceleration"] == round(SIZE / mask.sum(), 3)
    assert "acquired data" in side["CoilSensitivities"] and "PSNR" not in side
    assert not (out / "sub-scan/anat/sub-scan_rec-fullysampled_T1w.nii.gz").exists()
    # bad input: one-line errors, exit 2, nothing written
    assert srprep_recon([str(root / "missing.h5"), str(root / "o")]) == 2
    assert "missing.h5: no such file" in capsys.readouterr().err
    assert srprep_recon([str(root / "scan.mrd"), str(root / "o"), "--weights", str(root / "x.pt")]) == 2
    assert "x.pt: no such file" in capsys.readouterr().err
    assert not (root / "o").exists()
    (root / "junk.h5").write_bytes(b"junk")
    assert srprep_recon([str(root / "junk.h5"), str(root / "o2"), "--method", "zerofilled",
                         "-w", str(root / "work3")]) == 1
    assert "junk.h5: not an HDF5 file" in capsys.readouterr().err


@pytest.mark.slow
def test_oracle_first_slice_is_not_scored(setup, capsys):
    """--first-slice full copies the fully sampled slice 0 into the AID output; the
    sidecar's PSNR/NRMSE must come from the other slices (for every method alike)."""
    root, _, _ = setup
    out = root / "bids-first"
    code = srprep_recon([str(root / "file_brain_AXT2_0001.h5"), str(out), "--participant-label",
                         "01", "--method", "aid", "zerofilled", "--acceleration", "4",
                         "--weights", str(root / "model" / "aid.pt"), "--steps", "5",
                         "--first-slice", "full", "-w", str(root / "work-first")])
    assert code == 0, capsys.readouterr().err
    anat = out / "sub-01" / "anat"
    ref = np.asarray(nib.load(anat / "sub-01_rec-fullysampled_T2w.nii.gz").dataobj, float)
    for method in ("aid", "zerofilled"):
        side = json.loads((anat / f"sub-01_rec-{method}_T2w.json").read_text())
        img = np.asarray(nib.load(anat / f"sub-01_rec-{method}_T2w.nii.gz").dataobj, float)
        a, r = img[..., 1:], ref[..., 1:]
        expected = 10 * np.log10(r.max() ** 2 / np.mean((a - r) ** 2))
        assert side["MetricsExcludedSlices"] == [0] and side["FirstSlice" if method == "aid" else "PSNR"]
        assert side["PSNR"] == pytest.approx(expected, abs=0.01)
        assert side["NRMSE"] == pytest.approx(np.linalg.norm(a - r) / np.linalg.norm(r), abs=1e-4)
    aid = np.asarray(nib.load(anat / "sub-01_rec-aid_T2w.nii.gz").dataobj, float)
    np.testing.assert_allclose(aid[..., 0], ref[..., 0], atol=1e-3 * ref.max())   # the oracle


def test_latent_space_prior_is_refused(tmp_path, capsys):
    """aid-cardiac samples a VQ latent space; without its decoder a reconstruction would be
    silent garbage, so it is a one-line error before anything is written."""
    ks = np.zeros((1, 2, 8, 8), np.complex64)
    ks[..., 4, 4] = 1
    write_fastmri(tmp_path / "scan.h5", ks)
    out = tmp_path / "out"
    assert srprep_recon([str(tmp_path / "scan.h5"), str(out), "--model", "aid-cardiac"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latent space" in err[0] and "aid-cardiac" in err[0]
    assert not out.exists()
    # a srprep-trained checkpoint (with its sidecar) is not a latent prior whatever --model says
    from srprep.bids_app.cli.recon import _weights
    from srprep.bids_app.cli.recon import build_parser as recon_parser

    (tmp_path / "aid.pt").write_bytes(b"x")
    (tmp_path / "aid.json").write_text("{}")
    opts = recon_parser().parse_args([str(tmp_path / "scan.h5"), str(out), "--model",
                                      "aid-cardiac", "--weights", str(tmp_path / "aid.pt")])
    assert _weights(opts) == ((tmp_path / "aid.pt").resolve(), "")
