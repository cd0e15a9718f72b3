"""PCCNN end to end on simulated 3-shell phantoms (dipy's 3-shell table, multi-tensor
signals, Rician noise): train a tiny network on CPU for a few minutes with srprep-train,
evaluate it against SH on held-out directions of a held-out participant, and run ``pccnn``
and ``sh`` in the BIDS App on an angularly undersampled acquisition.

With srprep's training defaults (targets from the context's shell, loss on brain voxels
only; see :mod:`srprep.models.pccnn.train`) a tiny network trained for a few CPU minutes
predicts the missing directions (8 of 64 per shell acquired) closer to the noise-free
signal than SH does; the App test asserts that win."""
import csv
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main as srprep
from srprep.bids_app.cli.train import main as srprep_train
from srprep.bids_app.demo import write_dwi_phantoms
from srprep.bids_app.validate import find_validator, validate_dataset
from srprep.core.dwi import B0_THRESHOLD, read_bvals_bvecs, shell_labels, write_bvals_bvecs
from srprep.core.evaluate import score_angular

KEEP_EVERY = 8          # 8 of 64 directions per shell are acquired; the rest are predicted
EPOCHS = 25             # x 4 repeats: ~670 steps, ~4 min on 2 CPU cores
MAX_MINUTES = 30        # safety cap only: the epoch budget fixes the result, not the clock
                        # (a cap a loaded CI machine can reach made the result load-dependent)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pccnn")
    write_dwi_phantoms(root / "train", ["01", "02", "03", "04", "05"], snr=30)
    out = root / "model"
    code = srprep_train(["pccnn", str(root / "train"), str(out), "--size", "tiny",
                         "--q-in", "6", "12", "--q-out", "10", "--batch-size", "8",
                         "--epochs", str(EPOCHS), "--max-minutes", str(MAX_MINUTES),
                         "--lr", "5e-3", "--seed", "0", "--accelerator", "cpu", "--repeats", "4",
                         "--eval-keep-every", str(KEEP_EVERY),
                         "-w", str(root / "work-train")])
    assert code == 0
    return root, out


@pytest.mark.slow
def test_tiny_pccnn_trains_and_is_scored_against_sh(trained):
    _, out = trained
    report = json.loads((out / "training_report.json").read_text())
    assert len(report["split"]["test"]) == 1
    with open(out / "test_metrics.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["subject"].split("_")[0] for r in rows] == report["split"]["test"]
    for r in rows:   # held-out directions vs the acquired (noisy, SNR 30) volumes
        model_err, sh_err = float(r["nrmse_model"]), float(r["nrmse_sh"])
        print(f"{r['subject']}: NRMSE model {model_err:.3f}, SH {sh_err:.3f}")
        # the noise dominates both errors here (measured 0.309 / 0.315 and 0.334 / 0.315):
        # the model is on SH's level; beating SH is asserted against the noise-free signal
        # in test_pccnn_and_sh_in_the_bids_app
        assert 0.2 < sh_err < 0.4 and model_err < 1.1 * sh_err
    val = report["val_history"]
    assert len(val) >= 5 and min(val) < 0.75 * val[0]           # it learns
    weights = out / "pccnn" / "pccnn_weights.pt"
    assert weights.is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "tensorboard").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_pccnn_and_sh_in_the_bids_app(trained, tmp_path, capsys):
    root, model = trained
    label = json.loads((model / "training_report.json").read_text())["split"]["test"][0][4:]
    bids, truth = tmp_path / "bids", tmp_path / "truth"
    write_dwi_phantoms(bids, [label], snr=30, keep_every=KEEP_EVERY, truth_root=truth)
    full_b, full_v = read_bvals_bvecs(truth / f"sub-{label}/dwi/sub-{label}_dwi.bval",
                                      truth / f"sub-{label}/dwi/sub-{label}_dwi.bvec")
    acq_b, acq_v = read_bvals_bvecs(bids / f"sub-{label}/dwi/sub-{label}_dwi.bval",
                                    bids / f"sub-{label}/dwi/sub-{label}_dwi.bvec")
    acquired = {tuple(np.round(v, 5)) for v in acq_v}
    held = [i for i, v in enumerate(full_v) if full_b[i] > B0_THRESHOLD
            and tuple(np.round(v, 5)) not in acquired]
    targets = np.concatenate([[0], held])                         # b=0 + every missing direction
    write_bvals_bvecs(full_b[targets], full_v[targets], tmp_path / "t.bval", tmp_path / "t.bvec")
    deriv = tmp_path / "deriv"
    code = srprep([str(bids), str(deriv), "participant", "-w", str(tmp_path / "work"),
                   "--method", "pccnn", "sh", "--pccnn-model",
                   str(model / "pccnn" / "pccnn_weights.pt"), "--target-bvals",
                   str(tmp_path / "t.bval"), "--target-bvecs", str(tmp_path / "t.bvec")])
    assert code == 0, capsys.readouterr().err
    dwi = deriv / f"sub-{label}" / "dwi"
    src = nib.load(bids / f"sub-{label}/dwi/sub-{label}_dwi.nii.gz")
    clean = np.asarray(nib.load(truth / f"sub-{label}/dwi/sub-{label}_dwi.nii.gz").dataobj)
    mask = clean[..., 0] > 0
    scores = {}
    for method in ("pccnn", "sh"):
        img = nib.load(dwi / f"sub-{label}_desc-{method}_dwi.nii.gz")
        b, v = read_bvals_bvecs(dwi / f"sub-{label}_desc-{method}_dwi.bval",
                                dwi / f"sub-{label}_desc-{method}_dwi.bvec")
        assert img.shape == src.shape[:3] + (len(targets),) and np.allclose(img.affine, src.affine)
        np.testing.assert_allclose(b, full_b[targets], atol=0.5)
        data = np.asarray(img.dataobj)
        scores[method] = score_angular(clean[..., held], data[..., 1:], mask)["nrmse"]
        if method == "pccnn":   # b=0 carried through unchanged
            np.testing.assert_array_equal(data[..., 0], np.asarray(src.dataobj)[..., 0])
    print("NRMSE vs noise-free signal:", scores)
    assert scores["pccnn"] < scores["sh"] < 0.6, scores
    side = json.loads((dwi / f"sub-{label}_desc-pccnn_dwi.json").read_text())
    assert side["srprep"]["Prediction"]["context_mode"] == "shell"
    # --pccnn-max-context by default: the model's trained range (--q-in 6 12); the 8
    # acquired directions per shell fit in one pass
    assert side["srprep"]["Prediction"]["max_context"] == 12
    assert all(sizes == [8] for sizes in side["srprep"]["Prediction"]["context_subsets"])
    assert set(shell_labels(full_b[targets])) == {0, 1000, 2000, 3500}
    if find_validator():
        assert validate_dataset(deriv).ok


@pytest.mark.slow
def test_srprep_eval_scores_pccnn_and_sh_through_the_app(trained, tmp_path):
    """``srprep-eval --angular-methods sh pccnn --pccnn-model W``: each angular subset
    (1 weighted volume in 8) is a participant the App processes with both methods onto
    the full scheme; the held-out volumes are scored against the acquired (noisy,
    SNR 30) ones, where the tiny model is on SH's level (as in
    test_tiny_pccnn_trains_and_is_scored_against_sh)."""
    from srprep.bids_app.cli.evaluate import main as srprep_eval

    root, model = trained
    label = json.loads((model / "training_report.json").read_text())["split"]["test"][0][4:]
    bids = write_dwi_phantoms(tmp_path / "bids", [label], snr=30)
    out = tmp_path / "eval"
    assert srprep_eval([str(out), "--bids-dir", str(bids), "--angular-methods", "sh", "pccnn",
                        "--pccnn-model", str(model / "pccnn" / "pccnn_weights.pt"),
                        "--angular-factors", "8", "--nprocs", "2"]) == 0
    with open(out / "evaluation.tsv") as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert set(rows) == {"sh", "pccnn"}
    for r in rows.values():
        assert r["suffix"] == "dwi" and r["angular_factor"] == "8" and float(r["seconds"]) > 0
    sh, nn = float(rows["sh"]["nrmse"]), float(rows["pccnn"]["nrmse"])
    print(f"srprep-eval NRMSE on held-out directions: pccnn {nn:.3f}, sh {sh:.3f}")
    assert 0.2 < sh < 0.4 and nn < 1.1 * sh
    # what was scored is the App's own output, with its provenance
    side = next((out / "work" / "eval-dwi-app").rglob("*_desc-pccnn_dwi.json"))
    assert json.loads(side.read_text())["srprep"]["Prediction"]["context_mode"] == "shell"


def test_angular_usage_errors(demo_dataset, capsys, tmp_path):
    base = [str(demo_dataset / "bids"), str(tmp_path / "out"), "participant", "-w",
            str(tmp_path / "work"), "--participant-label", "01", "--skip-bids-validation"]
    assert srprep(base + ["--method", "sh", "--target-bvals", str(tmp_path / "x.bval")]) == 2
    assert "--target-bvals and --target-bvecs go together" in capsys.readouterr().err
    assert srprep(base + ["--method", "pccnn", "--weights-dir", str(tmp_path)]) == 1
    assert "srprep-weights fetch pccnn" in capsys.readouterr().err


def test_sh_baseline_on_the_demo(demo_dataset, tmp_path, capsys):
    deriv = tmp_path / "deriv"
    code = srprep([str(demo_dataset / "bids"), str(deriv), "participant", "-w",
                   str(tmp_path / "work"), "--method", "sh", "--angular-factor", "2",
                   "--participant-label", "01", "--skip-bids-validation"])
    assert code == 0, capsys.readouterr().err
    src = demo_dataset / "bids/sub-01/ses-1/dwi/sub-01_ses-1_dwi"
    b_in, _ = read_bvals_bvecs(f"{src}.bval", f"{src}.bvec")
    out = deriv / "sub-01/ses-1/dwi/sub-01_ses-1_desc-sh_dwi"
    b_out, v_out = read_bvals_bvecs(f"{out}.bval", f"{out}.bvec")
    assert (b_out <= B0_THRESHOLD).sum() == (b_in <= B0_THRESHOLD).sum()
    assert (b_out > B0_THRESHOLD).sum() == 2 * (b_in > B0_THRESHOLD).sum()
    assert nib.load(f"{out}.nii.gz").shape[3] == len(b_out)
