"""srprep-train aid: NIfTI slices and k-space files -> aid.pt + report (smoke sizes)."""
import json

import numpy as np

from srprep.bids_app.cli.train import main as srprep_train
from srprep.bids_app.demo import build_demo
from srprep.core import kspace as K
from srprep.models.aid import from_official_checkpoint
from tests.core.test_kspace import write_fastmri


def test_train_aid_on_bids_anat(tmp_path, capsys):
    build_demo(tmp_path, participants=3, resolution=4.0)
    out = tmp_path / "model"
    code = srprep_train(["aid", str(tmp_path / "groundtruth"), str(out), "--slice-size", "16",
                         "--seq-length", "3", "--steps", "4", "--eval-slices", "4",
                         "--eval-steps", "2", "--split", "0.34", "0.33", "0.33",
                         "-w", str(tmp_path / "work")])
    assert code == 0, capsys.readouterr().err
    net = from_official_checkpoint(out / "aid" / "aid.pt")
    assert net.config.in_channels == 1 and net.config.image_size == 16
    report = json.loads((out / "training_report.json").read_text())
    assert report["stages"] == [{"multistage": 0, "steps": 4}]
    test = report["test"]
    assert test and all(r["volume"].startswith(report["split"]["test"][0]) for r in test)
    assert {"psnr_aid", "psnr_zerofilled", "psnr_sensel1", "eps_mse",
            "eps_mse_without_context"} <= set(test[0])
    assert (out / "test_metrics.tsv").read_text().startswith("volume\t")
    # too few participants: one-line error, exit 2
    assert srprep_train(["aid", str(tmp_path / "groundtruth"), str(tmp_path / "m2"),
                         "--participant-label", "01"]) == 2
    assert "at least 2 participants" in capsys.readouterr().err


def test_train_aid_on_kspace_two_stage(tmp_path, mni_t1, capsys):
    from srprep.models.aid.data import volume_to_slices

    slices, _ = volume_to_slices(mni_t1[0], size=16)
    maps = K.birdcage_maps(4, (32, 16))
    (tmp_path / "raw").mkdir()
    for i in range(3):
        vol = slices[20 + 10 * i: 28 + 10 * i]
        pad = np.pad(vol, ((0, 0), (8, 8), (0, 0))) * np.exp(1j * 0.3 * i)
        ks = np.stack([K.fft2c(maps * p) for p in pad]).astype(np.complex64)
        write_fastmri(tmp_path / "raw" / f"file_brain_AXT2_{i}.h5", ks)
    out = tmp_path / "model"
    code = srprep_train(["aid", str(tmp_path / "raw"), str(out), "--kspace", "--slice-size", "16",
                         "--seq-length", "3", "--stages", "2", "--steps", "4",
                         "--eval-slices", "4", "--eval-steps", "2", "--split", "0.34", "0.33",
                         "0.33", "-w", str(tmp_path / "work")])
    assert code == 0, capsys.readouterr().err
    net = from_official_checkpoint(out / "aid" / "aid.pt")
    assert net.config.in_channels == 2 and not net.config.concat_cond
    report = json.loads((out / "training_report.json").read_text())
    assert [s["multistage"] for s in report["stages"]] == [1, 2]
