"""NIfTI write/read cost: gzip level and backend, int16 vs float32 outputs.

Measures CPU seconds (process time, robust to a busy machine) and file size for a 1 mm
head (the MNI template padded to 256x256x176 with a noisy background, as scanner images
are) written by nibabel at gzip levels 1 and 6, uncompressed, and with ISA-L (``isal``)
when installed; reads with and without ``indexed_gzip``.  Medians of ``--repeats``.

    python benchmarks/nifti_io.py
"""
from __future__ import annotations

import argparse
import gzip
import io
import statistics
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def make_head(dtype) -> nib.Nifti1Image:
    from nilearn import datasets

    img = nib.load(Path(datasets.__file__).parent / "data"
                   / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    src = np.asarray(img.dataobj, np.float32) * 4
    data = np.zeros((256, 256, 176), np.float32)
    data[30:227, 11:244, :] = src[:, :, 6:182]
    rng = np.random.default_rng(0)
    data = np.sqrt((data + rng.normal(0, 12, data.shape)) ** 2 + rng.normal(0, 12, data.shape) ** 2)
    arr = np.rint(data).astype(np.int16) if dtype == "int16" else data.astype(np.float32)
    out = nib.Nifti1Image(arr, np.eye(4))
    out.header.set_data_dtype(arr.dtype)
    return out


def _cpu(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    print("| dtype | writer | write CPU-s | size MB | read CPU-s |")
    print("|---|---|---|---|---|")
    for dtype in ("int16", "float32"):
        img = make_head(dtype)
        raw = img.to_bytes()
        for label, level in (("nibabel gzip level 1", 1), ("nibabel gzip level 6", 6)):
            path = tmp / f"{dtype}_{level}.nii.gz"

            def write(path=path, level=level):
                nib.openers.Opener.default_compresslevel = level
                nib.save(img, str(path))

            w = _cpu(write, args.repeats)
            r = _cpu(lambda path=path: np.asarray(nib.load(str(path)).dataobj), args.repeats)
            print(f"| {dtype} | {label} | {w:.3f} | {path.stat().st_size / 1e6:.1f} | {r:.3f} |")
        path = tmp / f"{dtype}.nii"
        w = _cpu(lambda: nib.save(img, str(path)), args.repeats)
        r = _cpu(lambda: np.asarray(nib.load(str(path)).dataobj), args.repeats)
        print(f"| {dtype} | uncompressed .nii | {w:.3f} | {path.stat().st_size / 1e6:.1f} | {r:.3f} |")
        try:
            from isal import igzip

            path = tmp / f"{dtype}_isal.nii.gz"
            w = _cpu(lambda: path.write_bytes(igzip.compress(raw, compresslevel=1)), args.repeats)
            r = _cpu(lambda: np.frombuffer(igzip.decompress(path.read_bytes()), np.uint8),
                     args.repeats)
            print(f"| {dtype} | isal igzip level 1 | {w:.3f} | {path.stat().st_size / 1e6:.1f} | {r:.3f} |")
        except ImportError:
            print(f"| {dtype} | isal | not installed | | |")
        path = tmp / f"{dtype}_stdlib.gz"
        path.write_bytes(gzip.compress(raw, compresslevel=1))
        r = _cpu(lambda: gzip.GzipFile(fileobj=io.BytesIO(path.read_bytes())).read(), args.repeats)
        print(f"| {dtype} | (read) stdlib gzip, no indexed_gzip | | | {r:.3f} |")


if __name__ == "__main__":
    main()
