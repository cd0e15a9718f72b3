"""Reports open in a real browser (headless Chromium) and show the mosaics."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from srprep.bids_app.cli.run import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def report_dir(demo_dataset, capsys):
    out = demo_dataset / "out"
    code = main([str(demo_dataset / "bids"), str(out), "participant", "-w",
                 str(demo_dataset / "work"), "--vx", "2", "--method", "cubic",
                 "--participant-label", "01", "--skip-bids-validation"])
    assert code == 0, capsys.readouterr().err
    return out


def test_report_links_existing_figures(report_dir):
    page = (report_dir / "sub-01.html").read_text()
    images = re.findall(r"<img src='([^']+)'", page)
    assert len(images) == 4                        # T1w, T2w, PDw, dwi
    assert all((report_dir / src).is_file() for src in images)
    assert "sub-01.html" in (report_dir / "index.html").read_text()
    for key in ("srprep version", "duration (s)", "parameters", "Method: cubic"):
        assert key in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    from matplotlib import image as mpimg

    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1200,1800", f"--screenshot={shot}",
           (report_dir / "sub-01.html").as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1800, 1200)
    gray = pixels.mean(axis=2)
    # the mosaics are dark brain images on black: a large share of dark, varied pixels
    dark = gray < 0.5
    assert dark.mean() > 0.15
    assert np.std(gray[dark]) > 0.05           # not a flat black box: anatomy is visible


@pytest.mark.parametrize("oblique", [False, True])
@pytest.mark.parametrize("order", [0, 3])
def test_comparison_planes_equal_whole_volume_reslice(order, oblique):
    """The report resamples only its three displayed planes; they must be exactly the
    centre planes of a whole-volume reslice (axis-aligned and oblique source)."""
    from srprep.bids_app.reports import _centre_planes, _resampled_planes
    from srprep.core.resample import resample

    rng = np.random.default_rng(0)
    src = rng.normal(100, 20, (30, 34, 12)).astype(np.float32)
    src_affine = np.diag([2.0, 2.0, 5.0, 1.0])
    src_affine[:3, 3] = (-30, -34, -30)
    if oblique:
        a = np.deg2rad(12)
        rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
        src_affine[:3, :3] = rot @ src_affine[:3, :3]
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    affine[:3, 3] = (-28, -30, -26)
    shape = (37, 41, 35)
    whole = resample(src, src_affine, affine, shape, order=order, mode="constant")
    for got, want in zip(_resampled_planes(src, src_affine, affine, shape, order),
                         _centre_planes(whole)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert np.abs(whole).max() > 50          # the grids overlap: not zeros on both sides


def test_mosaic_geometry_and_aspect(tmp_path):
    """Rows of 240 px across 720 px; an anisotropic slice is drawn at its physical aspect
    (a 2 x 2 x 6 mm volume: sagittal and coronal panels 3x wider than tall per voxel)."""
    from PIL import Image

    from srprep.bids_app.reports import _plot_rows

    data = np.zeros((40, 40, 10), np.float32)
    data[10:30, 10:30, 2:8] = 1.0                       # a 40 x 40 x 36 mm block
    png = _plot_rows([("a", data), ("b", data)], np.array([2.0, 2.0, 6.0]),
                     tmp_path / "m.png")
    pixels = np.asarray(Image.open(png))
    assert pixels.shape == (480, 720)
    sagittal = pixels[14:238, 12:236] > 128            # first panel of the first row
    rows, cols = np.nonzero(sagittal)
    height, width = np.ptp(rows) + 1, np.ptp(cols) + 1
    assert abs(height / width - 36 / 40) < 0.05, (height, width)
