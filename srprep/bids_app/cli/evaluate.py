"""``srprep-eval``: how good is each method on *your* high-resolution data?

For every selected isotropic image of a BIDS dataset (default: the demo's ground
truth), thick-slice versions are synthesised over a grid of slice thicknesses, axes and
noise levels (dMRI: angular subsets), every method reconstructs them on the original
grid, and the results are scored inside the brain mask (PSNR, SSIM, NRMSE) and
downstream (grey/white-matter volumes from a 3-class segmentation).  Output: a tidy
``evaluation.tsv``, plots and ``index.html``.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

from srprep.core.atomic import write_text

log = logging.getLogger("srprep.eval")

FULL = {"thickness": [2.0, 3.0, 4.0, 5.0], "axes": [0, 1, 2], "noise": [0.0, 0.03],
        "factors": [2, 3]}
QUICK = {"thickness": [4.0], "axes": [2], "noise": [0.03], "factors": [2]}
COLUMNS = ["participant", "session", "image", "suffix", "method", "axis", "thickness_mm",
           "noise", "angular_factor", "psnr", "ssim", "nrmse", "rmse", "gm_ml_truth", "gm_ml",
           "gm_error_pct", "wm_ml_truth", "wm_ml", "wm_error_pct", "seconds"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srprep-eval", description=__doc__.split("\n\n")[0])
    p.add_argument("output_dir", type=Path, help="where evaluation.tsv and index.html go")
    p.add_argument("--bids-dir", type=Path, default=None,
                   help="dataset with isotropic images (default: build the demo and use its "
                        "ground truth)")
    p.add_argument("--participant-label", nargs="+", default=[])
    p.add_argument("--methods", nargs="+", default=["linear", "cubic", "unires"],
                   help="anatomical methods (linear and cubic are always included)")
    p.add_argument("--angular-methods", nargs="+", default=["sh"])
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


def _anat_rows(opts, grid, sub, ses, path, suffix, cache) -> list[dict]:
    from srprep.core.nifti import check_header
    from srprep.pipelines.evaluation import AnatomicalCase

    from .. import engine

    voxel = min(check_header(path).zooms)
    methods = list(dict.fromkeys(["linear", "cubic", *opts.methods]))
    cases = [c for c in itertools.product(grid["axes"], grid["thickness"], grid["noise"], methods)
             if c[1] > voxel * 1.01]
    if not cases:
        log.warning("%s: no slice thickness above its voxel size %.2f mm", path.name, voxel)
        return []
    axes, thick, noise, meth = (list(x) for x in zip(*cases))
    task = AnatomicalCase(truth=str(path), contrast=suffix, source_name=path.name,
                          segment=not opts.no_segmentation,
                          options={"max_iter": opts.max_iter}).split(
        ("axis", "thickness", "noise", "method"), axis=axes, thickness=thick, noise=noise,
        method=meth)
    out = engine.run(task, cache, worker="cf", n_procs=opts.nprocs)
    if not out.ok:
        raise RuntimeError(f"{path.name}: {out.error}")
    rows = []
    for i, (axis, t, n, m) in enumerate(cases):
        row = {"participant": sub, "session": ses, "image": path.name, "suffix": suffix,
               "method": m, "axis": axis, "thickness_mm": t, "noise": n,
               "seconds": out.outputs.info[i].get("seconds"), "truth": str(path),
               "estimate": str(out.outputs.estimate[i])}
        row.update(out.outputs.metrics[i])
        rows.append(row)
    return rows


def _dwi_rows(opts, grid, sub, ses, path, cache) -> list[dict]:
    from srprep.pipelines.evaluation import AngularCase

    from .. import engine

    stem = str(path).replace(".nii.gz", "").replace(".nii", "")
    cases = list(itertools.product(grid["factors"], opts.angular_methods))
    factors, methods = (list(x) for x in zip(*cases))
    task = AngularCase(truth=str(path), bval=stem + ".bval", bvec=stem + ".bvec",
                       source_name=path.name).split(("factor", "method"), factor=factors,
                                                     method=methods)
    out = engine.run(task, cache, worker="cf", n_procs=opts.nprocs)
    if not out.ok:
        raise RuntimeError(f"{path.name}: {out.error}")
    return [{"participant": sub, "session": ses, "image": path.name, "suffix": "dwi",
             "method": m, "angular_factor": f, **out.outputs.out[i]}
            for i, (f, m) in enumerate(cases)]


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
    for sub, ses, path, suffix, datatype in _images(bids.resolve(), opts.participant_label):
        cache = work / "eval-cache" / f"sub-{sub}"
        try:
            if datatype == "anat":
                rows += _anat_rows(opts, grid, sub, ses, path, suffix, cache)
            elif not opts.no_dwi:
                rows += _dwi_rows(opts, grid, sub, ses, path, cache)
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
