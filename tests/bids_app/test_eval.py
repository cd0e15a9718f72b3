"""srprep-eval on the demo dataset (reduced grid), as in CI."""
import csv

import pytest

from srprep.bids_app.cli.evaluate import main

#: PSNR (dB) / SSIM of sub-01 at 4 mm axial with 3 % noise (seeded), measured 2026-12-02;
#: a change of the degradation, the scoring or a method moves these
EXPECTED = {("T1w", "linear"): (24.587, 0.9303), ("T1w", "cubic"): (25.331, 0.9386),
            ("T1w", "unires"): (25.461, 0.9382), ("T2w", "linear"): (21.601, 0.8931),
            ("T2w", "cubic"): (22.131, 0.9016), ("T2w", "unires"): (23.117, 0.9220),
            ("PDw", "linear"): (21.570, 0.8836), ("PDw", "cubic"): (22.163, 0.8816),
            ("PDw", "unires"): (24.546, 0.9047)}


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
    for key, (psnr, ssim) in EXPECTED.items():
        assert float(anat[key]["psnr"]) == pytest.approx(psnr, abs=0.15), key
        assert float(anat[key]["ssim"]) == pytest.approx(ssim, abs=0.005), key
    for suffix in ("T2w", "PDw"):      # the thick images: UniRes' claim, >= 0.5 dB over cubic
        assert float(anat[(suffix, "unires")]["psnr"]) > float(anat[(suffix, "cubic")]["psnr"]) + 0.5
        assert float(anat[(suffix, "unires")]["ssim"]) > float(anat[(suffix, "cubic")]["ssim"])
        assert float(anat[(suffix, "cubic")]["psnr"]) > float(anat[(suffix, "linear")]["psnr"])
    # the T1w is degraded alone here (single-contrast): a small gain only
    assert float(anat[("T1w", "unires")]["psnr"]) > float(anat[("T1w", "cubic")]["psnr"])
    assert anat[("T1w", "cubic")]["gm_ml_truth"] != "n/a"        # segmented
    assert anat[("PDw", "cubic")]["gm_ml_truth"] == "n/a"        # not segmentable
    assert abs(float(anat[("T1w", "cubic")]["gm_error_pct"])) < 25
    (dwi,) = [r for r in rows if r["suffix"] == "dwi"]
    assert dwi["method"] == "sh" and dwi["angular_factor"] == "2"
    assert float(dwi["nrmse"]) == pytest.approx(0.2901, abs=0.005)     # SH on held-out directions
    page = (out / "index.html").read_text()
    assert "evaluation.tsv" in page and "unires" in page
    assert {p.name for p in (out / "figures").glob("*.png")} >= {
        "metrics_T1w.png", "errors_T2w.png", "metrics_PDw.png"}
