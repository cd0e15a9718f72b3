"""BIDS adapter of the ``linear``/``cubic`` reslicing baselines."""
from __future__ import annotations

from functools import partial

from ..naming import resolution_label
from .base import Derivative, Job, MethodSpec


def _plan(method: str, sources, settings) -> list[Job]:
    return [Job(method, [s]) for s in sources]


def _build(method: str, jobs: list[Job], settings):
    from srprep.pipelines.baseline import ResliceWorkflow

    wf = ResliceWorkflow(voxel_size=list(settings.output_resolution), interpolation=method)
    return wf.split(("in_file", "source_name"),
                    in_file=[str(j.sources[0].path) for j in jobs],
                    source_name=[j.sources[0].relpath for j in jobs])


def _collect(method: str, job: Job, outputs: dict, settings) -> list[Derivative]:
    src = job.sources[0]
    res = resolution_label(settings.output_resolution)
    name = src.name.with_entities(res=res, desc=method).replace(extension=".nii.gz")
    vs = [float(v) for v in settings.output_resolution]
    sidecar = {
        "Description": f"{method} ({'B-spline' if method == 'cubic' else 'trilinear'}) "
                       f"reslicing of the source to {vs} mm voxels over its field of view.",
        "Sources": [src.uri],
        "SpatialReference": src.uri,
        "Resolution": {res: f"{' x '.join(f'{v:g}' for v in vs)} mm voxels"},
        "SkullStripped": False,
        "srprep": {"Method": method, "Parameters": {"voxel_size_mm": vs,
                                                    "interpolation": method},
                   "Geometry": outputs["geometry"]},
    }
    extra = {".bval": src.bval, ".bvec": src.bvec} if src.datatype == "dwi" else {}
    return [Derivative(name, src.datatype, outputs["out_file"], sidecar, [src], extra)]


def _spec(method: str, text: str) -> MethodSpec:
    return MethodSpec(
        name=method, description=text, datatypes=("anat", "dwi"),
        plan=partial(_plan, method), build=partial(_build, method),
        collect=partial(_collect, method), output_fields=("out_file", "geometry"),
    )


LINEAR = _spec("linear", "trilinear reslicing to the output resolution (baseline)")
CUBIC = _spec("cubic", "cubic B-spline reslicing to the output resolution (baseline)")
