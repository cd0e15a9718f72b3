"""``srprep-demo``: build a small BIDS dataset from data shipped with installed packages
and run the BIDS App on it.

Anatomy comes from nilearn's MNI152 2009 1 mm T1 and GM/WM maps; T2w- and PDw-like
contrasts are synthesised from the tissue maps (CSF = brain - GM - WM).  Each contrast
is then "acquired" with a realistic slice profile and Rician noise: T1w isotropic,
T2w with thick axial slices, PDw with thick coronal slices.  sub-02 is the same
anatomy rotated and shifted, with other noise.  Diffusion data are dipy's ``small_64D``
series, of which the raw dataset keeps b=0 + 32 directions.

Layout written under OUTDIR::

    bids/          raw BIDS dataset (the App's input)
    groundtruth/   noise-free isotropic images and the full dMRI series, same names
    derivatives/   the App's output (after the run)
    work/          the App's work directory
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from srprep.core.atomic import write_json, write_text
from srprep.core.phantoms import CONTRASTS, truth_images  # noqa: F401 (part of the demo's API)

#: (suffix, thick axis or None, slice thickness in mm, noise sd as fraction of WM value)
ACQUISITIONS = (("T1w", None, 0.0, 0.03), ("T2w", 2, 4.0, 0.03), ("PDw", 1, 4.0, 0.03))
#: rigid motion of each participant relative to MNI space: (degrees xyz, mm xyz)
MOTION = {"01": ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)), "02": ((3.0, -2.0, 4.0), (2.5, -3.0, 1.5))}


def _motion_matrix(participant: str) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    if participant in MOTION:
        angles, shift = MOTION[participant]
    else:  # further participants: a reproducible pose of up to 5 deg / 4 mm
        rng = np.random.default_rng(int(participant))
        angles, shift = rng.uniform(-5, 5, 3), rng.uniform(-4, 4, 3)
    m = np.eye(4)
    m[:3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    m[:3, 3] = shift
    return m


def _acquire(truth, affine, axis, thickness, rng, sigma):
    from srprep.core.synth import add_rician_noise, thick_slices

    if axis is None:
        data, lr_affine = truth, affine
    else:
        data, lr_affine = thick_slices(truth, affine, axis=axis, thickness=thickness)
    return add_rician_noise(data, sigma, rng), lr_affine


def write_anat(root: Path, truth_root: Path, participant: str, resolution: float, seed: int
               ) -> None:
    """Write the degraded anatomical images of one participant and their ground truth."""
    from srprep.core.nifti import save_image

    images, affine = truth_images(resolution)
    moved = _motion_matrix(participant) @ affine  # head moved in the scanner
    rng = np.random.default_rng(seed)
    for suffix, axis, thickness, noise in ACQUISITIONS:
        name = f"sub-{participant}_ses-1_{suffix}.nii.gz"
        rel = Path(f"sub-{participant}/ses-1/anat")
        save_image(images[suffix], moved, truth_root / rel / name, dtype=np.float32)
        data, lr_affine = _acquire(images[suffix], moved, axis, thickness, rng, noise * 1000.0)
        save_image(data, lr_affine, root / rel / name, dtype=np.int16)
        write_json(root / rel / name.replace(".nii.gz", ".json"), {
            "MagneticFieldStrength": 3, "SliceThickness": thickness or resolution,
            "Description": "srprep demo: synthetic acquisition of the MNI152 2009 template",
        })


def write_dwi(root: Path, truth_root: Path, participant: str, seed: int) -> None:
    """dipy's small_64D (b0 + 64 directions, b=1000): raw keeps b0 + 32 directions."""
    import nibabel as nib
    from dipy.data import get_fnames

    from srprep.core.dwi import read_bvals_bvecs, write_bvals_bvecs
    from srprep.core.nifti import save_image

    nii, bval, bvec = get_fnames(name="small_64D")
    img = nib.load(nii)
    data = np.asarray(img.dataobj, dtype=np.float32)
    bvals, bvecs = read_bvals_bvecs(bval, bvec, data.shape[3])
    if participant != "01":
        data = data + np.random.default_rng(seed).normal(0, 0.02 * data.mean(), data.shape)
        data = np.clip(data, 0, None)
    keep = np.concatenate([np.flatnonzero(bvals <= 50), np.flatnonzero(bvals > 50)[::2]])
    rel = Path(f"sub-{participant}/ses-1/dwi")
    stem = f"sub-{participant}_ses-1_dwi"
    for folder, idx in ((truth_root, np.arange(len(bvals))), (root, keep)):
        save_image(data[..., idx], img.affine, folder / rel / f"{stem}.nii.gz", dtype=np.int16)
        write_bvals_bvecs(bvals[idx], bvecs[idx], folder / rel / f"{stem}.bval",
                          folder / rel / f"{stem}.bvec")
        write_json(folder / rel / f"{stem}.json", {"MagneticFieldStrength": 3,
                                                   "PhaseEncodingDirection": "j-"})


def write_dwi_phantoms(root: Path, labels: list[str], *, shape=(24, 24, 16), snr: float = 30.0,
                      keep_every: int = 1, truth_root: Path | None = None, seed: int = 0) -> Path:
    """A BIDS dataset of simulated 3-shell dMRI phantoms (dipy's 3-shell table,
    multi-tensor signals, Rician noise at ``snr``), one series per participant.

    ``keep_every`` > 1 keeps every k-th direction per shell (+ b=0): an angularly
    undersampled acquisition.  ``truth_root`` receives the full noise-free series.
    """
    from srprep.core.dmri_sim import multishell_phantom
    from srprep.core.dwi import shell_labels, write_bvals_bvecs
    from srprep.core.nifti import save_image

    for label in labels:
        ph = multishell_phantom(shape, snr=snr, seed=seed + int(label))
        shells = shell_labels(ph.bvals)
        keep = np.sort(np.concatenate([np.flatnonzero(shells == s)[:: keep_every if s else 1]
                                       for s in np.unique(shells)]))
        rel, stem = Path(f"sub-{label}/dwi"), f"sub-{label}_dwi"
        outputs = [(root, ph.noisy[..., keep], keep)]
        if truth_root is not None:
            outputs.append((truth_root, ph.signal, np.arange(len(ph.bvals))))
        for folder, data, idx in outputs:
            save_image(data, ph.affine, folder / rel / f"{stem}.nii.gz", dtype=np.float32)
            write_bvals_bvecs(ph.bvals[idx], ph.bvecs[idx], folder / rel / f"{stem}.bval",
                              folder / rel / f"{stem}.bvec")
            write_json(folder / rel / f"{stem}.json", {"MagneticFieldStrength": 3,
                                                       "PhaseEncodingDirection": "j-"})
    _dataset_files(root, "srprep simulated dMRI phantoms", labels)
    if truth_root is not None:
        _dataset_files(truth_root, "srprep simulated dMRI phantoms (noise-free)", labels)
    return root


def _dataset_files(root: Path, name: str, participants: list[str]) -> None:
    write_json(root / "dataset_description.json", {
        "Name": name, "BIDSVersion": "1.10.0", "DatasetType": "raw", "License": "CC0",
        "Authors": ["srprep developers", "MNI152 2009 template (McConnell Brain Imaging Centre)"],
    })
    write_text(root / "README", f"{name}\n\nGenerated by srprep-demo from the MNI152 2009 "
                                "template shipped with nilearn and dipy's small_64D series.\n")
    write_text(root / "participants.tsv",
               "participant_id\tage\n" + "".join(f"sub-{p}\tn/a\n" for p in participants))


def build_demo(outdir: Path, *, participants: int = 2, resolution: float = 2.0,
               seed: int = 7) -> Path:
    """Write ``outdir/bids`` and ``outdir/groundtruth``; return the BIDS root."""
    labels = [f"{i + 1:02d}" for i in range(participants)]
    bids, truth = outdir / "bids", outdir / "groundtruth"
    for label in labels:
        write_anat(bids, truth, label, resolution, seed + int(label))
        write_dwi(bids, truth, label, seed + int(label))
    _dataset_files(bids, "srprep demo dataset", labels)
    _dataset_files(truth, "srprep demo ground truth", labels)
    write_json(outdir / "demo.json", {"resolution_mm": resolution, "participants": labels,
                                      "acquisitions": [list(a) for a in ACQUISITIONS],
                                      "seed": seed})
    return bids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="srprep-demo", description=__doc__.split("\n\n")[0],
        epilog="Arguments after '--' are passed to srprep (e.g. -- --method linear cubic).")
    parser.add_argument("outdir", type=Path, help="folder to create the demo in")
    parser.add_argument("--participants", type=int, default=2, choices=range(1, 10),
                        help="number of participants (same anatomy, other pose and noise)")
    parser.add_argument("--resolution", type=float, default=2.0,
                        help="ground-truth voxel size in mm (default 2; 1 = full MNI)")
    parser.add_argument("--no-run", action="store_true", help="only build the dataset")
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    opts = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if (opts.outdir / "bids").exists():
        print(f"srprep-demo: {opts.outdir / 'bids'} exists; reusing it", file=sys.stderr)
        bids = opts.outdir / "bids"
    else:
        bids = build_demo(opts.outdir, participants=opts.participants,
                          resolution=opts.resolution)
    if opts.no_run:
        return 0
    from srprep.bids_app.cli.run import main as srprep_main

    res = json.loads((opts.outdir / "demo.json").read_text())["resolution_mm"]
    args = [str(bids), str(opts.outdir / "derivatives"), "participant",
            "-w", str(opts.outdir / "work"), "--output-resolution", str(res)]
    return srprep_main(args + extra)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
