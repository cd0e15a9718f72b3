"""BIDS adapter of EasySR: one job per thick-slice anatomical image."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

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


#: an input voxel this many times finer or coarser than the training data's is outside the
#: generator's domain (the released rat models on 1 mm human data lose to cubic)
DOMAIN_RATIO = 2.0


def training_domain(settings) -> tuple[float | None, str]:
    """Voxel size (mm) the chosen generator was trained on, and a description: from the
    weights registry for released models, from the sidecar for srprep-trained ones."""
    from srprep.models import weights

    model = _options(settings).get("model", "mixed")
    if model in ("mixed", "t1"):
        entry = weights.entry(f"easysr-g-{model}")
        return entry.voxel_mm, entry.domain or ""
    side = Path(model).with_suffix(".json")
    if side.is_file():
        import json

        voxel = json.loads(side.read_text()).get("voxel_mm")
        return (float(voxel), f"trained at {float(voxel):g} mm") if voxel else (None, "")
    return None, ""


def _domain_warning(src: SourceImage, settings) -> list[str]:
    from srprep.core.nifti import check_header
    from srprep.core.throughplane import inplane_resolution, thick_axis

    trained, domain = training_domain(settings)
    if not trained:
        return []
    zooms = check_header(src.path, allow_4d=False).zooms
    affine = np.diag(list(zooms) + [1.0])
    inplane = inplane_resolution(affine, thick_axis(affine))
    if max(inplane / trained, trained / inplane) <= DOMAIN_RATIO:
        return []
    return [f"{src.name.filename}: {inplane:g} mm in-plane voxels are far from the "
            f"generator's training data ({domain}); expect results worse than cubic "
            "interpolation unless the model was trained on data like these (srprep-train easysr)"]


def _plan(sources: list[SourceImage], settings) -> list[Job]:
    jobs = []
    for s in sources:
        if s.datatype != "anat" or s.name.suffix not in SUFFIXES:
            continue
        if _thick(s):
            jobs.append(Job("easysr", [s], {"warnings": _domain_warning(s, settings)}))
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
                        resolution=opts.get("resolution"), template=opts.get("template"),
                        seed=settings.seed)
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
