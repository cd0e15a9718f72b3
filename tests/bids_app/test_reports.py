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
