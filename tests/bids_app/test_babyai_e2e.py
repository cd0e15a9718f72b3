"""BABY-AI end to end: train a small model on the demo's isotropic data (CPU), check it
beats cubic interpolation on a held-out participant, then run it in the BIDS App.

The demo's ground-truth headers record each participant's head motion, so training
resamples them onto the atlas by their headers (``--no-register``, saving eight
registrations); registration during preparation is tested in tests/core/test_prepare.py,
and the App run below registers its inputs to the atlas.  Batches of 4 patches (32 per
subject and epoch) keep the 1600 optimiser steps of batches of 8 at half the compute:
held-out 6 mm gain +1.00 dB, SSIM +0.028 (benchmarks/RESULTS.md, CI wall time)."""
import csv
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main as srprep
from srprep.bids_app.cli.train import main as srprep_train
from srprep.bids_app.demo import build_demo
from srprep.bids_app.validate import find_validator, validate_dataset
from srprep.core.metrics import psnr
from srprep.core.resample import resample


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("babyai")
    build_demo(root, participants=4, resolution=2.0)
    out = root / "model"
    code = srprep_train(["babyai", str(root / "groundtruth"), str(out), "--atlas-resolution", "2",
                         "--epochs", "100", "--batch-size", "4", "--patches-per-subject", "32",
                         "--lr", "1e-3", "--thickness", "4", "8", "--noise", "0", "0.03",
                         "--seed", "0", "--no-register", "-w", str(root / "work-train")])
    assert code == 0
    return root, out


@pytest.mark.slow
def test_small_model_beats_cubic_on_held_out_participant(trained):
    _, out = trained
    with open(out / "test_metrics.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    report = json.loads((out / "training_report.json").read_text())
    held_out = report["split"]["test"]
    assert {r["subject"] for r in rows} == set(held_out) and len(held_out) == 1
    assert held_out[0] not in report["split"]["train"] + report["split"]["val"]
    mid = [r for r in rows if float(r["thickness_mm"]) == 6.0]
    assert len(mid) == 3                                   # 6 mm slices along each axis
    gain = np.mean([float(r["psnr_model"]) - float(r["psnr_cubic"]) for r in mid])
    ssim_gain = np.mean([float(r["ssim_model"]) - float(r["ssim_cubic"]) for r in mid])
    print(f"held-out 6 mm: PSNR gain {gain:.2f} dB, SSIM gain {ssim_gain:.4f}")
    assert gain > 0.5 and ssim_gain > 0.005
    assert (out / "babyai" / "pretrained_weights.pth").is_file()
    assert (out / "babyai" / "pretrained_weights.json").is_file()   # residual model
    assert report["epochs"] == 100


@pytest.mark.slow
def test_babyai_in_the_bids_app(trained, capsys):
    root, weights = trained
    atlas = next((root / "work-train" / "templates").glob("*.nii.gz"))
    deriv = root / "deriv"
    code = srprep([str(root / "bids"), str(deriv), "participant", "-w", str(root / "work-app"),
                   "--method", "babyai", "--weights-dir", str(weights), "--atlas", str(atlas),
                   "--participant-label", "02", "--sw-mode", "gaussian"])
    assert code == 0, capsys.readouterr().err
    out_file = deriv / "sub-02/ses-1/anat/sub-02_ses-1_space-T1w_res-2mm_desc-babyai_T2w.nii.gz"
    t1 = nib.load(root / "bids/sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz")
    t2 = nib.load(root / "bids/sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz")
    out = nib.load(out_file)
    assert out.shape == t1.shape and np.allclose(out.affine, t1.affine)   # native T1w grid
    assert out.get_data_dtype() == t2.get_data_dtype() == np.int16
    truth = nib.load(root / "groundtruth/sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz")
    t = np.asarray(truth.dataobj, float)
    mask = t > 100
    sr = np.asarray(out.dataobj, float)
    cubic = resample(np.asarray(t2.dataobj, float), t2.affine, truth.affine, truth.shape,
                     order=3, mode="nearest")
    # the T2w is interpolated once (straight to the T1w grid) and only the network's
    # correction comes back from the atlas: PSNR 22.56 dB against cubic's 22.78 (before,
    # with the output resampled back: 22.0); trained with --noise 0 0.03 (the demo's
    # noise is ~0.016 of its range) 22.65.  The remaining gap is this tiny CPU model's at
    # 4 mm: on held-out noise-free data it gains +0.09 dB there (+1 dB at 6 mm), and on
    # the atlas grid it was 0.33 dB below its own noisy input (trained without noise).
    assert np.corrcoef(sr[mask], t[mask])[0, 1] > 0.8                       # intensity scale kept
    assert abs(np.median(sr[mask]) / np.median(t[mask]) - 1) < 0.1
    print(f"App: PSNR {psnr(t, sr, mask):.2f} dB (cubic {psnr(t, cubic, mask):.2f}), "
          f"r {np.corrcoef(sr[mask], t[mask])[0, 1]:.3f} (cubic {np.corrcoef(cubic[mask], t[mask])[0, 1]:.3f})")
    assert psnr(t, sr, mask) > psnr(t, cubic, mask) - 0.5
    side = json.loads(out_file.with_name(out_file.name.replace(".nii.gz", ".json")).read_text())
    assert side["Sources"][0].endswith("sub-02_ses-1_T2w.nii.gz") and side["srprep"]["Weights"]["sha256"]
    if find_validator():
        assert validate_dataset(deriv).ok


@pytest.mark.slow
def test_babyai_beats_cubic_in_the_bids_app_at_6mm(trained, capsys):
    """In the regime the model is trained for (here: +1 dB held out at 6 mm), the whole App
    chain (registration to the atlas, inference, the way back to the T1w grid) keeps the
    gain: sub-02's T2w acquired again as 6 mm axial slices with the demo's noise.
    Measured: 21.01 dB against cubic's 20.47 (+0.54; the held-out +1.05 is on the atlas
    grid, noise-free and without registration)."""
    from srprep.core.synth import add_rician_noise, thick_slices

    root, weights = trained
    bids = root / "bids6"
    anat_in = root / "bids/sub-02/ses-1/anat"
    anat = bids / "sub-02/ses-1/anat"
    anat.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(json.dumps(
        {"Name": "demo sub-02, 6 mm T2w", "BIDSVersion": "1.10.0"}))
    for suffix in ("T1w", "T2w"):
        (anat / f"sub-02_ses-1_{suffix}.json").write_text("{}")
    t1 = nib.load(anat_in / "sub-02_ses-1_T1w.nii.gz")
    nib.save(t1, anat / "sub-02_ses-1_T1w.nii.gz")
    truth = nib.load(root / "groundtruth/sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz")
    t = np.asarray(truth.dataobj, np.float32)
    thick, thick_affine = thick_slices(t, truth.affine, axis=2, thickness=6.0)
    noisy = add_rician_noise(thick, 30.0, np.random.default_rng(7))     # the demo's sigma
    nib.save(nib.Nifti1Image(np.rint(noisy).astype(np.int16), thick_affine),
             anat / "sub-02_ses-1_T2w.nii.gz")
    atlas = next((root / "work-train" / "templates").glob("*.nii.gz"))
    deriv = root / "deriv6"
    assert srprep([str(bids), str(deriv), "participant", "-w", str(root / "work-app6"),
                   "--method", "babyai", "--weights-dir", str(weights), "--atlas", str(atlas),
                   "--sw-mode", "gaussian", "--skip-bids-validation"]) == 0, \
        capsys.readouterr().err
    sr = np.asarray(nib.load(deriv / "sub-02/ses-1/anat/"
                             "sub-02_ses-1_space-T1w_res-2mm_desc-babyai_T2w.nii.gz").dataobj,
                    float)
    cubic = resample(noisy, thick_affine, truth.affine, truth.shape, order=3, mode="nearest")
    mask = t > 100
    gain = psnr(t, sr, mask) - psnr(t, cubic, mask)
    print(f"App at 6 mm: PSNR {psnr(t, sr, mask):.2f} dB (cubic {psnr(t, cubic, mask):.2f})")
    assert gain > 0.3, gain


@pytest.mark.slow
def test_srprep_eval_runs_babyai_with_the_isotropic_t1w(trained):
    """``srprep-eval --methods babyai --weights-dir W`` without ``--keep-iso``: every
    contrast of the case is degraded (6 mm axial, 3 % noise) for the other methods, and
    BABY-AI runs through the App on a copy of the case holding the degraded T2w beside
    the session's isotropic T1w, scored on the T2w's truth; it keeps its gain over cubic
    there (as test_babyai_beats_cubic_in_the_bids_app_at_6mm; measured 2026-12-07:
    20.70 dB, +0.61 over cubic)."""
    import shutil

    from srprep.bids_app.cli.evaluate import main as srprep_eval

    root, weights = trained
    bids = root / "eval-truth"
    if not bids.exists():        # sub-02's ground truth, without its dMRI
        shutil.copytree(root / "groundtruth", bids, ignore=shutil.ignore_patterns("dwi"))
    out = root / "eval-babyai"
    assert srprep_eval([str(out), "--bids-dir", str(bids), "--participant-label", "02",
                        "--methods", "babyai", "--weights-dir", str(weights),
                        "--thickness", "6", "--axes", "2", "--noise", "0.03", "--no-dwi",
                        "--no-segmentation", "--nprocs", "2"]) == 0
    with open(out / "evaluation.tsv") as fh:
        rows = {(r["suffix"], r["method"]): r for r in csv.DictReader(fh, delimiter="\t")}
    assert ("T2w", "babyai") in rows and ("T1w", "babyai") not in rows
    assert (rows[("T2w", "babyai")]["degraded"], rows[("T2w", "babyai")]["kept"]) == ("T2w", "T1w")
    assert rows[("T2w", "cubic")]["degraded"] == "PDw,T1w,T2w"
    gain = float(rows[("T2w", "babyai")]["psnr"]) - float(rows[("T2w", "cubic")]["psnr"])
    print(f"srprep-eval, 6 mm T2w: babyai {float(rows[('T2w', 'babyai')]['psnr']):.2f} dB, "
          f"gain over cubic {gain:+.2f}")
    assert gain > 0.3, gain
    assert "babyai" in (out / "index.html").read_text().split("Which method, for which data")[1]


def test_missing_weights_fail_with_the_fetch_command(demo_dataset, capsys, tmp_path):
    # at 4 mm the demo's T2w is isotropic (nothing for BABY-AI to do): give it 8 mm slices
    t2 = demo_dataset / "bids/sub-01/ses-1/anat/sub-01_ses-1_T2w.nii.gz"
    img = nib.load(t2)
    thick = np.asarray(img.dataobj)[:, :, ::2]
    nib.save(nib.Nifti1Image(thick, img.affine @ np.diag([1, 1, 2, 1.0]), img.header), t2)
    code = srprep([str(demo_dataset / "bids"), str(demo_dataset / "out"), "participant", "-w",
                   str(demo_dataset / "work"), "--method", "babyai", "--weights-dir",
                   str(tmp_path), "--participant-label", "01", "--skip-bids-validation"])
    assert code == 1
    assert "srprep-weights fetch babyai" in capsys.readouterr().err
