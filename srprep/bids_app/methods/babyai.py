"""BIDS adapter of BABY-AI: one job per thick-slice (anisotropic) T2w, guided by the
session's T1w; isotropic T2w images are skipped with a warning."""
from __future__ import annotations

import logging
from pathlib import Path
from collections import defaultdict

import numpy as np

from ..naming import resolution_label
from ..query import SourceImage
from .base import Derivative, Job, MethodSpec, grid_space

log = logging.getLogger("srprep")

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
        for t2 in t2s:
            zooms = _zooms(t2)
            if zooms.max() <= 1.2 * zooms.min():        # the training scan's isotropy rule
                log.warning("babyai: %s is isotropic (%s mm): nothing to super-resolve, "
                            "skipped", t2.name.filename, "x".join(f"{z:g}" for z in zooms))
                continue
            jobs.append(Job("babyai", [t1, t2]))
    return jobs


def _options(settings) -> dict:
    return dict(settings.method_options.get("babyai", {}))


def _atlas(settings) -> str:
    """The atlas whose grid the network works on.

    ``--atlas FILE`` or ``--atlas mni152`` when given; otherwise the atlas the weights
    were trained on: recorded beside weights from ``srprep-train babyai``, and for the
    released network its infant atlas from the weights registry (a one-line error naming
    ``srprep-weights fetch babyai-atlas`` when it is not there).  The adult MNI152 is
    never a silent default: the released network was trained on the infant atlas grid."""
    import json

    from srprep.core.templates import write_mni152
    from srprep.models import weights

    def mni(voxel_mm: float) -> str:
        shape = "x".join(str(int(round(n / voxel_mm))) for n in (182, 218, 182))
        return str(write_mni152(settings.work_dir / "templates"
                                / f"mni152_{voxel_mm:g}mm_{shape}.nii.gz", voxel_mm))

    atlas = _options(settings).get("atlas")
    if atlas == "mni152":
        return mni(1.0)
    if atlas:
        return str(atlas)
    side = weights.path("babyai", settings.weights_dir).with_suffix(".json")
    trained = json.loads(side.read_text()).get("atlas") if side.is_file() else None
    if trained and trained.get("template") == "mni152":
        return mni(float(trained.get("resolution", 1.0)))
    if trained and Path(trained.get("file", "")).is_file():
        return str(trained["file"])
    return str(weights.path("babyai-atlas", settings.weights_dir))


def _build(jobs: list[Job], settings):
    from srprep.models import weights
    from srprep.pipelines.babyai import BabyAIWorkflow

    opts = _options(settings)
    wf = BabyAIWorkflow(atlas=_atlas(settings),
                        weights=str(weights.path("babyai", settings.weights_dir)),
                        overlap=float(opts.get("overlap", 0.5)),
                        mode=str(opts.get("mode", "constant")),
                        batch_size=int(opts.get("batch_size", 4)), seed=settings.seed)
    return wf.split(("t1w", "t2w", "source_names"),
                    t1w=[str(j.sources[0].path) for j in jobs],
                    t2w=[str(j.sources[1].path) for j in jobs],
                    source_names=[[s.relpath for s in j.sources] for j in jobs])


def _collect(job: Job, outputs: dict, settings) -> list[Derivative]:
    from srprep.models import weights

    t1, t2 = job.sources
    vs = [float(v) for v in _zooms(t1)]
    res = resolution_label(vs)
    space, _ = grid_space(outputs["out_file"], [t2], [t1])     # the T1w grid: space-T1w
    name = t2.name.with_entities(space=space, res=res, desc="babyai").replace(extension=".nii.gz")
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
                   "Alignment": outputs.get("alignment"), "Inference": outputs["info"]},
    }
    return [Derivative(name, "anat", outputs["out_file"], sidecar, [t2, t1])]


BABYAI = MethodSpec(
    name="babyai",
    description="BABY-AI: anisotropic T2w + isotropic T1w -> isotropic T2w (residual U-Net)",
    datatypes=("anat",), plan=_plan, build=_build, collect=_collect,
    output_fields=("out_file", "info", "alignment"), needs_weights=True, gpu_nodes=("infer",),
)
