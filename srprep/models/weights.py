"""The one place that knows where published weights live and how they are cached.

Lookup order for the cache folder: the ``weights_dir`` argument (``--weights-dir``), then
``$SRPREP_WEIGHTS_DIR``, then ``$XDG_CACHE_HOME/srprep/weights`` (``~/.cache/...``).
Files are downloaded only by an explicit :func:`fetch` (``srprep-weights fetch``) --
never at run time by a pipeline, which must fail with a message naming the command.
Downloads are atomic; a checksum is verified when one is published and recorded on
first download otherwise; loading uses ``torch.load(weights_only=True)`` and checks the
state_dict's keys and shapes against the method's network.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

from srprep.core.atomic import atomic_path, write_text
from srprep.core.errors import ConfigurationError


@dataclass(frozen=True)
class WeightsFile:
    """A published checkpoint (or asset) of a method."""

    name: str
    method: str
    filename: str
    url: str
    description: str
    sha256: str | None = None
    #: "module:function" returning {key: shape} for structure verification
    structure: str | None = None
    #: the training domain: voxel size (mm) of the training data, and what it was
    voxel_mm: float | None = None
    domain: str | None = None


_HF_BABYAI = "https://huggingface.co/almalennartsson/baby-ai/resolve/main"
_GH_EASYSR = "https://github.com/hwonheo/easysr/raw/main/ckpt/ckpt_final"
_HF_EASYSR = "https://huggingface.co/hwonheo/easysr_templates/resolve/main"
_HF_AID = "https://huggingface.co/Guanxiong/MRI-Image-Priors/resolve/main/AID"
_TEMPLATEFLOW = "https://templateflow.s3.amazonaws.com"

REGISTRY: dict[str, WeightsFile] = {w.name: w for w in (
    WeightsFile("babyai", "babyai", "pretrained_weights.pth", f"{_HF_BABYAI}/pretrained_weights.pth",
                "BABY-AI residual U-Net (T1w + anisotropic T2w -> isotropic T2w), ~1.5 GB",
                structure="srprep.models.babyai:expected_shapes"),
    WeightsFile("babyai-atlas", "babyai", "infant_atlas.nii.gz", f"{_HF_BABYAI}/infant_atlas.nii.gz",
                "BABY-AI infant atlas (182x218x182, 1 mm)"),
    WeightsFile("easysr-g-t1", "easysr", "G_latest_T1.pth", f"{_GH_EASYSR}/G_latest_T1.pth",
                "EasySR generator, T1 model",
                structure="srprep.models.easysr:expected_generator_shapes",
                voxel_mm=0.15, domain="rat brain, 0.15 mm in-plane (0.45 mm slices)"),
    WeightsFile("easysr-g-mixed", "easysr", "G_latest_Mixed.pth", f"{_GH_EASYSR}/G_latest_Mixed.pth",
                "EasySR generator, mixed-contrast model (official default)",
                structure="srprep.models.easysr:expected_generator_shapes",
                voxel_mm=0.15, domain="rat brain, 0.15 mm in-plane (0.45 mm slices)"),
    WeightsFile("easysr-d-t1", "easysr", "D_latest_T1.pth", f"{_GH_EASYSR}/D_latest_T1.pth",
                "EasySR discriminator, T1 model",
                structure="srprep.models.easysr:expected_discriminator_shapes"),
    WeightsFile("easysr-d-mixed", "easysr", "D_latest_Mixed.pth", f"{_GH_EASYSR}/D_latest_Mixed.pth",
                "EasySR discriminator, mixed-contrast model",
                structure="srprep.models.easysr:expected_discriminator_shapes"),
    WeightsFile("easysr-template-t1", "easysr", "bmc_t1_rat.nii.gz", f"{_HF_EASYSR}/bmc_t1_rat.nii.gz",
                "EasySR rat T1w registration template"),
    WeightsFile("easysr-template-t2", "easysr", "bmc_t2_rat.nii.gz", f"{_HF_EASYSR}/bmc_t2_rat.nii.gz",
                "EasySR rat T2w registration template"),
    WeightsFile("pccnn", "pccnn", "pccnn_weights.pt",
                "https://zenodo.org/record/10210758/files/pccnn_weights.pt", "PCCNN",
                structure="srprep.models.pccnn:expected_shapes_pccnn"),
    WeightsFile("pccnn-bv", "pccnn", "pccnn-bv_weights.pt",
                "https://zenodo.org/record/10210778/files/pccnn-bv_weights.pt", "PCCNN-Bv",
                structure="srprep.models.pccnn:expected_shapes_pccnn_bv"),
    WeightsFile("pccnn-sp", "pccnn", "pccnn-sp_weights.pt",
                "https://zenodo.org/record/10210876/files/pccnn-sp_weights.pt", "PCCNN-Sp",
                structure="srprep.models.pccnn:expected_shapes_pccnn_sp"),
    WeightsFile("pccnn-bv-sp", "pccnn", "pccnn-bv-sp_weights.pt",
                "https://zenodo.org/record/10210894/files/pccnn-bv-sp_weights.pt", "PCCNN-Bv-Sp",
                structure="srprep.models.pccnn:expected_shapes_pccnn_bv_sp"),
    WeightsFile("aid-brain", "aid", "fastmri_320_cplx.pt", f"{_HF_AID}/fastmri_320_cplx.pt",
                "AID causal U-Net, fastMRI brain, complex 320x320 (557 MB)",
                structure="srprep.models.aid:expected_shapes_brain"),
    WeightsFile("aid-guide", "aid", "normal_fastmri_320_cplx.pt",
                f"{_HF_AID}/normal_fastmri_320_cplx.pt", "guided-diffusion baseline (484 MB)",
                structure="srprep.models.aid:expected_shapes_guide"),
    WeightsFile("aid-cardiac", "aid", "cardiac_latent.pt", f"{_HF_AID}/cardiac_latent.pt",
                "AID causal U-Net, cardiac cine in VQ latent (104 MB)",
                structure="srprep.models.aid:expected_shapes_cardiac"),
    WeightsFile("aid-abide", "aid", "abide.pt", f"{_HF_AID}/abide.pt",
                "AID causal U-Net, ABIDE T1 slices (108 MB)",
                structure="srprep.models.aid:expected_shapes_abide"),
    WeightsFile("mni152-head", "templates", "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz",
                f"{_TEMPLATEFLOW}/tpl-MNI152NLin2009cAsym/"
                "tpl-MNI152NLin2009cAsym_res-01_T1w.nii.gz",
                "MNI152NLin2009cAsym T1w template, whole head, 1 mm (TemplateFlow): UniRes "
                "--common-output aligns whole-head scans to it (nilearn ships the brain only)"),
)}


def weights_dir(override: str | os.PathLike | None = None) -> Path:
    """The cache folder (see module docstring for the lookup order)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get("SRPREP_WEIGHTS_DIR"):
        return Path(os.environ["SRPREP_WEIGHTS_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "srprep" / "weights"


def entry(name: str) -> WeightsFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigurationError(f"unknown weights {name!r}; known: {', '.join(REGISTRY)}") from None


def local_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Where ``name`` is (or would be) cached: ``<dir>/<method>/<filename>``; a file
    placed directly in the folder (``<dir>/<filename>``) is accepted too."""
    w = entry(name)
    root = weights_dir(folder)
    flat = root / w.filename
    return flat if flat.is_file() else root / w.method / w.filename


def path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """Path of a cached file, or a one-line error saying how to get it."""
    p = local_path(name, folder)
    if not p.is_file():
        raise ConfigurationError(
            f"weights '{name}' not found in {weights_dir(folder)}: run "
            f"'srprep-weights fetch {name}' (or pass --weights-dir to a folder with "
            f"{entry(name).filename})")
    return p


def sha256(file: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def _recorded(p: Path) -> Path:
    return p.with_name(p.name + ".sha256")


def fetch(name: str, folder: str | os.PathLike | None = None, *, force: bool = False,
          url: str | None = None, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``name`` into the cache (atomic; verified against its checksum)."""
    from tqdm import tqdm

    w = entry(name)
    target = local_path(name, folder)
    if target.is_file() and not force:
        return target
    source = url or w.url
    request = urllib.request.Request(source, headers={"User-Agent": "srprep"})
    with atomic_path(target) as tmp, urllib.request.urlopen(request, timeout=timeout) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        digest = hashlib.sha256()
        with open(tmp, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True, desc=w.filename,
                                         disable=not progress) as bar:
            for block in iter(lambda: resp.read(1 << 20), b""):
                fh.write(block)
                digest.update(block)
                bar.update(len(block))
        got = digest.hexdigest()
        if w.sha256 and got != w.sha256:
            raise ConfigurationError(f"{w.filename}: checksum mismatch (expected {w.sha256}, got {got})")
    write_text(_recorded(target), got + "\n")
    return target


def load_state_dict(file: str | os.PathLike) -> dict:
    """``torch.load`` on the CPU with ``weights_only=True`` (CUDA-saved tensors too)."""
    import torch

    try:
        obj = torch.load(os.fspath(file), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigurationError(f"{Path(file).name}: not a loadable weights-only checkpoint "
                                 f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, dict):
        raise ConfigurationError(f"{Path(file).name}: expected a state_dict, got {type(obj).__name__}")
    return obj


def check_structure(state: dict, expected: dict, *, what: str = "checkpoint") -> None:
    """Raise a one-line error unless keys and shapes match ``expected``."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ConfigurationError(
            f"{what}: {len(missing)} missing key(s) (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})")
    wrong = [(k, tuple(state[k].shape), tuple(v)) for k, v in expected.items()
             if tuple(state[k].shape) != tuple(v)]
    if wrong:
        k, got, want = wrong[0]
        raise ConfigurationError(f"{what}: {len(wrong)} shape mismatch(es), e.g. {k}: {got} != {want}")


def verify(name: str, folder: str | os.PathLike | None = None) -> dict:
    """Check a cached file: present, checksum (published or recorded), structure."""
    w = entry(name)
    p = path(name, folder)
    report = {"name": name, "path": str(p), "sha256": sha256(p)}
    expected = w.sha256 or (_recorded(p).read_text().strip() if _recorded(p).is_file() else None)
    if expected and report["sha256"] != expected:
        raise ConfigurationError(f"{p.name}: checksum mismatch (expected {expected})")
    report["checksum"] = "published" if w.sha256 else ("recorded" if expected else "unknown")
    if w.structure and p.name.endswith((".pt", ".pth")):
        module, func = w.structure.split(":")
        try:
            shapes = getattr(import_module(module), func)()
        except (ImportError, AttributeError):
            report["structure"] = "not checked (network not available in this version)"
        else:
            check_structure(load_state_dict(p), shapes, what=p.name)
            report["structure"] = f"ok ({len(shapes)} tensors)"
    return report


#: the official models' context range in training (6-20 directions of one shell)
PCCNN_OFFICIAL_MAX_CONTEXT = 20


def pccnn_max_context(weights: str | os.PathLike) -> int:
    """Largest context (directions of one shell) a PCCNN checkpoint was trained on:
    ``q.q_in_max`` of the ``srprep-train`` sidecar beside it, else the official models' 20.
    Here, not in :mod:`srprep.models.pccnn`, so that planning a run does not import torch."""
    import json

    sidecar = Path(weights).with_suffix(".json")
    try:
        return int(json.loads(sidecar.read_text())["q"]["q_in_max"])
    except (OSError, ValueError, KeyError, TypeError):
        return PCCNN_OFFICIAL_MAX_CONTEXT
