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
    if len(img.shape) == 4:   # read that one volume only (a gzip stream stops early)
        index = 0
        bval = Path(str(path).replace(".nii.gz", ".bval").replace(".nii", ".bval"))
        if bval.is_file():
            values = np.array(bval.read_text().split(), float)
            weighted = np.flatnonzero(values > 50)
            index = int(weighted[0]) if weighted.size else 0
        data = np.asanyarray(img.dataobj[..., index])
    else:
        data = np.asanyarray(img.dataobj)
    zooms = np.sqrt((img.affine[:3, :3] ** 2).sum(axis=0))
    return np.asarray(data, dtype=np.float32), zooms


#: mosaic geometry (pixels): three panels per row, a title strip above them
_PANEL, _TITLE, _WIDTH = 224, 14, 720


def _panel(plane: np.ndarray, aspect: float, lo: float, hi: float) -> np.ndarray:
    """One slice (rows = the vertical axis, already flipped for display) windowed to
    [0, 1] and scaled by nearest neighbour to fit a square panel at its physical
    aspect (``aspect``: height of a row / width of a column, in mm)."""
    h, w = plane.shape
    scale = min(_PANEL / (h * aspect), _PANEL / w)
    rows = max(1, int(round(h * aspect * scale)))
    cols = max(1, int(round(w * scale)))
    ri = np.minimum((np.arange(rows) + 0.5) * h / rows, h - 1).astype(int)
    ci = np.minimum((np.arange(cols) + 0.5) * w / cols, w - 1).astype(int)
    values = plane[np.ix_(ri, ci)].astype(np.float32)
    return np.clip((values - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def _centre_planes(data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sagittal, coronal and axial planes through the centre voxel of a 3-D array."""
    c = [d // 2 for d in data.shape]
    return data[c[0], :, :], data[:, c[1], :], data[:, :, c[2]]


def _window(data) -> tuple[float, float]:
    """Display window: 1st to 99.5th percentile of the positive voxels."""
    values = data if isinstance(data, np.ndarray) else np.concatenate(
        [np.ravel(p) for p in data])   # (three planes)
    positive = values[values > 0]
    if not positive.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(positive, [1, 99.5]))
    return (lo, hi) if hi > lo else (0.0, hi)      # a constant image shows as white


def _plot_rows(rows: list[tuple[str, np.ndarray | tuple]], zooms, out_png: Path,
               window: tuple[float, float] | None = None) -> Path:
    """One row of sagittal/coronal/axial centre slices per (title, canonical 3-D array or
    its three centre planes); one intensity window for all rows when ``window`` is given.

    The mosaic is composed as one array (nearest-neighbour panels on black, a title
    strip above each row across its whole width) and written by Pillow: a matplotlib
    grid of axes with ``tight_layout`` cost ~0.15 s a figure plus ~0.6 s of import per
    process, the largest cost of a dataset of small jobs (issue #18)."""
    from PIL import Image, ImageDraw, ImageFont

    row_h = _TITLE + _PANEL + 2          # 240 px: the former 3-inch rows at 80 dpi
    canvas = np.ones((row_h * len(rows), _WIDTH), np.float32)
    gap = (_WIDTH - 3 * _PANEL) // 4
    for row, (_, data) in enumerate(rows):
        z = zooms[row] if isinstance(zooms, list) else zooms
        planes = _centre_planes(data) if isinstance(data, np.ndarray) else data
        lo, hi = window or _window(planes)
        views = [(planes[0].T, z[2] / z[1]), (planes[1].T, z[2] / z[0]),
                 (planes[2].T, z[1] / z[0])]
        top = row * row_h + _TITLE
        for col, (plane, aspect) in enumerate(views):
            left = gap + col * (_PANEL + gap)
            canvas[top:top + _PANEL, left:left + _PANEL] = 0.0
            tile = _panel(plane[::-1], aspect, float(lo), float(hi))   # origin: bottom
            y = top + (_PANEL - tile.shape[0]) // 2
            x = left + (_PANEL - tile.shape[1]) // 2
            canvas[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    image = Image.fromarray(np.round(canvas * 255).astype(np.uint8), mode="L")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default(size=11)
    for row, (title, _) in enumerate(rows):
        draw.text((gap, row * row_h + 1), title, fill=0, font=font)
    with atomic_path(out_png) as tmp:
        image.save(tmp, format="PNG")
    return out_png


def mosaic(images: list[tuple[str, Path]], out_png: Path) -> Path:
    """Rows of sagittal/coronal/axial centre slices, one row per (title, image)."""
    volumes = [(title, *_display_volume(path)) for title, path in images]
    return _plot_rows([(t, d) for t, d, _ in volumes], [z for _, _, z in volumes], out_png)


def _resampled_planes(src: np.ndarray, src_affine: np.ndarray, affine: np.ndarray,
                      shape, order: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_centre_planes` of ``src`` resampled onto the grid (``affine``, ``shape``),
    computed for those three planes only (each a one-voxel-thick slab of the grid): a
    whole-volume cubic reslice cost ~0.3 s per figure at 1 mm."""
    from srprep.core.resample import resample

    planes = []
    for axis in range(3):
        shift = np.eye(4)
        shift[axis, 3] = shape[axis] // 2
        slab_shape = list(shape)
        slab_shape[axis] = 1
        slab = resample(src, src_affine, affine @ shift, slab_shape, order=order,
                        mode="constant")
        planes.append(np.take(slab, 0, axis=axis))
    return tuple(planes)


def comparison(source: Path, output: Path, out_png: Path) -> Path:
    """The input, a cubic B-spline reslice of it and the method's output on the *same*
    slices of the output's grid, in one intensity window: what the method adds over
    interpolation.  The input is shown by nearest neighbour, so its thick slices show."""
    import nibabel as nib

    out_img = nib.as_closest_canonical(nib.load(str(output)))
    src_img = nib.load(str(source))
    if len(out_img.shape) != 3 or len(src_img.shape) != 3:   # before reading any data
        raise ValueError("comparison needs 3-D images")
    data = np.asarray(out_img.dataobj, dtype=np.float32)
    src = np.asarray(src_img.dataobj, dtype=np.float32)
    onto = [_resampled_planes(src, src_img.affine, out_img.affine, data.shape, order)
            for order in (0, 3)]
    window = _window(_centre_planes(data))     # the displayed planes: a whole-volume
    #                                          percentile cost ~0.04 s per figure at 1 mm
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
