"""BIDS adapter of BABY-AI: one job per thick-slice T2w, guided by the session's T1w."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..naming import resolution_label
from ..query import SourceImage
from .base import Derivative, Job, MethodSpec

CITATION = ("Lennartsson A. Anisotropic to Isotropic Reconstruction of Infant Brain MRI with "
            "Deep Learning. Master's thesis, Lund University (LUP 9222513).")


def _zooms(src: SourceImage) -> np.ndarray:
    from srprep.core.nifti import check_header

    return np.array(check_header(src.path, allow_4d=False).zooms)


def _plan(sources: list[SourceImage], settings) -> list[Job]:
    sessions: dict[str | None, list[SourceImage]] = defaultdict(list)
    for s in sources:
        if s.datatype == "anat" and s.name.suffix in ("T1w", "T2w"):
            sessions[s.session].append(s)
    jobs = []
    for session in sorted(sessions, key=lambda x: x or ""):
        t1s = [s for s in sessions[session] if s.name.suffix == "T1w"]
        t2s = [s for s in sessions[session] if s.name.suffix == "T2w"]
        if not t1s or not t2s:
            continue
        t1 = min(t1s, key=lambda s: (float(_zooms(s).max()), s.relpath))  # most isotropic
        jobs += [Job("babyai", [t1, t2]) for t2 in t2s]
    return jobs


def _options(settings) -> dict:
    return dict(settings.method_options.get("babyai", {}))


def _atlas(settings) -> str:
    from srprep.core.templates import write_mni152

    opts = _options(settings)
    if opts.get("atlas"):
        return str(opts["atlas"])
    return str(write_mni152(settings.work_dir / "templates" / "mni152_1mm_182x218x182.nii.gz"))


def _build(jobs: list[Job], settings):
    from srprep.models import weights
    from srprep.pipelines.babyai import BabyAIWorkflow

    opts = _options(settings)
    wf = BabyAIWorkflow(atlas=_atlas(settings),
                        weights=str(weights.path("babyai", settings.weights_dir)),
                        overlap=float(opts.get("overlap", 0.5)),
                        mode=str(opts.get("mode", "constant")),
                        batch_size=int(opts.get("batch_size", 4)))
    return wf.split(("t1w", "t2w", "source_names"),
                    t1w=[str(j.sources[0].path) for j in jobs],
                    t2w=[str(j.sources[1].path) for j in jobs],
                    source_names=[[s.relpath for s in j.sources] for j in jobs])


def _collect(job: Job, outputs: dict, settings) -> list[Derivative]:
    from srprep.models import weights

    t1, t2 = job.sources
    vs = [float(v) for v in _zooms(t1)]
    res = resolution_label(vs)
    name = t2.name.with_entities(res=res, desc="babyai").replace(extension=".nii.gz")
    w = weights.path("babyai", settings.weights_dir)
    sidecar = {
        "Description": "BABY-AI (residual U-Net) super-resolution of the thick-slice T2w, "
                       "guided by the isotropic T1w, on the T1w's native grid.",
        "Sources": [t2.uri, t1.uri],
        "SpatialReference": t1.uri,
        "Resolution": {res: f"{' x '.join(f'{v:g}' for v in vs)} mm voxels (the T1w grid)"},
        "SkullStripped": False,
        "srprep": {"Method": "babyai", "Citation": CITATION,
                   "Weights": {"file": w.name, "sha256": weights.sha256(w)},
                   "Atlas": _atlas(settings), "Parameters": _options(settings),
                   "Inference": outputs["info"]},
    }
    return [Derivative(name, "anat", outputs["out_file"], sidecar, [t2, t1])]


BABYAI = MethodSpec(
    name="babyai",
    description="BABY-AI: anisotropic T2w + isotropic T1w -> isotropic T2w (residual U-Net)",
    datatypes=("anat",), plan=_plan, build=_build, collect=_collect,
    output_fields=("out_file", "info"), needs_weights=True, gpu_nodes=("infer",),
)
