"""Real scans through the App (issue #17): one person's T1w (neck in the field of view,
zeroed background) and oblique, partial-field-of-view PD stack acquired ~9 degrees / ~8 mm
away (``tests/data/real``), both uint8, reduced to ~2.6 mm so that the test takes seconds.
``cubic`` outputs overlay their inputs; UniRes co-registers the PD (recorded in the
sidecar), writes it on the T1w's lattice (``space-T1w``), and the PD output overlays the PD
input once the recorded registration is applied, clearly better than by the PD's header.
EasySR's released generator runs on the real T1w acquired as thick slices."""
import csv
import json

import nibabel as nib
import numpy as np
import pytest

from srprep.bids_app.cli.run import main
from srprep.core.synth import thick_slices
from tests.helpers import (REAL, SHARED, needs_files, overlay_correlation, real_pair,
                           write_anat_dataset)


def _reduced(name: str, factors: dict[int, int]):
    """The scan box-averaged by integer ``factors`` along voxel axes, stored as uint8."""
    img = nib.load(REAL / f"{name}.nii.gz")
    data, affine = np.asarray(img.dataobj, np.float32), img.affine
    for axis, k in factors.items():
        h = float(np.sqrt((affine[:3, axis] ** 2).sum()))
        data, affine = thick_slices(data, affine, axis=axis, thickness=k * h)
    return np.clip(np.rint(data), 0, 255).astype(np.uint8), affine


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    root = tmp_path_factory.mktemp("realpair")
    write_anat_dataset(root / "bids", {("chris", "T1w"): _reduced("chris_t1", {0: 3, 1: 3, 2: 3}),
                                       ("chris", "PDw"): _reduced("chris_PD", {0: 3, 1: 3})},
                       "real T1w + PD pair (tests/data/real)")
    assert main([str(root / "bids"), str(root / "out"), "participant", "-w",
                 str(root / "work"), "--method", "cubic", "unires", "--vx", "2.64",
                 "--nprocs", "2", "--omp-nthreads", "1", "--skip-bids-validation"]) == 0
    return root


def _load(path):
    img = nib.load(path)
    return np.asarray(img.dataobj, np.float64), img


def _overlay(x, src_img, y, out_affine, affine=None) -> float:
    """Correlation, inside the input's head, of an output pulled back onto the input's
    grid (through ``affine``, the input's header by default)."""
    return overlay_correlation(x, src_img.affine if affine is None else affine, y, out_affine)


@pytest.mark.parametrize("suffix", ["T1w", "PDw"])
def test_cubic_outputs_overlay_real_inputs(session, suffix):
    x, src = _load(session / "bids" / "sub-chris" / "anat" / f"sub-chris_{suffix}.nii.gz")
    (out_file,) = (session / "out" / "sub-chris" / "anat").glob(f"*desc-cubic_{suffix}.nii.gz")
    y, out = _load(out_file)
    assert out.get_data_dtype() == np.uint8 and y.max() <= 255
    assert _overlay(x, src, y, out.affine) > 0.95       # measured 1.000 (T1w), 0.978 (PD)


def test_unires_registers_the_real_pd_and_writes_it_on_the_t1w_lattice(session):
    anat_in = session / "bids" / "sub-chris" / "anat"
    anat_out = session / "out" / "sub-chris" / "anat"
    t1, t1_img = _load(anat_in / "sub-chris_T1w.nii.gz")
    pd, pd_img = _load(anat_in / "sub-chris_PDw.nii.gz")
    t1_out, t1_out_img = _load(anat_out / "sub-chris_res-2p64mm_desc-unires_T1w.nii.gz")
    pd_file = anat_out / "sub-chris_space-T1w_res-2p64mm_desc-unires_PDw.nii.gz"
    pd_out, pd_out_img = _load(pd_file)
    for img in (t1_out_img, pd_out_img):       # on the T1w's own lattice, as uint8
        assert img.shape == t1_img.shape and np.allclose(img.affine, t1_img.affine)
        assert img.get_data_dtype() == np.uint8
    assert _overlay(t1, t1_img, t1_out, t1_out_img.affine) > 0.99          # measured 0.9999
    fit = json.loads(pd_file.with_name(pd_file.name.replace(".nii.gz", ".json"))
                     .read_text())["srprep"]["Fit"]
    (record,) = fit["coregistration"]
    assert record["applied"] and 7.0 < record["rotation_deg"] < 11.0
    assert record["max_displacement_mm"] > 20.0
    # the PD output sits where the registration put the PD: pulled back through the
    # corrected header it overlays the PD input; through the PD's own header, worse
    corrected = np.linalg.solve(np.asarray(record["matrix"]), pd_img.affine)
    r_registered = _overlay(pd, pd_img, pd_out, pd_out_img.affine, corrected)
    r_header = _overlay(pd, pd_img, pd_out, pd_out_img.affine)
    # measured: 0.996 registered, 0.426 by the header (9.0 degrees, 31.5 mm at the corners)
    assert r_registered > 0.98 and r_registered > r_header + 0.3, (r_registered, r_header)


EASYSR_DIR = SHARED / "weights" / "easysr"


@needs_files(EASYSR_DIR / "G_latest_Mixed.pth",
             what="the official EasySR generator (../shared/weights/easysr)")
def test_official_easysr_on_a_real_thick_t1(tmp_path, caplog):
    """The released (rat) generator on a real human thick T1w (1.76 mm in-plane, 5.28 mm
    coronal slices, uint8): it runs, warns that the input is outside its training domain,
    keeps the dtype and range, and its output overlays the input in world space."""
    import logging

    caplog.set_level(logging.INFO)
    (_, _), inputs = real_pair(1.76, 5.28, 1)
    thick, affine = inputs["T1w"]
    write_anat_dataset(tmp_path / "bids", {("chris", "T1w"): (thick, affine)}, "real thick T1w")
    anat = tmp_path / "bids" / "sub-chris" / "anat"
    weights = tmp_path / "weights" / "easysr"
    weights.mkdir(parents=True)
    for f in EASYSR_DIR.glob("*.pth"):
        (weights / f.name).symlink_to(f)
    assert main([str(tmp_path / "bids"), str(tmp_path / "out"), "participant", "-w",
                 str(tmp_path / "work"), "--method", "easysr", "--weights-dir",
                 str(weights.parent), "--skip-bids-validation"]) == 0
    assert "far from the generator's training data" in caplog.text
    (out_file,) = (tmp_path / "out" / "sub-chris" / "anat").glob("*desc-easysr_T1w.nii.gz")
    out = nib.load(out_file)
    assert out.get_data_dtype() == np.uint8
    src = nib.load(anat / "sub-chris_T1w.nii.gz")
    x, y = np.asarray(src.dataobj, np.float64), np.asarray(out.dataobj, np.float64)
    r = _overlay(x, src, y, out.affine)
    assert r > 0.9, r                                          # measured 0.964


@pytest.mark.slow
def test_srprep_eval_on_the_real_pair_joint_beats_single_and_cubic(tmp_path):
    """``srprep-eval`` on the real pair as a BIDS dataset: the T1w box-averaged to
    3.52 mm is the truth, acquired again as 7.04 mm coronal slices; the real oblique PD
    (averaged 3x in-plane to 2.6 mm: 9x fewer voxels, for CI) is given as acquired
    (``--keep-iso PDw``).  UniRes fitting the thick T1w with the real PD beats fitting the
    T1w alone and cubic (measured 2026-12-07: joint 27.80 dB / 0.9502, single 27.17 /
    0.9428, cubic 25.41 / 0.9126; with the PD's full 0.86 mm in-plane resolution joint
    27.78, benchmarks/RESULTS.md).  Before the default grid took the T1w's frame, the
    joint fit's grid lay 4 degrees between the two scans and it lost to single."""
    from srprep.bids_app.cli.evaluate import main as srprep_eval

    (truth, affine), inputs = real_pair(3.52)
    pd, pd_affine = inputs["PDw"]
    for ax in (0, 1):
        h = float(np.sqrt((pd_affine[:3, ax] ** 2).sum()))
        pd, pd_affine = thick_slices(pd, pd_affine, axis=ax, thickness=3 * h)
    bids = write_anat_dataset(tmp_path / "bids", {("chris", "T1w"): (truth, affine),
                                                  ("chris", "PDw"): (pd, pd_affine)},
                              "real T1w (truth) + real PD")
    out = tmp_path / "eval"
    assert srprep_eval([str(out), "--bids-dir", str(bids), "--keep-iso", "PDw", "--methods",
                        "unires", "unires-single", "--thickness", "7.04", "--axes", "1",
                        "--noise", "0", "--no-dwi", "--no-segmentation", "--nprocs", "2"]) == 0
    with open(out / "evaluation.tsv") as fh:
        rows = {r["method"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert set(rows) == {"linear", "cubic", "unires", "unires-single"}
    assert {(r["suffix"], r["kept"]) for r in rows.values()} == {("T1w", "PDw")}
    psnr = {m: float(r["psnr"]) for m, r in rows.items()}
    ssim = {m: float(r["ssim"]) for m, r in rows.items()}
    assert psnr["unires"] > psnr["unires-single"] + 0.3, psnr
    assert psnr["unires"] > psnr["cubic"] + 0.5, psnr
    assert ssim["unires"] > ssim["unires-single"] > ssim["cubic"], ssim
    page = (out / "index.html").read_text().split("Which method, for which data")[1]
    assert "<td>T1w</td><td>7.04</td><td><b>unires</b></td>" in page
