"""BIDS adapter of EasySR: one job per thick-slice anatomical image."""
from __future__ import annotations

import logging
from pathlib import Path

from ..naming import resolution_label
from ..query import SourceImage
from .base import Derivative, Job, MethodSpec

log = logging.getLogger("srprep")

CITATION = ("Heo H. et al. EasySR: 3D GAN-based through-plane super-resolution of rat brain "
            "MRI. https://github.com/hwonheo/easysr (2024).")
#: contrasts a structural SR model can be applied to
SUFFIXES = ("T1w", "T2w", "PDw", "T2starw", "FLAIR", "inplaneT1", "inplaneT2", "PDT2", "UNIT1")


def _thick(src: SourceImage) -> bool:
    from srprep.core.nifti import check_header
    from srprep.core.throughplane import thick_axis

    import numpy as np

    zooms = check_header(src.path, allow_4d=False).zooms
    try:
        thick_axis(np.diag(list(zooms) + [1.0]))
    except ValueError:
        return False
    return True


def _plan(sources: list[SourceImage], settings) -> list[Job]:
    jobs = []
    for s in sources:
        if s.datatype != "anat" or s.name.suffix not in SUFFIXES:
            continue
        if _thick(s):
            jobs.append(Job("easysr", [s]))
        else:
            log.info("easysr: %s is isotropic, nothing to super-resolve", s.name.filename)
    return jobs


def _options(settings) -> dict:
    return dict(settings.method_options.get("easysr", {}))


def weights_file(settings) -> Path:
    """The generator checkpoint selected by ``--easysr-model``."""
    from srprep.models import weights

    model = _options(settings).get("model", "mixed")
    if model in ("mixed", "t1"):
        return weights.path(f"easysr-g-{model}", settings.weights_dir)
    return Path(model)


def _build(jobs: list[Job], settings):
    from srprep.models.easysr import model_info
    from srprep.pipelines.easysr import EasySRWorkflow

    opts = _options(settings)
    w = weights_file(settings)
    wf = EasySRWorkflow(weights=str(w), factor=int(model_info(w)["factor"]),
                        resolution=opts.get("resolution"), template=opts.get("template"))
    return wf.split(("in_file", "source_name"),
                    in_file=[str(j.sources[0].path) for j in jobs],
                    source_name=[j.sources[0].relpath for j in jobs])


def _collect(job: Job, outputs: dict, settings) -> list[Derivative]:
    from srprep.models import weights

    src = job.sources[0]
    prep = outputs["prepare_info"]
    r = float(prep["resolution"])
    res = resolution_label(r)
    name = src.name.with_entities(res=res, desc="easysr").replace(extension=".nii.gz")
    w = weights_file(settings)
    opts = _options(settings)
    sidecar = {
        "Description": f"EasySR through-plane super-resolution (x{prep['factor']} generator "
                       f"along the {prep['thickness_mm']:g} mm slice axis) to {r:g} mm "
                       "isotropic voxels over the source's field of view.",
        "Sources": [src.uri],
        "SpatialReference": src.uri,
        "Resolution": {res: f"{r:g} x {r:g} x {r:g} mm voxels"},
        "SkullStripped": False,
        "srprep": {"Method": "easysr", "Citation": CITATION,
                   "Weights": {"file": w.name, "sha256": weights.sha256(w)},
                   "Parameters": {"model": opts.get("model", "mixed"), "resolution_mm": r,
                                  "template": opts.get("template")},
                   "Geometry": {k: prep[k] for k in ("thick_axis", "thickness_mm", "factor")},
                   "Intensity": {"map": "x' = (x - offset) * gain (inverted on output)",
                                 **prep["scale"]},
                   "Inference": outputs["infer_info"]},
    }
    return [Derivative(name, "anat", outputs["out_file"], sidecar, [src])]


EASYSR = MethodSpec(
    name="easysr",
    description="EasySR: 3-D generator for through-plane super-resolution (weights)",
    datatypes=("anat",), plan=_plan, build=_build, collect=_collect,
    output_fields=("out_file", "prepare_info", "infer_info"), needs_weights=True,
    gpu_nodes=("infer",),
)
