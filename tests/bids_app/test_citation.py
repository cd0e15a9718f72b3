"""The methods paragraph: only what ran, its parameters and references."""
from pathlib import Path

from srprep.bids_app.citation import _to_html, boilerplate
from srprep.bids_app.config import Settings


def _settings(**options):
    return Settings(bids_dir=Path("/b"), output_dir=Path("/o"), work_dir=Path("/w"),
                    output_resolution=[1.0, 1.0, 1.0], method_options=options)


def test_unires_and_sh_paragraphs_with_references():
    text = boilerplate(_settings(unires={"reg_scale": 8, "coregister": False}),
                       ["unires", "sh"], {"pydra": "1.0a12", "torch": "2.13.0"})
    assert "UniRes [1]" in text and "regularisation scale 8" in text
    assert "headers were trusted" in text and "1 mm isotropic grid" in text
    assert "spherical-harmonic fit [2]" in text
    refs = text.split("## References")[1]
    assert "1. Brudfors M" in refs and "2. Descoteaux M" in refs
    assert "pydra 1.0a12, torch 2.13.0" in text


def test_baselines_have_no_reference_and_html_escapes():
    text = boilerplate(_settings(), ["cubic"], {})
    assert "cubic B-spline" in text and "[1]" not in text and "References" not in text
    page = _to_html("# T\n\nA <b> & c\n\n1. x\n2. y")
    assert "<h1>T</h1>" in page and "A &lt;b&gt; &amp; c" in page
    assert "<ol><li>x</li><li>y</li></ol>" in page
