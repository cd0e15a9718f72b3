"""``logs/CITATION.md`` (and ``.html``): a methods paragraph for the run, as fMRIPrep writes.

Users paste it into a manuscript, so it names only the methods that produced outputs in
this run, with their parameters, the software versions and the references.
"""
from __future__ import annotations

import html
import re
from pathlib import Path

from srprep import __version__
from srprep.core.atomic import write_text

#: what each method did, in a sentence (formatted with the run's parameters)
_SENTENCES = {
    "unires": ("The anatomical images of each session were reconstructed jointly on a "
               "{res} grid with UniRes {cite}, a model-based multi-contrast super-resolution "
               "method that inverts a slice-profile forward model of every acquisition under "
               "a multi-channel total-variation prior (regularisation scale {reg_scale}); "
               "{coreg}"),
    "babyai": ("Isotropic T2-weighted images were predicted from the thick-slice T2w and the "
               "isotropic T1w of each session with BABY-AI {cite}, a residual 3-D U-Net "
               "applied in atlas space with sliding windows, and resampled onto the T1w grid."),
    "easysr": ("Through-plane resolution was increased with EasySR {cite}, a 3-D "
               "generative adversarial network applied along the thick-slice axis, with "
               "outputs on a {res} grid over each image's field of view."),
    "pccnn": ("Diffusion-weighted volumes at the requested directions were predicted with "
              "PCCNN {cite}, a spatio-angular convolutional network, from the acquired "
              "volumes of each shell."),
    "sh": ("Diffusion-weighted volumes at the requested directions were interpolated per "
           "shell with a regularised spherical-harmonic fit {cite}."),
    "linear": ("For comparison, images were resliced to {res} voxels over their field of view "
               "with trilinear interpolation."),
    "cubic": ("For comparison, images were resliced to {res} voxels over their field of view "
              "with cubic B-spline interpolation."),
}

#: references not held by a method's App adapter
_REFERENCES = {
    "sh": ("Descoteaux M, Angelino E, Fitzgibbons S, Deriche R. Regularized, fast, and "
           "robust analytical Q-ball imaging. Magn Reson Med 58:497-510 (2007); "
           "implementation: DIPY (Garyfallidis E et al. Front Neuroinform 8:8, 2014)."),
}
#: methods whose App adapter (``methods/<name>.py``) holds their ``CITATION``
_ADAPTERS = ("unires", "babyai", "easysr", "pccnn")
_SOFTWARE = ("pydra", "nibabel", "numpy", "scipy", "torch", "antspyx", "dipy")


def _reference(method: str) -> str | None:
    if method in _REFERENCES:
        return _REFERENCES[method]
    if method not in _ADAPTERS:
        return None
    import importlib

    return getattr(importlib.import_module(f".methods.{method}", __package__), "CITATION", None)


def _resolution(settings) -> str:
    vs = [float(v) for v in settings.output_resolution]
    return (f"{vs[0]:g} mm isotropic" if len(set(vs)) == 1
            else " x ".join(f"{v:g}" for v in vs) + " mm")


def boilerplate(settings, methods: list[str], versions: dict[str, str]) -> str:
    """The citation text (Markdown) for ``methods`` as run with ``settings``."""
    refs: list[str] = []
    sentences = []
    for method in methods:
        template = _SENTENCES.get(method)
        if template is None:
            continue
        ref = _reference(method)
        cite = ""
        if ref:
            refs.append(ref)
            cite = f"[{len(refs)}]"
        opts = settings.method_options.get(method, {})
        coreg = ("the images were first co-registered rigidly (ANTs)."
                 if opts.get("coregister", True) else "the image headers were trusted "
                 "for alignment (no co-registration).")
        sentences.append(template.format(cite=cite, res=_resolution(settings),
                                         reg_scale=opts.get("reg_scale", 4), coreg=coreg))
    used = ", ".join(f"{name} {versions[name]}" for name in _SOFTWARE
                     if versions.get(name, "not installed") != "not installed")
    lines = [
        "# Methods (boilerplate)",
        "",
        "*Written by srprep for this run; edit freely. Please cite the references below.*",
        "",
        f"Results included in this manuscript come from processing performed with srprep "
        f"{__version__}, a BIDS App whose processing steps are Pydra tasks ({used}).",
        "",
        *[s + "\n" for s in sentences],
    ]
    if refs:
        lines += ["## References", "", *[f"{i}. {ref}" for i, ref in enumerate(refs, 1)], ""]
    return "\n".join(lines)


def write_citation(settings, methods: list[str]) -> Path:
    """Write ``<output>/logs/CITATION.md`` and ``CITATION.html`` for ``methods``."""
    from .provenance import package_versions

    text = boilerplate(settings, methods, package_versions())
    folder = Path(settings.output_dir) / "logs"
    write_text(folder / "CITATION.html", _to_html(text))
    return write_text(folder / "CITATION.md", text)


def _to_html(markdown: str) -> str:
    """The few Markdown forms :func:`boilerplate` writes, as HTML."""
    body = []
    for block in markdown.strip().split("\n\n"):
        block = html.escape(block.strip())
        if block.startswith("# "):
            body.append(f"<h1>{block[2:]}</h1>")
        elif block.startswith("## "):
            body.append(f"<h2>{block[3:]}</h2>")
        elif re.match(r"\d+\. ", block):
            items = [re.sub(r"^\d+\. ", "", ln) for ln in block.splitlines()]
            body.append("<ol>" + "".join(f"<li>{i}</li>" for i in items) + "</ol>")
        else:
            block = re.sub(r"^\*(.*)\*$", r"<em>\1</em>", block)
            body.append(f"<p>{block}</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>srprep citation"
            "</title></head><body>" + "\n".join(body) + "</body></html>\n")
