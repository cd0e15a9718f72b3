"""srprep-eval on the demo dataset (reduced grid), as in CI."""
import csv

import pytest

from srprep.bids_app.cli.evaluate import main


@pytest.mark.slow
def test_eval_on_demo_ground_truth(tmp_path):
    out = tmp_path / "eval"
    assert main([str(out), "--quick", "--participant-label", "01", "--nprocs", "2"]) == 0
    with open(out / "evaluation.tsv") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    anat = {(r["suffix"], r["method"]): r for r in rows if r["suffix"] != "dwi"}
    assert set(anat) == {(s, m) for s in ("T1w", "T2w", "PDw") for m in ("linear", "cubic", "unires")}
    for r in anat.values():
        assert r["thickness_mm"] == "4" and r["axis"] == "2" and r["noise"] == "0.03"
        assert 15 < float(r["psnr"]) < 40 and 0.5 < float(r["ssim"]) <= 1
    for suffix in ("T2w", "PDw"):
        assert float(anat[(suffix, "unires")]["psnr"]) > float(anat[(suffix, "cubic")]["psnr"]) + 0.5
        assert float(anat[(suffix, "cubic")]["psnr"]) > float(anat[(suffix, "linear")]["psnr"])
    assert anat[("T1w", "cubic")]["gm_ml_truth"] != "n/a"        # segmented
    assert anat[("PDw", "cubic")]["gm_ml_truth"] == "n/a"        # not segmentable
    assert abs(float(anat[("T1w", "cubic")]["gm_error_pct"])) < 25
    (dwi,) = [r for r in rows if r["suffix"] == "dwi"]
    assert dwi["method"] == "sh" and dwi["angular_factor"] == "2"
    assert 0.1 < float(dwi["nrmse"]) < 0.5
    page = (out / "index.html").read_text()
    assert "evaluation.tsv" in page and "unires" in page
    assert {p.name for p in (out / "figures").glob("*.png")} >= {
        "metrics_T1w.png", "errors_T2w.png", "metrics_PDw.png"}
