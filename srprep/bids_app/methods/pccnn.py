"""BIDS adapter of PCCNN, and of its baseline ``sh`` (spherical-harmonic interpolation):
both synthesise a dMRI series on a target scheme through one workflow
(:class:`srprep.pipelines.angular.AngularWorkflow`)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from ..query import SourceImage
from .base import Derivative, Job, MethodSpec

CITATION = ("Lyon M, Armitage P, Álvarez MA. Spatio-Angular Convolutions for Super-resolution "
            "in Diffusion MRI. NeurIPS 2023 (arXiv:2306.00854).")


def _options(settings) -> dict:
    return dict(settings.method_options.get("angular", {}))


def _plan(method: str, sources: list[SourceImage], settings) -> list[Job]:
    return [Job(method, [s]) for s in sources if s.datatype == "dwi"]


def weights_file(settings) -> Path:
    """PCCNN checkpoint: ``--pccnn-model`` or the registry file of ``--pccnn-variant``."""
    from srprep.models import weights

    opts = _options(settings)
    if opts.get("model"):
        return Path(opts["model"])
    return weights.path(opts.get("variant", "PCCNN").lower(), settings.weights_dir)


def _build(method: str, jobs: list[Job], settings):
    from srprep.pipelines.angular import AngularWorkflow

    opts = _options(settings)
    kw = {}
    if method == "pccnn":
        from srprep.models.weights import pccnn_max_context

        # resolved here: the task sees a copy of the weights file without its sidecar
        max_context = opts.get("max_context")
        checkpoint = weights_file(settings)
        kw = {"weights": str(checkpoint),
              "variant": None if opts.get("model") else opts.get("variant", "PCCNN"),
              "context_mode": opts.get("context", "shell"),
              "max_context": pccnn_max_context(checkpoint)
              if max_context is None else int(max_context),
              "batch_size": int(opts.get("batch_size", 4))}
    wf = AngularWorkflow(method=method, factor=int(opts.get("factor", 2)),
                         target_bval=opts.get("target_bval"), target_bvec=opts.get("target_bvec"),
                         seed=0 if settings.seed is None else settings.seed, **kw)
    return wf.split(("in_file", "bval", "bvec", "source_name"),
                    in_file=[str(j.sources[0].path) for j in jobs],
                    bval=[str(j.sources[0].bval) for j in jobs],
                    bvec=[str(j.sources[0].bvec) for j in jobs],
                    source_name=[j.sources[0].relpath for j in jobs])


def _collect(method: str, job: Job, outputs: dict, settings) -> list[Derivative]:
    src = job.sources[0]
    name = src.name.with_entities(desc=method).replace(extension=".nii.gz")
    opts = _options(settings)
    scheme = outputs["scheme"]
    srprep: dict = {"Method": method, "TargetScheme": scheme, "Prediction": outputs["info"]}
    if method == "pccnn":
        from srprep.models import weights

        w = weights_file(settings)
        srprep.update(Citation=CITATION, Weights={"file": w.name, "sha256": weights.sha256(w)},
                      Parameters={"variant": opts.get("variant", "PCCNN"),
                                  "context": opts.get("context", "shell")})
        text = (f"PCCNN ({opts.get('variant', 'PCCNN')}) angular super-resolution onto "
                f"{scheme['source']} ({scheme['volumes']} volumes); b=0 volumes copied.")
    else:
        text = (f"Spherical-harmonic angular interpolation per shell onto {scheme['source']} "
                f"({scheme['volumes']} volumes); b=0 targets get the mean b=0.")
    sidecar = {"Description": text, "Sources": [src.uri], "SpatialReference": src.uri,
               "SkullStripped": False, "srprep": srprep}
    extra = {".bval": Path(outputs["bval"]), ".bvec": Path(outputs["bvec"])}
    return [Derivative(name, "dwi", outputs["out_file"], sidecar, [src], extra)]


def _spec(method: str, text: str, needs_weights: bool) -> MethodSpec:
    return MethodSpec(name=method, description=text, datatypes=("dwi",),
                      plan=partial(_plan, method), build=partial(_build, method),
                      collect=partial(_collect, method),
                      output_fields=("out_file", "bval", "bvec", "info", "scheme"),
                      needs_weights=needs_weights, gpu_nodes=("infer",) if needs_weights else ())


PCCNN = _spec("pccnn", "PCCNN: dMRI angular super-resolution (4 variants; weights)", True)
SH = _spec("sh", "spherical-harmonic angular interpolation of dMRI (baseline)", False)
