"""k-space reconstruction tasks: preparation (read, crop, undersample, coil maps) and one
reconstruction per method (AID posterior sampling, zero-filled, SENSE-l1); AID sampling
and training (slice preparation, training)."""
from __future__ import annotations

from pathlib import Path

from .compose import define_python

from ._types import File

RECON_METHODS = ("aid", "zerofilled", "sensel1")


@define_python(outputs=["out_file", "info"])
def PrepareKSpace(in_file: File, acceleration: int = 4, mask: str = "equispaced", acs: int = 0,
                  mask_seed: int = 1234, maps_from: str = "auto", crop_readout: bool = True
                  ) -> tuple[File, dict]:
    """Read a fastMRI HDF5 or ISMRMRD file and set up the reconstruction problem.

    Args:
        in_file: k-space file (fastMRI ``.h5`` or ISMRMRD ``.h5``/``.mrd``).
        acceleration: R of the retrospective mask (fully sampled input only).
        mask: ``equispaced`` or ``random`` phase-encode lines.
        acs: central lines added to the mask.
        mask_seed: seed of the random mask (reference: 1234).
        maps_from: ``auto``, ``full`` or ``acquired`` data for ESPIRiT.
        crop_readout: crop an oversampled readout to the phase-encode size (fastMRI 640->320).

    Returns:
        out_file: ``.npz`` with kspace, mask, maps (if multi-coil), reference (if retrospective).
        info: acquisition description (acceleration, mask, coils, voxel size, ...).
    """
    import numpy as np

    from srprep.core import rawdata
    from srprep.core.kspace import prepare_acquisition

    raw = rawdata.read_kspace(in_file)
    ks = raw.kspace
    if crop_readout and ks.shape[-2] > ks.shape[-1]:
        ks = rawdata.crop_readout(ks, ks.shape[-1])
    prep = prepare_acquisition(ks, acceleration=acceleration, kind=mask, acs=acs, seed=mask_seed,
                               maps_from=maps_from)
    info = dict(prep["info"])
    vox = raw.voxel_size if raw.recon_matrix == tuple(ks.shape[-2:]) else (1.0, 1.0, raw.voxel_size[2])
    info.update(voxel_size=[float(v) for v in vox], source=Path(in_file).name,
                suffix=rawdata.infer_suffix(Path(in_file).name, raw.header),
                geometry_from_header=raw.recon_matrix == tuple(ks.shape[-2:]))
    out = Path("prepared.npz").absolute()
    arrays = {k: v for k, v in prep.items() if k != "info" and v is not None}
    np.savez(out, **arrays)
    return out, info


@define_python(outputs=["out_file", "info"])
def ReconstructKSpace(prepared: File, method: str, weights: File | None = None,
                      model_config: str = "", steps: int = 100, cond_iters: int = 4,
                      eta: float = 1.0, scale: float = 1.0, released_attention: bool = False,
                      seed: int = 0, first_slice: str = "recon", lamda: float = 0.005,
                      iterations: int = 100) -> tuple[File, dict]:
    """Reconstruct every slice with one method (device from SRPREP_DEVICE).

    Args:
        prepared: output of :class:`PrepareKSpace`.
        method: ``aid``, ``zerofilled`` or ``sensel1``.
        weights: AID checkpoint (release format, or srprep-trained with its sidecar).
        model_config: released configuration name when the checkpoint has no sidecar.
        steps, cond_iters, eta, scale: posterior sampling (reverse steps, K, step, c).
        released_attention: condition on the previous slice only (as released).
        seed: sampling seed.
        first_slice: ``recon`` or ``full`` (fully sampled slice 0 as in the reference).
        lamda, iterations: SENSE-l1 regularisation and iterations.

    Returns:
        out_file: ``.npy`` complex (slices, readout, phase) in the input's units.
        info: settings, seconds, device.
    """
    import time

    import numpy as np

    from srprep.core import kspace as K

    d = np.load(prepared)
    ks, mask = d["kspace"], d["mask"]
    maps = d["maps"] if "maps" in d else None
    t0 = time.time()
    info: dict = {"method": method}
    if method == "zerofilled":
        img = np.stack([K.zero_filled(k, mask, None if maps is None else m)
                        for k, m in zip(ks, maps if maps is not None else [None] * len(ks))])
    elif method == "sensel1":
        mp = maps if maps is not None else np.ones_like(ks)
        img = np.stack([K.sense_l1(k, mask, m, lamda=lamda, iterations=iterations)
                        for k, m in zip(ks, mp)])
        info.update(lamda=lamda, iterations=iterations)
    elif method == "aid":
        from srprep.core.device import configure_threads, gpu_slot, select_device
        from srprep.models.aid import from_official_checkpoint
        from srprep.models.aid.recon import DCSettings, reconstruct_volume

        if weights is None:
            raise ValueError("AID reconstruction needs weights")
        device = select_device()
        configure_threads()
        net = from_official_checkpoint(weights, model_config or None)
        settings = DCSettings(steps=steps, cond_iters=cond_iters, eta=eta, scale=scale,
                              released_attention=released_attention, seed=seed)
        first = None
        if first_slice == "full":
            if "reference" not in d:
                raise ValueError("--first-slice full needs fully sampled input")
            first = d["reference"][0]
        with gpu_slot(device) as device:   # a free GPU of the node, or cpu
            img = reconstruct_volume(net, ks, mask, maps, settings, first_image=first,
                                     device=device, progress=True)
        info.update(settings.to_dict(), first_slice=first_slice, device=device,
                    model=net.config.to_dict())
    else:
        raise ValueError(f"unknown reconstruction method {method!r}")
    info["seconds"] = round(time.time() - t0, 2)
    if "reference" in d:
        from srprep.core.kspace import recon_metrics

        # with --first-slice full, slice 0 of the AID output is the fully sampled slice
        # itself: score every method on the other slices (the reference's protocol)
        skip = first_slice == "full" and len(img) > 1
        info["metrics"] = recon_metrics(img, d["reference"], skip_first=skip)
        info["metrics"]["excluded_slices"] = [0] if skip else []
    out = Path(f"recon-{method}.npy").absolute()
    np.save(out, img.astype(np.complex64))
    return out, info


@define_python(outputs=["out_file", "info"])
def AIDSample(weights: File, n_frames: int = 8, mode: str = "prospective",
              context: File | None = None, model_config: str = "", steps: int = 100,
              sampler: str = "ancestral", released_attention: bool = False, seed: int = 0
              ) -> tuple[File, dict]:
    """Generate a slice sequence with an AID prior (device from SRPREP_DEVICE).

    Args:
        weights: AID checkpoint.
        n_frames: frames to generate (prospective) — retrospective gives one per context frame.
        mode: ``prospective`` (one after another) or ``retrospective`` (frame i+1 from the
            true frames 0..i, all in parallel; needs ``context``).
        context: ``.npy`` (T, C, H, W) real frames: the warm-start window (prospective) or
            the conditioning sequence (retrospective); none = cold start.
        model_config: released configuration name when the checkpoint has no sidecar.
        steps: reverse steps (respaced from 1000).
        sampler: ``ancestral`` (learned variance) or ``renoise`` (the reference's fast sampler).
        released_attention: condition on the most recent frame only, as released.
        seed: sampling seed.

    Returns:
        out_file: ``.npy`` (N, C, H, W) generated frames in the prior's units.
        info: settings and seconds.
    """
    import time

    import numpy as np
    import torch

    from srprep.core.device import configure_threads, gpu_slot, select_device
    from srprep.models.aid import from_official_checkpoint
    from srprep.models.aid.diffusion import GaussianDiffusion
    from srprep.models.aid.sampling import prospective, retrospective

    device = select_device()
    configure_threads()
    with gpu_slot(device) as device:   # a free GPU of the node, or cpu
        net = from_official_checkpoint(weights, model_config or None).to(device)
        diff = GaussianDiffusion.linear(1000, learn_sigma=net.config.learn_sigma, respacing=steps)
        gen = torch.Generator(device=device).manual_seed(seed)
        ctx = None if context is None else torch.as_tensor(np.load(context), dtype=torch.float32,
                                                            device=device)[None]
        t0 = time.time()
        if mode == "retrospective":
            if ctx is None:
                raise ValueError("retrospective sampling needs context frames")
            out = retrospective(net, diff, ctx, sampler=sampler, generator=gen)
        elif mode == "prospective":
            c, n = net.config.in_channels, net.config.image_size
            out = prospective(net, diff, n_frames, window=ctx, shape=(1, c, n, n), sampler=sampler,
                              released_attention=released_attention, generator=gen)
        else:
            raise ValueError(f"unknown sampling mode {mode!r}")
    path = Path("samples.npy").absolute()
    np.save(path, out[0].cpu().numpy())
    info = {"mode": mode, "start": "cold" if ctx is None else "warm", "steps": steps,
            "sampler": sampler, "seed": seed, "released_attention": released_attention,
            "frames": int(out.shape[1]), "seconds": round(time.time() - t0, 2), "device": device}
    return path, info


@define_python
def PrepareAIDSlices(in_file: File, name: str, size: int = 64, axis: int = 2,
                     kspace: bool = False) -> dict:
    """Slices for AID training: a NIfTI volume (magnitude, 1 channel, along ``axis``) or a
    fully sampled k-space file (coil-combined complex, 2 channels).

    Args:
        in_file: NIfTI image or k-space file (fastMRI/ISMRMRD HDF5).
        name: volume name (subject first; keeps cache entries apart).
        size: slice size after padding to a square and resizing.
        axis: slicing axis of NIfTI volumes (2 = axial for RAS-like data).
        kspace: ``in_file`` is a k-space file.

    Returns:
        out: ``.npy`` slices (S, C, size, size), their count and channels, and the name.
    """
    import numpy as np

    from srprep.models.aid.data import kspace_to_slices, load_anat_slices

    slices = (kspace_to_slices(in_file, size=size) if kspace
              else load_anat_slices([in_file], axis=axis, size=size)[0])
    out = Path("slices.npy").absolute()
    np.save(out, slices)
    return {"file": str(out), "name": name, "slices": int(slices.shape[0]),
            "channels": int(slices.shape[1])}


@define_python(outputs=["weights", "report"])
def TrainAID(volumes: list[dict], subject_split: dict, config: dict) -> tuple[File, dict]:
    """AID training (Lightning, one or two stages) on the train subjects, then a test on
    the held-out subjects: teacher-forced eps-MSE with and without the preceding slices,
    and simulated 8-coil R=4 reconstructions (AID vs zero-filled vs SENSE-l1).

    Args:
        volumes: outputs of PrepareAIDSlices.
        subject_split: {"train": [...], "val": [...], "test": [...]} subject names.
        config: architecture (tiny_config arguments) and AIDTrainConfig fields, see
            :func:`srprep.models.aid.train.run_training`.

    Returns:
        weights: ``aid.pt`` (EMA weights, release format) with its ``aid.json`` sidecar.
        report: training history and test figures.
    """
    from srprep.core.device import configure_threads
    from srprep.models.aid.train import run_training

    configure_threads()
    report = run_training(volumes, subject_split, config, Path("training").absolute())
    return Path(report["weights"]), report
