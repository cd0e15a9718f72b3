"""BIDS output of ``srprep-recon``: magnitude NIfTI per method with a sidecar that records
the acquisition (acceleration, mask, coils), the reconstruction settings and, for
retrospective studies, PSNR/NRMSE against the fully sampled image. Every file is written
atomically (temporary file + rename); running again replaces them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from srprep import __version__
from srprep.core.atomic import write_json

from .export import BIDS_VERSION

METHOD_DESCRIPTIONS = {
    "aid": "AID posterior sampling (autoregressive image diffusion prior; Luo, Huang & "
           "Uecker, NeurIPS 2024) with data consistency",
    "zerofilled": "zero-filled (coil-combined with the sensitivity maps; RSS for single coil)",
    "sensel1": "SENSE with l1-wavelet regularisation (sigpy L1WaveletRecon)",
    "fullysampled": "fully sampled reference (coil-combined with the same maps)",
}


def write_description(out_dir: Path) -> None:
    desc = {"Name": "srprep-recon: images reconstructed from raw k-space",
            "BIDSVersion": BIDS_VERSION, "DatasetType": "raw",
            "GeneratedBy": [{"Name": "srprep-recon", "Version": __version__,
                             "CodeURL": "https://github.com/srprep/srprep"}]}
    path = out_dir / "dataset_description.json"
    if not path.is_file() or json.loads(path.read_text()) != desc:
        write_json(path, desc)
    readme = out_dir / "README"
    if not readme.is_file():
        from srprep.core.atomic import write_text

        write_text(readme, "Images reconstructed from raw k-space by srprep-recon; each "
                           "sidecar records the undersampling and reconstruction settings.\n")


def _affine(voxel_size, shape) -> np.ndarray:
    """Voxel axes (readout, phase encoding, slice), centred on the origin. The scanner's
    orientation is not carried over (fastMRI files do not record it)."""
    aff = np.diag([*map(float, voxel_size), 1.0])
    aff[:3, 3] = -0.5 * (np.asarray(shape, dtype=float) - 1) * np.asarray(voxel_size, dtype=float)
    return aff


def export_recon(out_dir: Path, label: str, session: str | None, suffix: str | None,
                 source: Path, methods: list[str], images: list, infos: list, prepared,
                 prepare_info: dict, *, weights: Path | None = None) -> list[Path]:
    """Write every method's image (and the fully sampled one when available)."""
    from srprep.core.nifti import save_image
    from srprep.models.weights import sha256

    suffix = suffix or prepare_info.get("suffix") or "T2w"
    parts = [f"sub-{label}"] + ([f"ses-{session}"] if session else [])
    folder = out_dir.joinpath(*parts, "anat")
    folder.mkdir(parents=True, exist_ok=True)
    base = "_".join(parts)
    common = {
        "Sources": [f"kspace:{source.name}"],
        "Acceleration": prepare_info["acceleration"],
        "EffectiveAcceleration": prepare_info["effective_acceleration"],
        "UndersamplingMask": prepare_info["mask"], "ACSLines": prepare_info["acs_lines"],
        "SampledLines": prepare_info["lines"], "Retrospective": prepare_info["retrospective"],
        "Coils": prepare_info["coils"], "CoilSensitivities": prepare_info["coil_maps"],
        "VoxelAxes": "readout, phase encoding, slice (scanner orientation not recorded)",
    }
    prep = np.load(prepared)
    common["SampledPhaseEncodeLines"] = [int(i) for i in np.flatnonzero(prep["mask"])]
    entries = [(m, np.load(f), info) for m, f, info in zip(methods, images, infos)]
    if "reference" in prep:
        entries.append(("fullysampled", prep["reference"], {"method": "fullysampled"}))
    written = []
    for method, image, info in entries:
        img = np.abs(image)                                  # (slices, readout, phase)
        vol = np.transpose(img, (1, 2, 0)).astype(np.float32)
        name = f"{base}_rec-{method}_{suffix}"
        target = folder / f"{name}.nii.gz"
        save_image(vol, _affine(prepare_info["voxel_size"], vol.shape), target)
        side = dict(common, ReconstructionMethod=METHOD_DESCRIPTIONS[method])
        if method == "aid":
            side.update(Steps=info["steps"], DCIterations=info["cond_iters"],
                        DCStepSize=info["eta"], DCScale=info["scale"], Seed=info["seed"],
                        ReleasedAttention=info["released_attention"],
                        FirstSlice=info["first_slice"], Device=info.get("device"))
            if weights is not None:
                side["Weights"] = {"file": weights.name, "sha256": sha256(weights)}
        if method == "sensel1":
            side.update(Lambda=info["lamda"], Iterations=info["iterations"])
        if "metrics" in info:
            side.update(PSNR=info["metrics"]["psnr"], NRMSE=info["metrics"]["nrmse"],
                        MetricsReference=f"{base}_rec-fullysampled_{suffix}.nii.gz (magnitude)",
                        MetricsExcludedSlices=info["metrics"].get("excluded_slices", []))
        if "seconds" in info:
            side["ReconstructionSeconds"] = info["seconds"]
        write_json(target.with_name(name + ".json"), side)
        written.append(target)
    return written
