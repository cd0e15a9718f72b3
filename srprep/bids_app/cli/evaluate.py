"""``srprep-eval``: how good is each method on *your* high-resolution data?

For every session of a BIDS dataset with isotropic images (default: the demo's ground
truth), thick-slice acquisitions are simulated over a grid of slice thicknesses (any
float), axes, noise levels, slice profiles, gaps, obliquity (``--tilt``) and in-plane
voxel sizes (``--inplane``) -- all contrasts of a session degraded alike, those
named by ``--keep-iso`` given unchanged -- and written as a BIDS dataset with one
participant per case.  The App itself then runs every method on it (one graph, the same
workflows and options as ``srprep``), so what is scored is exactly what users get; each
output is scored on its truth's grid (resampled trilinearly when it lies elsewhere)
inside the brain mask (PSNR, SSIM, NRMSE) and downstream (grey/white-matter volumes from
a 3-class segmentation).  dMRI: each series' angular subsets (1 weighted volume in
``factor``) go through the App too, which synthesises the full scheme with every angular
method (``sh``, ``pccnn``); the held-out volumes are scored.
Output: a tidy ``evaluation.tsv``, plots and ``index.html``.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from srprep.core.atomic import write_text

log = logging.getLogger("srprep.eval")

FULL = {"thickness": [2.0, 3.0, 4.0, 5.0], "axes": [0, 1, 2], "noise": [0.0, 0.03],
        "factors": [2, 3]}
QUICK = {"thickness": [4.0], "axes": [2], "noise": [0.03], "factors": [2]}
COLUMNS = ["participant", "session", "image", "suffix", "method", "axis", "thickness_mm",
           "noise", "profile", "gap_mm", "tilt_deg", "inplane_mm", "degraded", "kept",
           "angular_factor", "psnr", "ssim", "nrmse", "rmse", "gm_ml_truth", "gm_ml", "gm_error_pct", "wm_ml_truth", "wm_ml",
           "wm_error_pct", "seconds", "case", "warning"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srprep-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("output_dir", type=Path, help="where evaluation.tsv and index.html go")
    p.add_argument("--bids-dir", type=Path, default=None,
                   help="dataset with isotropic images (default: build the demo and use its "
                        "ground truth)")
    p.add_argument("--participant-label", nargs="+", default=[])
    p.add_argument("--methods", nargs="+", default=["linear", "cubic", "unires"],
                   metavar="METHOD",
                   help=f"anatomical methods, run through the App's workflows (linear and "
                        f"cubic are always included): {', '.join(ANAT_METHODS)}")
    p.add_argument("--keep-iso", nargs="+", default=[], metavar="SUFFIX",
                   help="contrasts given to the methods unchanged instead of degraded "
                        "(e.g. T1w: multi-contrast UniRes' isotropic T1w; BABY-AI always "
                        "gets the isotropic T1w beside each degraded T2w; "
                        "or a real thick stack of the session, such as a clinical PD "
                        "beside a thin-slice T1w truth); they are not scored")
    p.add_argument("--mixed-axes", action="store_true",
                   help="degrade the contrasts of a session along different axes "
                        "(sagittal, coronal, axial in turn from each --axes value)")
    p.add_argument("--profile", nargs="+", choices=["box", "gauss"], default=["box"],
                   help="slice profiles of the simulated acquisitions")
    p.add_argument("--gap", nargs="+", type=float, default=[0.0], metavar="MM",
                   help="slice gaps (mm)")
    p.add_argument("--tilt", nargs="+", type=float, default=[0.0], metavar="DEG",
                   help="oblique slice stacks: tilt (degrees) about the left-right axis "
                        "(anterior-posterior for sagittal stacks)")
    p.add_argument("--inplane", nargs="+", type=float, default=[0.0], metavar="MM",
                   help="in-plane voxel size of the simulated acquisitions (mm; 0 = the "
                        "truth's)")
    p.add_argument("--unires-grid", choices=["auto", "mean", "inputs"], default="auto",
                   help="UniRes' output grid (srprep --output-grid)")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="weights for the learned methods (as srprep --weights-dir)")
    p.add_argument("--pccnn-model", type=Path, default=None,
                   help="a PCCNN checkpoint (e.g. from srprep-train pccnn) instead of the "
                        "official weights in --weights-dir (as srprep --pccnn-model)")
    p.add_argument("--angular-methods", nargs="+", choices=["sh", "pccnn"], default=["sh"],
                   help="dMRI methods, run through the App's workflows (pccnn: with "
                        "--weights-dir)")
    p.add_argument("--thickness", nargs="+", type=float, default=None, metavar="MM")
    p.add_argument("--axes", nargs="+", type=int, choices=[0, 1, 2], default=None)
    p.add_argument("--noise", nargs="+", type=float, default=None,
                   help="Rician noise s.d. as a fraction of the 99th percentile")
    p.add_argument("--angular-factors", nargs="+", type=int, default=None)
    p.add_argument("--quick", action="store_true",
                   help="reduced grid: 4 mm axial slices, 3%% noise, factor 2")
    p.add_argument("--no-segmentation", action="store_true", help="skip GM/WM volumes")
    p.add_argument("--no-dwi", action="store_true", help="skip dMRI images")
    p.add_argument("--demo-resolution", type=float, default=2.0)
    p.add_argument("-w", "--work-dir", type=Path, default=None)
    p.add_argument("--nprocs", type=int, default=1)
    p.add_argument("--max-iter", type=int, default=512, help="UniRes iterations cap")
    return p


def _images(bids: Path, labels: list[str]):
    """(participant, session, path, suffix, datatype) of every anat/dwi NIfTI."""
    from ..naming import BIDSName

    for path in sorted(bids.glob("sub-*/**/*.nii*")):
        if path.parent.name not in ("anat", "dwi"):
            continue
        name = BIDSName.parse(path.name)
        if labels and name.entities["sub"] not in labels:
            continue
        yield (name.entities["sub"], name.entities.get("ses", ""), path, name.suffix,
               path.parent.name)


def _grid(opts) -> dict:
    base = QUICK if opts.quick else FULL
    return {"thickness": opts.thickness or base["thickness"], "axes": opts.axes or base["axes"],
            "noise": opts.noise if opts.noise is not None else base["noise"],
            "factors": opts.angular_factors or base["factors"]}


#: anatomical methods srprep-eval runs (through the App's own workflows)
ANAT_METHODS = ("linear", "cubic", "unires", "unires-single", "babyai", "easysr")
#: ``unires-single``: UniRes on each degraded contrast alone (the App run on one-contrast
#: copies of every case), to measure what fitting the contrasts jointly adds


@dataclass
class Case:
    """One degraded session: a participant of the degraded dataset the App runs on."""

    participant: str
    session: str
    label: str                       #: its participant label in the degraded dataset
    axis: int
    thickness: float
    noise: float
    profile: str
    gap: float
    tilt: float                      #: obliquity of the slice stacks (degrees)
    inplane: float                   #: in-plane voxel size (mm; 0 = the truth's)
    voxel: float                     #: the truth's voxel size: the App's --vx
    truths: dict[str, Path]          #: suffix -> ground truth (the degraded contrasts)
    kept: list[str] = field(default_factory=list)   #: contrasts given at full resolution
    axes: dict[str, int] = field(default_factory=dict)   #: thick axis of each contrast

    def single(self, suffix: str) -> str:
        """Label of the one-contrast copy of this case (``unires-single``)."""
        return f"{self.label}s{sorted(self.truths).index(suffix)}"

    @property
    def paired(self) -> str:
        """Label of this case's BABY-AI copy: its degraded T2w beside the session's
        isotropic T1w, given unchanged (BABY-AI's inputs), when the T1w is degraded
        here."""
        return f"{self.label}b"


def _sessions(images, keep: list[str] = ()) -> tuple[dict, dict]:
    """(participant, session) -> {suffix: image}: the isotropic anatomical images (the
    ground truths) and the anisotropic ones, which can only be given unchanged
    (``--keep-iso``: a real thick stack beside a thin-slice truth, as in a clinical
    pair)."""
    from srprep.core.nifti import check_header

    truths: dict[tuple[str, str], dict[str, Path]] = {}
    others: dict[tuple[str, str], dict[str, Path]] = {}
    for sub, ses, path, suffix, datatype in images:
        if datatype != "anat":
            continue
        zooms = check_header(path).zooms[:3]
        if max(zooms) > 1.1 * min(zooms):
            if suffix not in keep:
                log.warning("%s is not isotropic (%s mm): not a ground truth", path.name,
                            " x ".join(f"{z:g}" for z in zooms))
            others.setdefault((sub, ses), {}).setdefault(suffix, path)
            continue
        truths.setdefault((sub, ses), {}).setdefault(suffix, path)
    return truths, others


def _cases(opts, grid, sessions, others=None) -> list[Case]:
    """Every (axis, thickness, noise, profile, gap, tilt, in-plane voxel size) case of
    every session whose thickness exceeds the truth's voxel size."""
    from srprep.core.nifti import check_header

    cases = []
    for (sub, ses), truths in sessions.items():
        given = (others or {}).get((sub, ses), {})
        kept = [s for s in opts.keep_iso if s in truths or s in given]
        degraded = {s: p for s, p in truths.items() if s not in kept}
        if not degraded:
            continue
        voxel = min(min(check_header(p).zooms[:3]) for p in degraded.values())
        combos = itertools.product(grid["axes"], grid["thickness"], grid["noise"],
                                   opts.profile, opts.gap, opts.tilt, opts.inplane)
        for k, (axis, thick, noise, profile, gap, tilt, inplane) in enumerate(
                c for c in combos if c[1] > voxel * 1.01):
            # --mixed-axes: the contrasts' thick axes differ (sagittal, coronal, axial in
            # turn), as in a clinical protocol, the case UniRes' joint prior is made for
            axes = {sfx: (axis + i) % 3 if opts.mixed_axes else axis
                    for i, sfx in enumerate(sorted(degraded))}
            cases.append(Case(sub, ses, f"{sub}c{k:03d}", axis, thick, noise, profile, gap,
                              tilt, inplane, voxel, degraded, kept, axes))
    return cases


def _copy_image(src: Path, dst: Path) -> None:
    """A NIfTI and its JSON sidecar (when it has one), unchanged."""
    import shutil

    shutil.copyfile(src, dst)
    sidecar = src.with_name(src.name.split(".nii")[0] + ".json")
    if sidecar.is_file():
        shutil.copyfile(sidecar, dst.with_name(dst.name.split(".nii")[0] + ".json"))


def _new_dataset(root: Path, name: str) -> None:
    """An empty raw BIDS dataset at ``root`` (a previous one there is replaced)."""
    import shutil

    from srprep.core.atomic import write_json

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    write_json(root / "dataset_description.json",
               {"Name": name, "BIDSVersion": "1.10.0", "DatasetType": "raw"})


def _method_warnings(status: dict, method: str, names: list[str] | None = None) -> str | None:
    """The App's warnings about ``method`` (e.g. "outside the training domain") from a
    participant's status record, without their prefixes; only those naming one of the
    input files ``names`` when given."""
    return "; ".join(w.split(": ", 2)[-1] for w in status.get("warnings", [])
                     if w.startswith(f"{method}: ")
                     and (names is None or any(f": {n}: " in w for n in names))) or None


def _degraded_dataset(cases: list[Case], sessions, root: Path, single: bool = False,
                      others=None, paired: bool = False) -> Path:
    """A BIDS dataset with one participant per case: the degraded contrasts (seeded
    Rician noise) and, unchanged, the contrasts kept at full resolution; with ``single``,
    also one participant per case and degraded contrast holding that image alone; with
    ``paired``, one per case with a degraded T2w and T1w (:attr:`Case.paired`)."""
    from srprep.core.atomic import write_json
    from srprep.core.synth import degrade_file

    _new_dataset(root, "srprep-eval degraded cases")
    for case in cases:
        anat = root / f"sub-{case.label}" / (f"ses-{case.session}" if case.session else "") / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        stem = f"sub-{case.label}" + (f"_ses-{case.session}" if case.session else "")
        for i, (suffix, truth) in enumerate(sorted(case.truths.items())):
            info = degrade_file(truth, anat / f"{stem}_{suffix}.nii.gz", axis=case.axes[suffix],
                                thickness=case.thickness, noise=case.noise,
                                seed=1000 * int(case.label[-3:]) + i, profile=case.profile,
                                gap=case.gap, tilt=case.tilt, inplane=case.inplane)
            write_json(anat / f"{stem}_{suffix}.json",
                       {"SliceThickness": case.thickness, "srprep-eval": info})
        key = (case.participant, case.session)
        for suffix in case.kept:            # as acquired, with its sidecar
            src = sessions[key].get(suffix) or (others or {})[key][suffix]
            _copy_image(src, anat / f"{stem}_{suffix}.nii.gz")
        if paired and {"T1w", "T2w"} <= set(case.truths):
            folder = root / f"sub-{case.paired}" / anat.relative_to(root / f"sub-{case.label}")
            folder.mkdir(parents=True, exist_ok=True)
            two = stem.replace(f"sub-{case.label}", f"sub-{case.paired}", 1)
            _copy_image(anat / f"{stem}_T2w.nii.gz", folder / f"{two}_T2w.nii.gz")
            _copy_image(sessions[key]["T1w"], folder / f"{two}_T1w.nii.gz")
        for suffix in sorted(case.truths) if single else ():
            label = case.single(suffix)
            alone = root / f"sub-{label}" / anat.relative_to(root / f"sub-{case.label}")
            alone.mkdir(parents=True, exist_ok=True)
            one = stem.replace(f"sub-{case.label}", f"sub-{label}", 1)
            _copy_image(anat / f"{stem}_{suffix}.nii.gz",   # the very same degraded image
                        alone / f"{one}_{suffix}.nii.gz")
    return root


def _on_truth_grid(estimate: Path, truth: Path, out: Path) -> Path:
    """The estimate on the truth's grid: as it is when it lies there, else resampled
    (trilinear), as a user overlaying it on the truth would."""
    from srprep.core.register import same_grid
    from srprep.core.resample import resample_to_reference_file

    if same_grid(estimate, truth, atol=1e-3):
        return estimate
    return resample_to_reference_file(estimate, truth, out, order=1, mode="nearest")


def _cost(method: dict, app_work: Path, label: str) -> float | None:
    """A method's seconds for one case: its tasks' wall times in this run, or, when its
    results were reused from the App's cache, as recorded when they were computed (every
    job folder of the method's cache)."""
    import json

    from ..workers import USAGE_FILE

    records = method.get("resources") or []
    if not records:
        for path in app_work.glob(f"*/sub-{label}/{method['name']}/*/{USAGE_FILE}"):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if rec.get("ok") and (path.parent / "_result.pklz").exists():
                records.append(rec)
    if not records:
        return method.get("seconds")
    return round(sum(float(r["seconds"]) for r in records), 2)


def _anat_rows(opts, grid, images, work: Path) -> list[dict]:
    """Degrade every session, run the App (its own workflows, one graph) on the degraded
    dataset with every method, and score each output against its truth."""
    import json

    from srprep.core.evaluate import score_files
    from srprep.core.mask import brain_mask_file

    from ..naming import BIDSName
    from .run import main as srprep_main

    sessions, others = _sessions(images, opts.keep_iso)
    cases = _cases(opts, grid, sessions, others)
    if not cases:
        log.warning("no anatomical case: no isotropic image with a slice thickness above "
                    "its voxel size")
        return []
    methods = list(dict.fromkeys(["linear", "cubic", *opts.methods]))
    single = "unires-single" in methods
    # BABY-AI needs the isotropic T1w: where the T1w is degraded too, it runs on a copy of
    # each case holding the degraded T2w and the session's T1w as acquired
    paired = "babyai" in methods and "T1w" not in opts.keep_iso
    methods = [m for m in methods if m != "unires-single" and not (paired and m == "babyai")]
    bids = _degraded_dataset(cases, sessions, work / "eval-bids", single, others, paired)
    derivatives, scored = work / "eval-app", work / "eval-scored"
    scored.mkdir(parents=True, exist_ok=True)
    runs = [(methods, {c.label: (c, None) for c in cases})]
    if single:
        runs.append((["unires"], {c.single(sfx): (c, ("unires-single", sfx))
                                  for c in cases for sfx in c.truths}))
    if paired:
        runs.append((["babyai"], {c.paired: (c, ("babyai", "T2w")) for c in cases
                                  if {"T1w", "T2w"} <= set(c.truths)}))
        if not runs[-1][1]:
            log.warning("babyai: no session has an isotropic T1w and T2w; not evaluated")
    for run_methods, labelled in runs:
        for voxel in sorted({c.voxel for c, _ in labelled.values()}):
            labels = [label for label, (c, _) in labelled.items() if c.voxel == voxel]
            argv = [str(bids), str(derivatives), "participant", "-w", str(work / "app"),
                    "--method", *run_methods, "--vx", f"{voxel:g}", "--nprocs",
                    str(opts.nprocs), "--omp-nthreads", "1", "--skip-bids-validation",
                    "--max-iter", str(opts.max_iter), "--participant-label", *labels]
            if opts.weights_dir:
                argv += ["--weights-dir", str(opts.weights_dir)]
            if "unires" in run_methods:
                argv += ["--output-grid", opts.unires_grid]
            log.info("srprep on %d degraded case(s) at %g mm: %s", len(labels), voxel,
                     " ".join(run_methods))
            if srprep_main(argv) == 2:
                raise RuntimeError("srprep could not run on the degraded cases (see above)")
    masks: dict[Path, Path] = {}
    rows, failures = [], []
    for label, (case, variant) in [item for _, labelled in runs for item in labelled.items()]:
        status = json.loads((derivatives / "logs" / f"sub-{label}_status.json").read_text())
        failures += [f"{label}: {e}" for e in status.get("errors", [])]
        for method in status.get("methods", []):
            name = variant[0] if variant else method["name"]
            given = [variant[1]] if variant else sorted(case.truths)   # degraded inputs
            kept = sorted(set(case.kept) | ({"T1w"} if name == "babyai" else set()))
            for output in method.get("outputs", []):
                path = derivatives / output["output"]
                suffix = BIDSName.parse(path.name).suffix
                truth = case.truths.get(suffix)
                if truth is None:        # a contrast kept at full resolution, a label map
                    continue
                if truth not in masks:
                    masks[truth] = scored / f"mask_{case.participant}_{case.session}_{suffix}.nii.gz"
                    brain_mask_file(truth, masks[truth])
                estimate = _on_truth_grid(path, truth, scored / (
                    f"{label}_{name}_{suffix}.nii.gz"))
                row = {"participant": case.participant, "session": case.session,
                       "image": truth.name, "suffix": suffix, "method": name,
                       "axis": case.axes[suffix], "thickness_mm": case.thickness,
                       "noise": case.noise, "profile": case.profile, "gap_mm": case.gap,
                       "tilt_deg": case.tilt, "inplane_mm": case.inplane or case.voxel,
                       "degraded": ",".join(given), "kept": ",".join(kept),
                       "case": case.label,
                       "seconds": _cost(method, work / "app", label),
                       "truth": str(truth),
                       "estimate": str(estimate)}
                names = [Path(i).name for i in output.get("inputs", [])]
                row["warning"] = _method_warnings(status, method["name"], names)
                row.update(score_files(truth, estimate, masks[truth], contrast=suffix,
                                       segment=not opts.no_segmentation))
                rows.append(row)
    if failures:
        raise RuntimeError(f"{len(failures)} case(s) failed; first: {failures[0]}")
    return rows


def _dwi_rows(opts, grid, images, work: Path) -> list[dict]:
    """Angular cases through the App: for every dMRI series and angular factor, the
    series' subset (all b=0, 1 weighted volume in ``factor``) is a participant of a
    dMRI BIDS dataset; the App synthesises the series' full scheme from it
    (``--target-bvals/--target-bvecs``) with every angular method, and the volumes held
    out are scored against the acquired ones inside the b=0 brain mask."""
    import json

    import nibabel as nib
    import numpy as np

    from srprep.core.angular import angular_subset_file, score_angular_file
    from srprep.core.atomic import write_json
    from srprep.core.nifti import save_image

    from .run import main as srprep_main

    series = [(sub, ses, path) for sub, ses, path, suffix, datatype in images
              if datatype == "dwi" and suffix == "dwi"]
    if not series:
        return []
    root, derivatives = work / "eval-dwi-bids", work / "eval-dwi-app"
    scored = work / "eval-scored"
    _new_dataset(root, "srprep-eval angular subsets")
    scored.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    for n, (sub, ses, path) in enumerate(series):
        stem = str(path).split(".nii")[0]
        bval, bvec = Path(stem + ".bval"), Path(stem + ".bvec")
        cases = {}
        for factor in grid["factors"]:
            label = f"{sub}d{n:02d}f{factor}"
            folder = root / f"sub-{label}" / (f"ses-{ses}" if ses else "") / "dwi"
            folder.mkdir(parents=True, exist_ok=True)
            name = f"sub-{label}" + (f"_ses-{ses}" if ses else "") + "_dwi"
            held = angular_subset_file(path, bval, bvec, factor, folder / f"{name}.nii.gz",
                                       folder / f"{name}.bval", folder / f"{name}.bvec")
            write_json(folder / f"{name}.json", {"srprep-eval": {
                "source": path.name, "angular_factor": factor, "held_out": held}})
            cases[label] = (factor, held)
        argv = [str(root), str(derivatives), "participant", "-w", str(work / "app"),
                "--method", *opts.angular_methods, "--target-bvals", str(bval),
                "--target-bvecs", str(bvec), "--nprocs", str(opts.nprocs),
                "--omp-nthreads", "1", "--skip-bids-validation",
                "--participant-label", *cases]
        if opts.weights_dir:
            argv += ["--weights-dir", str(opts.weights_dir)]
        if opts.pccnn_model and "pccnn" in opts.angular_methods:
            argv += ["--pccnn-model", str(opts.pccnn_model)]
        log.info("srprep on %d angular subset(s) of %s: %s", len(cases), path.name,
                 " ".join(opts.angular_methods))
        if srprep_main(argv) == 2:
            raise RuntimeError("srprep could not run on the angular subsets (see above)")
        truth = nib.load(path)
        for label, (factor, held) in cases.items():
            status = json.loads((derivatives / "logs" / f"sub-{label}_status.json").read_text())
            failures += [f"{label}: {e}" for e in status.get("errors", [])]
            for method in status.get("methods", []):
                for output in method.get("outputs", []):
                    pred = nib.load(derivatives / output["output"])
                    if pred.shape[3] != truth.shape[3]:
                        raise RuntimeError(f"{label}: {method['name']} gave {pred.shape[3]} "
                                           f"volumes for a {truth.shape[3]}-volume scheme")
                    held_file = save_image(np.asarray(pred.dataobj, np.float32)[..., held],
                                           pred.affine, scored / f"{label}_{method['name']}"
                                           "_held-out.nii.gz", dtype=np.float32)
                    row = {"participant": sub, "session": ses, "image": path.name,
                           "suffix": "dwi", "method": method["name"],
                           "angular_factor": factor, "case": label,
                           "seconds": _cost(method, work / "app", label),
                           "warning": _method_warnings(status, method["name"])}
                    row.update(score_angular_file(path, bval, bvec, held, held_file))
                    rows.append(row)
    if failures:
        raise RuntimeError(f"{len(failures)} case(s) failed; first: {failures[0]}")
    return rows


def write_tsv(rows: list[dict], path: Path) -> Path:
    def fmt(v):
        if v is None or v == "":
            return "n/a"
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    lines = ["\t".join(COLUMNS)] + ["\t".join(fmt(r.get(c)) for c in COLUMNS) for r in rows]
    return write_text(path, "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    unknown = [m for m in opts.methods if m not in ANAT_METHODS]
    if unknown:
        print(f"srprep-eval: error: cannot evaluate {', '.join(unknown)} on anatomical "
              f"images; choose from {', '.join(ANAT_METHODS)}", file=sys.stderr)
        return 2
    out = opts.output_dir.resolve()
    work = (opts.work_dir or out / "work").resolve()
    from .. import engine
    from ..report_eval import write_report

    engine.configure_environment(work, 1)
    bids = opts.bids_dir
    if bids is None:
        from ..demo import build_demo

        demo = out / "demo"
        if not (demo / "groundtruth").exists():
            build_demo(demo, resolution=opts.demo_resolution)
        bids = demo / "groundtruth"
    if not (bids / "dataset_description.json").is_file():
        print(f"srprep-eval: error: not a BIDS dataset: {bids}", file=sys.stderr)
        return 2
    grid, rows = _grid(opts), []
    images = list(_images(bids.resolve(), opts.participant_label))
    try:
        rows += _anat_rows(opts, grid, images, work)
        if not opts.no_dwi:
            rows += _dwi_rows(opts, grid, images, work)
    except (RuntimeError, ValueError) as exc:
        print(f"srprep-eval: {exc}", file=sys.stderr)
        return 1
    if not rows:
        print("srprep-eval: error: no images to evaluate", file=sys.stderr)
        return 2
    write_tsv(rows, out / "evaluation.tsv")
    write_report(rows, out)
    log.info("wrote %s and %s", out / "evaluation.tsv", out / "index.html")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
