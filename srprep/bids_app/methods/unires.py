"""BIDS adapter of UniRes: one reconstruction per session, one channel per distinct
acquisition (suffix and every entity but ``run-``); runs of one acquisition are repeats."""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..naming import BIDSName, resolution_label
from ..query import SourceImage
from .base import Derivative, Job, MethodSpec, grid_space

log = logging.getLogger("srprep")

#: contrasts listed first become the co-registration reference (high-res structurals)
_REFERENCE_ORDER = ("T1w", "UNIT1", "T2w", "FLAIR", "PDw", "PD", "T2starw")

CITATION = ("Brudfors M, Balbastre Y, Nachev P, Ashburner J. MRI super-resolution using "
            "multi-channel total variation. MIUA 2018; and A Tool for Super-Resolving "
            "Multimodal Clinical MRI, arXiv:1909.01140.")


def _suffix_rank(suffix: str) -> tuple[int, str]:
    return (_REFERENCE_ORDER.index(suffix) if suffix in _REFERENCE_ORDER else 99, suffix)


#: ``part-`` values that are not magnitude images (never an anatomical channel)
_NOT_MAGNITUDE = ("phase", "real", "imag")


def _channel_key(src: SourceImage) -> str:
    """What makes an image its own channel: every entity but sub/ses/run, and the suffix.

    Images differing only by ``run-`` are repeats of one channel (fitted jointly); an
    ``acq-mprage`` and an ``acq-spgr`` T1w, or a ``ce-`` contrast-enhanced T1w, are
    different channels."""
    ents = [f"{k}-{v}" for k, v in src.name.entities.items() if k not in ("sub", "ses", "run")]
    return "_".join(ents + [src.name.suffix])


def _usable(src: SourceImage, include_echoes: bool) -> bool:
    ents = src.name.entities
    if ents.get("part") in _NOT_MAGNITUDE:
        log.warning("unires: %s is a part-%s image, not an anatomical channel: skipped",
                    src.name.filename, ents["part"])
        return False
    if "echo" in ents and not include_echoes:
        log.warning("unires: %s is one echo of a multi-echo series: skipped "
                    "(--include-echoes makes each echo a channel)", src.name.filename)
        return False
    return True


def _plan(sources: list[SourceImage], settings) -> list[Job]:
    include_echoes = bool(settings.method_options.get("unires", {}).get("include_echoes"))
    sessions: dict[str | None, list[SourceImage]] = defaultdict(list)
    for s in sources:
        if s.datatype == "anat" and _usable(s, include_echoes):
            sessions[s.session].append(s)
    jobs = []
    for session in sorted(sessions, key=lambda x: x or ""):
        images = sorted(sessions[session], key=lambda s: (_suffix_rank(s.name.suffix),
                                                          _channel_key(s), s.relpath))
        keys = list(dict.fromkeys(_channel_key(s) for s in images))
        channels = [keys.index(_channel_key(s)) for s in images]
        job = Job("unires", images, {"channels": channels, "names": keys})
        job.params.update(_label_maps(images, settings))
        job.params["warnings"] = _memory_warnings(images, len(keys), settings)
        jobs.append(job)
    return jobs


def _label_maps(images: list[SourceImage], settings) -> dict:
    """Label maps (``--label-file``) of this session and the input each one belongs to.

    A label map belongs to the session its ``sub``/``ses`` entities name and is carried
    along with the input whose grid (shape and affine) it shares; one that matches no
    input of its session is an error, not silently dropped.
    """
    import nibabel as nib

    files = settings.method_options.get("unires", {}).get("label_files", [])
    first = images[0].name.entities
    mine = []
    for f in files:
        ent = BIDSName.parse(f).entities
        if ent.get("sub") == first["sub"] and ent.get("ses") == first.get("ses"):
            mine.append(f)
    hosts = []
    grids = [nib.load(str(s.path)) for s in images]
    for f in mine:
        lab = nib.load(f)
        match = [i for i, g in enumerate(grids) if g.shape[:3] == lab.shape[:3]
                 and np.allclose(g.affine, lab.affine, atol=1e-3)]
        if not match:
            raise ValueError(f"label map {Path(f).name} shares the grid (shape and affine) "
                             "of none of the session's anatomical images")
        hosts.append(match[0])
    return {"label_files": mine, "label_hosts": hosts}


def _memory_warnings(images: list[SourceImage], n_channels: int, settings) -> list[str]:
    """Compare the fit's working memory (from the headers' output grid) with --mem."""
    import nibabel as nib

    from srprep.models.unires.grid import estimate_memory_gb, output_grid

    if not settings.mem_gb:
        return []
    headers = [nib.load(str(s.path)) for s in images]
    rule = settings.method_options.get("unires", {}).get("grid", "auto")
    _, shape, _, _ = output_grid([h.affine for h in headers], [h.shape[:3] for h in headers],
                                 settings.output_resolution, rule)
    need = estimate_memory_gb(n_channels, len(images), int(np.prod(shape)))
    if need <= settings.mem_gb:
        return []
    return [f"unires needs about {need:.1f} GB for a {shape} grid but --mem is "
            f"{settings.mem_gb:g} GB: use a coarser --output-resolution or more memory"]


def options(settings) -> dict:
    """UniRes settings for the fit task from the run settings."""
    opts = dict(settings.method_options.get("unires", {}))
    opts.pop("label_files", None)
    opts.pop("include_echoes", None)             # planning only
    if opts.pop("denoising", False):
        opts["voxel_size"] = None
    else:
        opts["voxel_size"] = [float(v) for v in settings.output_resolution]
    return opts


def _build(jobs: list[Job], settings):
    from srprep.pipelines.unires import UniResWorkflow

    opts = options(settings)
    common = opts.pop("common_output", False)
    coreg = opts.pop("coregister", True)
    if settings.seed is not None:       # --random-seed: the registrations' sampling
        opts["seed"] = settings.seed
    wf = UniResWorkflow(options={**opts, "common_output": common}, coregister=coreg)
    return wf.split(("in_files", "channels", "names", "source_names", "label_files",
                     "label_hosts"),
                    in_files=[[str(s.path) for s in j.sources] for j in jobs],
                    channels=[j.params["channels"] for j in jobs],
                    names=[j.params["names"] for j in jobs],
                    source_names=[[s.relpath for s in j.sources] for j in jobs],
                    label_files=[j.params.get("label_files", []) for j in jobs],
                    label_hosts=[j.params.get("label_hosts", []) for j in jobs])


def _common_name(repeats: list[SourceImage]) -> BIDSName:
    """Entities shared by all repeats of a channel: only a ``run-`` that differs between
    them is dropped (every other entity is part of the channel)."""
    first = repeats[0].name
    shared = {k: v for k, v in first.entities.items()
              if all(r.name.entities.get(k) == v for r in repeats)}
    return BIDSName(shared, first.suffix, ".nii.gz")


_PER_IMAGE = ("noise_sd", "noise_method", "contrast", "interleave_factors",
              "coregistration")


def _channel_summary(summary: dict, channels: list[int], c: int) -> dict:
    """The fit summary with per-input lists restricted to channel ``c``'s inputs."""
    out = {}
    for key, value in summary.items():
        if key in _PER_IMAGE and isinstance(value, list) and len(value) == len(channels):
            value = [v for v, ch in zip(value, channels) if ch == c]
        out[key] = value
    return out


def _collect(job: Job, outputs: dict, settings) -> list[Derivative]:
    summary = outputs["summary"]
    res = resolution_label(summary["grid_voxel_size"])
    vs = summary["grid_voxel_size"]
    reference = job.sources[0]
    opts = options(settings)
    derivatives = []
    atlas = summary.get("atlas")
    transform = _atlas_transform(reference, atlas) if atlas else None
    for c, (name, out_file) in enumerate(zip(job.params["names"], outputs["out_files"])):
        repeats = [s for s, ch in zip(job.sources, job.params["channels"]) if ch == c]
        if atlas:    # --common-output: the template's space, the transform exported
            space, reference_uri = atlas["template"], atlas["template"]
        else:        # on another input's lattice (the T1w's, grid "auto"): space-<suffix>
            space, on = grid_space(out_file, repeats,
                                   [s for s in job.sources if s not in repeats])
            reference_uri = (on or reference).uri
        bids = _common_name(repeats).with_entities(space=space, res=res, desc="unires")
        sidecar = {
            "Description": "UniRes multi-contrast super-resolution (MTV prior, slice-profile "
                           "forward model) of the session's anatomical images.",
            "Sources": [s.uri for s in repeats],
            "SpatialReference": reference_uri,
            "Resolution": {res: f"{' x '.join(f'{v:g}' for v in vs)} mm voxels"},
            "SkullStripped": False,
            "srprep": {
                "Method": "unires", "Citation": CITATION,
                "CoRegisteredWith": [s.uri for s in job.sources],
                "Parameters": {k: v for k, v in opts.items()},
                "Fit": _channel_summary(summary, job.params["channels"], c),
            },
        }
        if transform is not None:   # the exported transform, not the work directory's copy
            sidecar["srprep"]["Fit"]["atlas"] = {**sidecar["srprep"]["Fit"]["atlas"],
                                                 "file": transform.relpath}
        derivatives.append(Derivative(bids, "anat", out_file, sidecar, repeats))
    if transform is not None:
        derivatives.append(transform)
    label_outs = outputs.get("label_out_files") or []
    for f, host, out_file in zip(job.params.get("label_files", []),
                                 job.params.get("label_hosts", []), label_outs):
        derivatives.append(_label_derivative(Path(f), job.sources[host], out_file,
                                             {res: f"{' x '.join(f'{v:g}' for v in vs)} mm "
                                                   "voxels"}, settings))
    return derivatives


def _atlas_transform(reference: SourceImage, atlas: dict) -> Derivative:
    """``--common-output``'s alignment as fMRIPrep names transforms:
    ``sub-<l>[_ses-<l>]_from-<suffix>_to-<template>_mode-image_xfm.txt`` (ITK text; as
    ITK resamples, it maps template points to points of the source image)."""
    first = BIDSName.parse(reference.path.name)
    keep = {k: v for k, v in first.entities.items() if k in ("sub", "ses")}
    name = BIDSName(keep, "xfm", ".txt").with_entities(
        **{"from": first.suffix, "to": atlas["template"], "mode": "image"})
    kind = "7-parameter similarity (rigid + isotropic scale)" \
        if atlas["transform"] == "similarity" else "rigid (6 parameters)"
    sidecar = {
        "Description": f"Alignment of {first.suffix} to {atlas['template']} used by UniRes "
                       f"--common-output: {kind}, ITK/ANTs text format, template (fixed) "
                       "point -> image (moving) point in LPS millimetres.",
        "Sources": [reference.uri],
        "FromSpace": first.suffix, "ToSpace": atlas["template"],
        "Type": atlas["transform"], "IsotropicScale": atlas["scale"],
        "WholeHeadTemplate": atlas["whole_head"],
        "srprep": {"Method": "unires", "MatrixRAS": atlas["matrix"]},
    }
    return Derivative(name, "anat", Path(atlas["file"]), sidecar, [reference])


def _label_derivative(label_file: Path, host: SourceImage, out_file, resolution: dict,
                      settings) -> Derivative:
    """A carried-along label map: the label file's entities, ``res``, ``desc``."""
    name = BIDSName.parse(label_file.name)
    desc = name.entities.get("desc")
    bids = BIDSName(dict(name.entities), name.suffix, ".nii.gz").with_entities(
        res=next(iter(resolution)), desc=f"{desc}Unires" if desc else "unires")
    try:
        source = f"bids:raw:{label_file.relative_to(settings.bids_dir.resolve()).as_posix()}"
    except ValueError:
        source = label_file.as_uri()
    sidecar = {
        "Description": "Label map carried onto the UniRes output grid: trilinear "
                       "interpolation of each label's one-hot map, then arg-max.",
        "Sources": [source, host.uri],
        "SpatialReference": host.uri,
        "Resolution": resolution,
        "srprep": {"Method": "unires", "Citation": CITATION},
    }
    extra = {}
    for lut in (label_file.with_name(label_file.name.split(".")[0] + ".tsv"),):
        if lut.is_file():   # the dseg look-up table travels with the map
            extra[".tsv"] = lut
    return Derivative(bids, "anat", out_file, sidecar, [host], extra)


UNIRES = MethodSpec(
    name="unires",
    description="UniRes: model-based multi-contrast super-resolution (MTV prior, "
                "joint registration, slice-profile model); no weights needed",
    datatypes=("anat",), plan=_plan, build=_build, collect=_collect,
    output_fields=("out_files", "summary", "label_out_files"), gpu_nodes=("fit",),
)
