"""Plots and the HTML summary of ``srprep-eval``."""
from __future__ import annotations

import html
from collections import defaultdict
from pathlib import Path

import numpy as np

from srprep import __version__
from srprep.core.atomic import atomic_path, write_text

from .reports import _CSS


def _mean(values) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path


def metric_plots(rows: list[dict], folder: Path) -> list[Path]:
    """PSNR and SSIM against slice thickness, one line per method, one figure per contrast."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    anat = [r for r in rows if r.get("thickness_mm") is not None]
    for suffix in sorted({r["suffix"] for r in anat}):
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        for method in sorted({r["method"] for r in anat}):
            sel = [r for r in anat if r["suffix"] == suffix and r["method"] == method]
            xs = sorted({r["thickness_mm"] for r in sel})
            for ax, key in zip(axes, ("psnr", "ssim")):
                ax.plot(xs, [_mean(r[key] for r in sel if r["thickness_mm"] == x) for x in xs],
                        marker="o", label=method)
        for ax, key in zip(axes, ("PSNR (dB)", "SSIM")):
            ax.set_xlabel("slice thickness (mm)")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{suffix}: mean over axes, noise levels and participants", fontsize=10)
        fig.tight_layout()
        out.append(_save(fig, folder / f"metrics_{suffix}.png"))
    return out


def error_maps(rows: list[dict], folder: Path) -> list[Path]:
    """|estimate - truth| for the thickest axial case of each contrast, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nibabel as nib

    out = []
    anat = [r for r in rows if r.get("estimate")]
    for suffix in sorted({r["suffix"] for r in anat}):
        sel = [r for r in anat if r["suffix"] == suffix]
        worst = max(r["thickness_mm"] for r in sel)
        first = sel[0]
        case = [r for r in sel if r["thickness_mm"] == worst and r["axis"] == first["axis"]
                and r["noise"] == first["noise"] and r["image"] == first["image"]]
        truth_path = next((Path(r["truth"]) for r in case if r.get("truth")), None)
        if truth_path is None:
            continue
        truth = np.asarray(nib.load(truth_path).dataobj, float)
        fig, axes = plt.subplots(1, len(case), figsize=(3 * len(case), 3.2), squeeze=False)
        plane = (first["axis"] + 1) % 3        # a slice that contains the thick axis
        index = [slice(None)] * 3
        index[plane] = truth.shape[plane] // 2
        vmax = np.percentile(truth[truth > 0], 99) * 0.25 if np.any(truth > 0) else 1
        for ax, r in zip(axes[0], case):
            err = np.abs(np.asarray(nib.load(r["estimate"]).dataobj, float) - truth)
            ax.imshow(err[tuple(index)].T, origin="lower", cmap="magma", vmin=0, vmax=vmax)
            ax.set_title(f"{r['method']} (PSNR {r['psnr']:.1f})", fontsize=9)
            ax.set_axis_off()
        fig.suptitle(f"{suffix}: |error|, {worst:g} mm slices along axis {first['axis']}",
                     fontsize=10)
        out.append(_save(fig, folder / f"errors_{suffix}.png"))
    return out


def _summary_table(rows: list[dict]) -> str:
    groups = defaultdict(list)
    for r in rows:
        groups[(r["suffix"], r["method"])].append(r)
    keys = ("psnr", "ssim", "nrmse", "gm_error_pct", "wm_error_pct", "seconds")
    head = "".join(f"<th>{k}</th>" for k in ("contrast", "method", "cases", *keys))
    body = []
    for (suffix, method), sel in sorted(groups.items()):
        cells = "".join(f"<td>{_mean(r.get(k) for r in sel):.4g}</td>" for k in keys)
        body.append(f"<tr><td>{html.escape(suffix)}</td><td>{html.escape(method)}</td>"
                    f"<td>{len(sel)}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _recommendation_table(rows: list[dict]) -> str:
    """Per contrast and slice thickness: the best method (mean PSNR over the cases), its
    gain over cubic (dB, SSIM) and its cost, with the methods the App warned about (the
    input lies outside the weights' training domain: species, voxel size, contrast)."""
    groups = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r.get("thickness_mm") is not None and r.get("psnr") is not None:
            groups[(r["suffix"], r["thickness_mm"])][r["method"]].append(r)
    if not groups:
        return ""
    head = "".join(f"<th>{k}</th>" for k in (
        "contrast", "thickness (mm)", "best method", "gain over cubic (dB)",
        "gain over cubic (SSIM)", "its cost (s)", "outside their training domain"))
    body = []
    for (suffix, thick), by_method in sorted(groups.items()):
        mean = {m: (_mean(r["psnr"] for r in sel), _mean(r["ssim"] for r in sel),
                    _mean(r.get("seconds") for r in sel)) for m, sel in by_method.items()}
        best = max(mean, key=lambda m: mean[m][0])
        cubic = mean.get("cubic", (float("nan"),) * 3)
        flagged = sorted(m for m, sel in by_method.items() if any(r.get("warning") for r in sel))
        body.append(
            f"<tr><td>{html.escape(suffix)}</td><td>{thick:g}</td>"
            f"<td><b>{html.escape(best)}</b></td><td>{mean[best][0] - cubic[0]:+.2f}</td>"
            f"<td>{mean[best][1] - cubic[1]:+.4f}</td><td>{mean[best][2]:.3g}</td>"
            f"<td>{html.escape(', '.join(flagged)) or '-'}</td></tr>")
    notes = sorted({f"{r['method']}: {r['warning']}" for r in rows if r.get("warning")})
    shown = "".join(f"<li>{html.escape(n)}</li>" for n in notes[:10])
    more = f"<li>... and {len(notes) - 10} more</li>" if len(notes) > 10 else ""
    warn = (f"<p>Warnings of the App (the weights' training domain):</p><ul>{shown}{more}</ul>"
            if notes else "")
    return (f"<h2>Which method, for which data</h2><p>Per contrast and slice thickness, the "
            f"method with the highest mean PSNR, its gain over cubic interpolation and its "
            f"cost (seconds per case, through the App).</p>"
            f"<table><tr>{head}</tr>{''.join(body)}</table>{warn}")


def write_report(rows: list[dict], out: Path) -> Path:
    """``figures/*.png`` and ``index.html`` in ``out``."""
    figures = out / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    images = metric_plots(rows, figures) + error_maps(rows, figures)
    imgs = "".join(f"<img src='figures/{p.name}' alt='{p.stem}'>" for p in images)
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>srprep evaluation"
            f"</title><style>{_CSS}</style></head><body><h1>srprep {__version__}: evaluation"
            f"</h1><p>Means per contrast and method (metrics inside the brain mask; tissue "
            f"volume errors in % of the ground truth's). All cases: "
            f"<a href='evaluation.tsv'>evaluation.tsv</a>.</p>{_summary_table(rows)}"
            f"<h2>Figures</h2>{imgs}{_recommendation_table(rows)}</body></html>\n")
    return write_text(out / "index.html", page)
