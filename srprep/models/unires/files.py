"""UniRes on NIfTI files: co-registration, optional atlas-aligned grid, fit, writing.

These are the functions the Pydra tasks call; each output keeps the dtype and intensity
scaling of its channel's first input.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srprep.core.nifti import load_image, save_like

from .fit import InputImage, Settings, fit

#: margin (mm) around the MNI152 brain for the ``common_output`` box
ATLAS_MARGIN_MM = 8.0


def _load(in_files) -> list:
    images = [load_image(f, allow_4d=False) for f in in_files]
    return images


def coregister_files(in_files: list, *, fast: bool = True, seed: int | None = None
                     ) -> list[list[list[float]]]:
    """Rigid transforms of every image to the first (identity for the first); ``seed``
    of ANTs' metric sampling (None: :data:`srprep.core.register.DEFAULT_SEED`)."""
    from srprep.core.register import coregister

    images = _load(in_files)
    mats = coregister([(np.asarray(im.dataobj), im.affine) for im in images], fast=fast,
                      seed=seed)
    return [m.tolist() for m in mats]


def atlas_image() -> tuple[np.ndarray, np.ndarray]:
    """MNI152 2009 T1 template shipped with nilearn (1 mm, brain-masked)."""
    import nibabel as nib
    from nilearn import datasets

    img = nib.load(Path(datasets.__file__).parent / "data"
                   / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


#: output fields of view for ``crop``/``common_output``
FOVS = ("brain", "head")


def atlas_box(fov: str = "brain") -> tuple[np.ndarray, np.ndarray]:
    """World-space (RAS+ mm) corners (lo, hi) of the MNI152 box for a field of view.

    ``brain``: the template's brain + 8 mm; ``head``: the template's whole field of view
    (197 x 233 x 189 mm, skull and upper neck included).
    """
    data, affine = atlas_image()
    if fov == "brain":
        idx = np.argwhere(data > 0)
        lo, hi = idx.min(0), idx.max(0)
        margin = ATLAS_MARGIN_MM
    elif fov == "head":
        lo, hi = np.zeros(3), np.asarray(data.shape, float) - 1
        margin = 0.0
    else:
        raise ValueError(f"unknown field of view {fov!r}; use one of {FOVS}")
    lo_mm = affine[:3, :3] @ lo + affine[:3, 3] - margin
    hi_mm = affine[:3, :3] @ hi + affine[:3, 3] + margin
    return lo_mm, hi_mm


def atlas_grid(voxel_size, fov: str = "brain", cap: int | None = 256
               ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Grid over an MNI152 box (:func:`atlas_box`) at ``voxel_size`` mm.

    With ``cap`` (``common_output``) the dims become 2^k or 3*2^k, at most ``cap``,
    re-centred (192 x 256 x 192 for the brain at 1 mm); ``cap=None`` (``crop``) keeps
    the box as is.
    """
    from .meanspace import cnn_friendly_grid

    lo_mm, hi_mm = atlas_box(fov)
    vs = np.broadcast_to(np.asarray(voxel_size, float), (3,))
    shape = tuple(int(np.floor((h - lo) / v + 1e-6)) + 1 for lo, h, v in zip(lo_mm, hi_mm, vs))
    grid = np.diag([*vs, 1.0])
    grid[:3, 3] = lo_mm
    if cap is None:
        return grid, shape
    return cnn_friendly_grid(grid, shape, cap)


#: TemplateFlow identifiers of the two templates (``space-`` of --common-output outputs)
BRAIN_TEMPLATE = "MNI152NLin2009aSym"      # nilearn's mni_icbm152_t1_tal_nlin_sym_09a
HEAD_TEMPLATE = "MNI152NLin2009cAsym"      # weights registry "mni152-head" (TemplateFlow)


def registration_template() -> tuple[np.ndarray, np.ndarray, str, bool]:
    """The template ``common_output`` aligns to: (data, affine, TemplateFlow id,
    whole head?).  The whole-head MNI152NLin2009cAsym T1w when it is in the weights
    cache (``srprep-weights fetch mni152-head``): a head with scalp and neck registers
    to a head; otherwise nilearn's brain-only template (the caller warns)."""
    import nibabel as nib

    from srprep.models.weights import local_path

    head = local_path("mni152-head")
    if head.is_file():
        img = nib.load(head)
        return np.asarray(img.dataobj, dtype=np.float32), img.affine, HEAD_TEMPLATE, True
    data, affine = atlas_image()
    return data, affine, BRAIN_TEMPLATE, False


def align_to_atlas(data: np.ndarray, affine: np.ndarray, seed: int | None = None, *,
                   rigid: bool = False, template=None) -> np.ndarray:
    """Matrix (template point -> image point, RAS) aligning an image to the template.

    Default: a 7-parameter similarity (rigid + one isotropic scale), as UniRes' reference
    aligns to its atlas; ``rigid``: 6 parameters (``--atlas-rigid``).  ``template``:
    (data, affine) to align to (default :func:`registration_template`).  The template
    is used at 2 mm: ample for 6-7 parameters, ~8x less work than 1 mm.
    """
    from srprep.core.register import register
    from srprep.core.resample import grid_for_voxel_size, resample
    import tempfile

    atlas, atlas_affine = template if template is not None else registration_template()[:2]
    grid, shape = grid_for_voxel_size(atlas_affine, atlas.shape, 2.0)
    atlas = resample(atlas, atlas_affine, grid, shape, order=1)
    with tempfile.TemporaryDirectory() as tmp:
        reg = register(data, affine, atlas, grid, Path(tmp) / "atlas.mat",
                       transform="rigid" if rigid else "similarity", fast=True,
                       init="centre-of-mass", seed=seed)
    return reg.matrix


def unires_files(in_files: list, channels: list[int], out_files: list,
                 transforms: list | None = None, *, common_output: bool = False,
                 crop: bool = False, fov: str = "brain", grid_like=None,
                 label_files: list | None = None, label_hosts: list[int] | None = None,
                 label_out_files: list | None = None,
                 coregistration_tolerance: float = 0.25, seed: int | None = None,
                 atlas_rigid: bool = False, **settings) -> dict:
    """Reconstruct NIfTI inputs; write one output per channel (and per label map).

    Args:
        in_files: input images (3-D).
        channels: channel index of each input (repeats share an index).
        out_files: one path per channel.
        transforms: per input, the RAS+ matrix from :func:`coregister_files` (affines
            become ``T^-1 M``); None: trust the headers.
        coregistration_tolerance: a transform that moves no point of the first input's
            field of view by this fraction of its smallest voxel is not applied (the
            headers already agree; see :func:`screen_transforms`).
        common_output: align to the MNI152 template (rigid) and use the atlas box
            (``fov``) with CNN-friendly dims at ``voxel_size``.
        crop: use the atlas box (``fov``) as the output grid *without* aligning the
            subject (UniRes ``--crop``: for data already in MNI-like world space).
        fov: ``brain`` or ``head`` (see :func:`atlas_box`).
        grid_like: NIfTI whose grid the outputs use (e.g. a ground truth's).
        label_files: label maps to carry along (UniRes ``--label_file``); each has the
            grid of its host input and follows that input's final alignment.
        label_hosts: index into ``in_files`` of each label map's host.
        label_out_files: one output path per label map.
        seed: ANTs' sampling seed of the atlas registration (``common_output``).
        settings: :class:`~srprep.models.unires.fit.Settings` fields.

    Returns:
        Summary of the fit (mode, iterations, noise, timings, grid).
    """
    from srprep.core.resample import resample_labels

    opts = Settings(**settings)
    label_files = list(label_files or [])
    label_hosts = list(label_hosts or [])
    label_out_files = list(label_out_files or [])
    if not len(label_files) == len(label_hosts) == len(label_out_files):
        raise ValueError("label_files, label_hosts and label_out_files differ in length")
    sources = _load(in_files)
    labels = [load_image(f, allow_4d=False) for f in label_files]
    for lab, host, f in zip(labels, label_hosts, label_files):
        if not 0 <= host < len(sources):
            raise ValueError(f"label host index {host} out of range for {len(sources)} inputs")
        if lab.shape[:3] != sources[host].shape[:3]:
            raise ValueError(f"label map {os.fspath(f)} has shape {lab.shape[:3]} but its "
                             f"host image has {sources[host].shape[:3]}")
    affines = [im.affine for im in sources]
    coregistration = []
    if transforms is not None:
        transforms, coregistration = screen_transforms(
            transforms, sources[0].affine, sources[0].shape[:3], coregistration_tolerance)
        affines = [np.linalg.solve(t, a) for t, a in zip(transforms, affines)]
    grid = None
    voxel_size = opts.voxel_size if opts.voxel_size else 1.0
    atlas = None
    if common_output:
        data, t_affine, template, whole_head = registration_template()
        to_atlas = align_to_atlas(np.asarray(sources[0].dataobj), affines[0], seed=seed,
                                  rigid=atlas_rigid, template=(data, t_affine))
        affines = [np.linalg.solve(to_atlas, a) for a in affines]
        grid = atlas_grid(voxel_size, fov, cap=256)
        xfm = Path(os.fspath(out_files[0])).with_name("atlas_xfm.txt")
        from srprep.core.register import write_ras_matrix

        write_ras_matrix(to_atlas, xfm)          # ITK text: template point -> image point
        atlas = {"template": template, "whole_head": whole_head,
                 "transform": "rigid" if atlas_rigid else "similarity",
                 "scale": round(float(np.cbrt(abs(np.linalg.det(to_atlas[:3, :3])))), 4),
                 "matrix": to_atlas.tolist(), "file": str(xfm)}
    elif crop:
        grid = atlas_grid(voxel_size, fov, cap=None)
    if grid_like is not None:
        import nibabel as nib

        ref = nib.load(os.fspath(grid_like))
        grid = (ref.affine, ref.shape[:3])
    images = [InputImage(np.asarray(im.dataobj, dtype=np.float32), a, int(c))
              for im, a, c in zip(sources, affines, channels)]
    result = fit(images, opts, grid=grid)
    n_channels = result.images.shape[0]
    if len(out_files) != n_channels:
        raise ValueError(f"{n_channels} channels but {len(out_files)} output paths")
    for c, path in enumerate(out_files):
        template = sources[channels.index(c)]
        save_like(result.images[c], result.affine, os.fspath(path), template)
    rigid = result.rigid or [np.eye(4)] * len(images)
    for lab, host, path in zip(labels, label_hosts, label_out_files):
        host_affine = rigid[host] @ images[host].affine   # final alignment of the host
        out = resample_labels(np.asanyarray(lab.dataobj), host_affine, result.affine,
                              result.shape)
        save_like(out, result.affine, os.fspath(path), lab)
    summary = result.summary()
    if atlas is not None:
        summary["atlas"] = atlas
        if not atlas["whole_head"]:
            summary.setdefault("warnings", []).append(
                f"--common-output aligned to {BRAIN_TEMPLATE}, a brain-only template: a "
                "scan with scalp and neck aligns better to the whole-head template "
                "(srprep-weights fetch mni152-head)")
    summary.update(grid_shape=list(result.shape),
                   grid_voxel_size=[round(float(v), 4) for v in
                                    np.sqrt((result.affine[:3, :3] ** 2).sum(0))],
                   coregistration=coregistration)
    return summary


def reset_origin_file(in_file, out_file) -> Path:
    """UniRes ``--res_origin`` for one CT: reslice onto a rotation-free grid centred on
    the world origin (see :func:`srprep.core.resample.reset_origin`), same dtype."""
    from srprep.core.resample import reset_origin

    src = load_image(in_file, allow_4d=False)
    data, affine = reset_origin(np.asarray(src.dataobj, dtype=np.float32), src.affine)
    return save_like(data, affine, os.fspath(out_file), src)


def displacement_mm(transform, affine: np.ndarray, shape) -> float:
    """Largest displacement (mm) that a RAS+ transform applies to the corners of the
    field of view of an image (``affine``, ``shape``); for a rigid transform no point
    inside moves further."""
    corners = np.array([[i, j, k, 1.0] for i in (-0.5, shape[0] - 0.5)
                        for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[2] - 0.5)]).T
    world = np.asarray(affine, float) @ corners
    moved = np.asarray(transform, float) @ world
    return float(np.linalg.norm((moved - world)[:3], axis=0).max())


def screen_transforms(transforms: list, affine: np.ndarray, shape, tolerance: float = 0.25
                      ) -> tuple[list[np.ndarray], list[dict]]:
    """Keep the headers where co-registration found (almost) nothing to correct.

    Why: images of one session whose headers already agree are moved by the registration's
    own error instead (0.13-0.21 mm on the demo, whose true relative motion is zero), and
    every such sub-voxel shift blurs the joint prior's edges.  A transform that moves no
    point of the reference field of view by ``tolerance`` x its smallest voxel size is
    replaced by the identity; real motion (millimetres, degrees) is far above that.

    Returns:
        (the transforms to apply, one record per image for the sidecar: estimated
        matrix, largest displacement in mm, rotation in degrees, applied or not).
    """
    from scipy.spatial.transform import Rotation

    from srprep.core.nifti import voxel_sizes

    limit = tolerance * float(np.min(voxel_sizes(affine)))
    applied, records = [], []
    for t in transforms:
        t = np.asarray(t, float)
        shift = displacement_mm(t, affine, shape)
        angle = float(np.degrees(np.linalg.norm(Rotation.from_matrix(t[:3, :3]).as_rotvec())))
        use = shift >= limit and shift > 0
        applied.append(t if use else np.eye(4))
        records.append({"max_displacement_mm": round(shift, 3),
                        "rotation_deg": round(angle, 3), "applied": bool(use),
                        "matrix": np.round(t, 6).tolist()})
    return applied, records
