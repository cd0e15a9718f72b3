"""Per-participant HTML reports with input/output mosaics, and a dataset index.

Figures are PNGs under ``<output>/sub-<label>/figures/`` (ignored by ``.bidsignore``);
pages are ``<output>/sub-<label>.html`` and ``<output>/index.html``.
"""
from __future__ import annotations

import html
import json
import logging
from pathlib import Path

import numpy as np

from srprep import __version__
from srprep.core.atomic import atomic_path, write_text

log = logging.getLogger("srprep.reports")

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:1.5em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;font-size:.9em}img{max-width:100%;border:1px solid #ddd;margin:.3em 0}
.ok{color:#176317;font-weight:bold}.failed{color:#a00;font-weight:bold}
.warn{background:#fff4d6;padding:.4em}.mono{font-family:monospace;font-size:.85em}
"""


def _display_volume(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Canonical-orientation 3-D array (first diffusion-weighted volume of a series)."""
    import nibabel as nib

    img = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4:
        index = 0
        bval = Path(str(path).replace(".nii.gz", ".bval").replace(".nii", ".bval"))
        if bval.is_file():
            values = np.array(bval.read_text().split(), float)
            weighted = np.flatnonzero(values > 50)
            index = int(weighted[0]) if weighted.size else 0
        data = data[..., index]
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    return np.asarray(data, dtype=np.float32), zooms


def _plot_rows(rows: list[tuple[str, np.ndarray]], zooms, out_png: Path,
               window: tuple[float, float] | None = None) -> Path:
    """One row of sagittal/coronal/axial centre slices per (title, canonical 3-D array);
    one intensity window for all rows when ``window`` is given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 3, figsize=(9, 3 * len(rows)), squeeze=False)
    for row, (title, data) in enumerate(rows):
        z = zooms[row] if isinstance(zooms, list) else zooms
        lo, hi = window or (np.percentile(data[data > 0], [1, 99.5]) if np.any(data > 0)
                            else (0, 1))
        centre = [d // 2 for d in data.shape]
        views = [(data[centre[0], :, :].T, z[2] / z[1]), (data[:, centre[1], :].T, z[2] / z[0]),
                 (data[:, :, centre[2]].T, z[1] / z[0])]
        for col, (plane, aspect) in enumerate(views):
            ax = axes[row, col]
            ax.imshow(plane, cmap="gray", origin="lower", vmin=lo, vmax=hi, aspect=aspect,
                      interpolation="nearest")
            ax.set_axis_off()
        axes[row, 0].set_title(title, fontsize=9, loc="left")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)
    return out_png


def mosaic(images: list[tuple[str, Path]], out_png: Path) -> Path:
    """Rows of sagittal/coronal/axial centre slices, one row per (title, image)."""
    volumes = [(title, *_display_volume(path)) for title, path in images]
    return _plot_rows([(t, d) for t, d, _ in volumes], [z for _, _, z in volumes], out_png)


def comparison(source: Path, output: Path, out_png: Path) -> Path:
    """The input, a cubic B-spline reslice of it and the method's output on the *same*
    slices of the output's grid, in one intensity window: what the method adds over
    interpolation.  The input is shown by nearest neighbour, so its thick slices show."""
    import nibabel as nib

    from srprep.core.resample import resample

    out_img = nib.as_closest_canonical(nib.load(str(output)))
    src_img = nib.load(str(source))
    data = np.asarray(out_img.dataobj, dtype=np.float32)
    src = np.asarray(src_img.dataobj, dtype=np.float32)
    if data.ndim != 3 or src.ndim != 3:
        raise ValueError("comparison needs 3-D images")
    onto = [resample(src, src_img.affine, out_img.affine, data.shape, order=order,
                     mode="constant") for order in (0, 3)]
    window = (tuple(np.percentile(data[data > 0], [1, 99.5])) if np.any(data > 0)
              else None)
    zooms = np.sqrt((out_img.affine[:3, :3] ** 2).sum(axis=0))
    return _plot_rows([(f"input: {source.name} (nearest neighbour)", onto[0]),
                       ("cubic B-spline reslice of the input", onto[1]),
                       (f"output: {output.name}", data)], zooms, out_png, window)


def _table(rows: dict) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td class='mono'>"
                    f"{html.escape(json.dumps(v) if isinstance(v, (dict, list)) else str(v))}"
                    f"</td></tr>" for k, v in rows.items())
    return f"<table>{cells}</table>"


def _usage_table(records: list[dict]) -> str:
    """Per-task wall time, CPU time and peak memory (the resource monitor's records)."""
    head = ("<tr><th>step</th><th>wall (s)</th><th>CPU (s)</th><th>peak memory (GB)</th>"
            "</tr>")
    rows = "".join(
        f"<tr><td class='mono'>{html.escape(str(r.get('task')))}</td><td>{r.get('seconds')}</td>"
        f"<td>{r.get('cpu_seconds')}</td><td>{r.get('peak_rss_gb')}"
        f"{'' if r.get('peak_is_per_task', True) else ' (process peak)'}</td></tr>"
        for r in records)
    return f"<h3>Resources per step</h3><table>{head}{rows}</table>"


def participant_report(output_dir: Path, participant: str, status: dict) -> Path:
    """Write ``sub-<label>.html`` from a status dict (see ``run._participant_status``)."""
    label = f"sub-{participant}"
    fig_dir = output_dir / label / "figures"
    parts = [f"<h1>srprep report: {label}</h1>",
             _table({"srprep version": __version__, "run": status.get("run_id"),
                     "status": status.get("status"), "duration (s)": status.get("seconds"),
                     "command": status.get("command")})]
    if status.get("errors"):
        items = "".join(f"<li class='mono'>{html.escape(e)}</li>" for e in status["errors"])
        parts.append(f"<h2>Errors</h2><ul class='failed'>{items}</ul>")
    if status.get("warnings"):
        items = "".join(f"<li>{html.escape(w)}</li>" for w in status["warnings"])
        parts.append(f"<h2>Warnings</h2><ul class='warn'>{items}</ul>")
    for method in status.get("methods", []):
        parts.append(f"<h2>Method: {html.escape(method['name'])}</h2>")
        parts.append(_table({"description": method.get("description", ""),
                             "parameters": method.get("parameters", {}),
                             "time (s)": method.get("seconds")}))
        for item in method.get("outputs", []):
            out_rel = item["output"]
            if not out_rel.endswith((".nii", ".nii.gz")):   # e.g. a transform: named only
                parts.append(f"<h3 class='mono'>{html.escape(out_rel)}</h3>")
                continue
            png = fig_dir / (Path(out_rel).name.split(".")[0] + ".png")
            try:
                try:   # anatomical outputs: input, cubic and output on the same slices
                    comparison(Path(item["inputs"][0]), output_dir / out_rel, png)
                except ValueError:   # series (dwi): each image at its own centre
                    rows = [(f"input: {Path(s).name}", Path(s)) for s in item["inputs"]]
                    rows.append((f"output: {Path(out_rel).name}", output_dir / out_rel))
                    mosaic(rows, png)
                img = f"<img src='{label}/figures/{png.name}' alt='{html.escape(png.name)}'>"
            except Exception as exc:  # a figure must never fail the run
                log.warning("figure for %s failed: %s", out_rel, exc)
                img = f"<p class='warn'>figure unavailable: {html.escape(str(exc))}</p>"
            fit = _table(item["fit"]) if item.get("fit") else ""
            parts.append(f"<h3 class='mono'>{html.escape(out_rel)}</h3>{img}{fit}")
        if method.get("resources"):     # after the pictures: what users look at first
            parts.append(_usage_table(method["resources"]))
    body = "\n".join(parts)
    page = output_dir / f"{label}.html"
    write_text(page, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{label}</title>"
                     f"<style>{_CSS}</style></head><body>{body}</body></html>\n")
    return page


def dataset_index(output_dir: Path) -> Path:
    """Write ``index.html`` linking every participant report found in ``logs/``."""
    rows = []
    for status_file in sorted((output_dir / "logs").glob("sub-*_status.json")):
        try:
            st = json.loads(status_file.read_text())
        except (OSError, ValueError):
            continue
        label = f"sub-{st['participant']}"
        cls = "ok" if st.get("status") == "ok" else "failed"
        rows.append(f"<tr><td><a href='{label}.html'>{label}</a></td><td class='{cls}'>"
                    f"{html.escape(str(st.get('status')))}</td><td>{st.get('seconds')}</td>"
                    f"<td>{html.escape(', '.join(m['name'] for m in st.get('methods', [])))}</td>"
                    f"<td>{html.escape(str(st.get('run_id')))}</td></tr>")
    table = ("<table><tr><th>participant</th><th>status</th><th>time (s)</th><th>methods</th>"
             "<th>run</th></tr>" + "".join(rows) + "</table>")
    page = output_dir / "index.html"
    write_text(page, f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>srprep</title>"
                     f"<style>{_CSS}</style></head><body><h1>srprep {__version__}</h1>"
                     f"{table}</body></html>\n")
    return page
