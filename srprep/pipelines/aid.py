"""k-space reconstruction workflow: prepare once, then every requested method (AID and the
zero-filled / SENSE-l1 baselines) on the same measured data, mask and coil maps."""
from __future__ import annotations

from pydra.compose import workflow

from srprep.tasks.compose import define_workflow
from srprep.tasks._types import File
from srprep.tasks.aid import AIDSample, PrepareKSpace, ReconstructKSpace
from srprep.tasks.aid import PrepareAIDSlices, TrainAID


@define_workflow(outputs=["images", "infos", "prepared", "prepare_info"])
def KSpaceReconWorkflow(in_file: File, methods: list[str], acceleration: int = 4,
                        mask: str = "equispaced", acs: int = 0, mask_seed: int = 1234,
                        maps_from: str = "auto", crop_readout: bool = True,
                        weights: File | None = None, model_config: str = "", steps: int = 100,
                        cond_iters: int = 4, eta: float = 1.0, scale: float = 1.0,
                        released_attention: bool = False, seed: int = 0,
                        first_slice: str = "recon", lamda: float = 0.005,
                        iterations: int = 100) -> tuple[list, list, File, dict]:
    """Reconstruct one k-space file with several methods.

    Parameters are those of :class:`~srprep.tasks.aid.PrepareKSpace` and
    :class:`~srprep.tasks.aid.ReconstructKSpace`; ``methods`` is split over.

    Returns
    -------
    images : list of File
        ``.npy`` complex volumes, one per method (in ``methods`` order).
    infos : list of dict
        Per-method settings, timing and (retrospective input) PSNR/NRMSE.
    prepared : File
        The prepared problem (measured k-space, mask, maps, reference).
    prepare_info : dict
        Acquisition description.
    """
    prep = workflow.add(PrepareKSpace(in_file=in_file, acceleration=acceleration, mask=mask,
                                      acs=acs, mask_seed=mask_seed, maps_from=maps_from,
                                      crop_readout=crop_readout), name="prepare")
    rec = workflow.add(ReconstructKSpace(
        prepared=prep.out_file, weights=weights, model_config=model_config, steps=steps,
        cond_iters=cond_iters, eta=eta, scale=scale, released_attention=released_attention,
        seed=seed, first_slice=first_slice, lamda=lamda, iterations=iterations,
    ).split(method=methods).combine("method"), name="reconstruct")
    return rec.out_file, rec.info, prep.out_file, prep.info


@define_workflow(outputs=["samples", "info"])
def AIDSamplingWorkflow(weights: File, n_frames: int = 8, mode: str = "prospective",
                        context: File | None = None, model_config: str = "", steps: int = 100,
                        sampler: str = "ancestral", released_attention: bool = False,
                        seeds: list[int] = (0,)) -> tuple[list, list]:
    """Draw one slice sequence per seed (split over ``seeds``), retrospective or
    prospective, warm (``context``) or cold start; see :class:`~srprep.tasks.aid.AIDSample`.

    Returns
    -------
    samples : list of File
        ``.npy`` (N, C, H, W) per seed.
    info : list of dict
        Settings and timing per seed.
    """
    node = workflow.add(AIDSample(
        weights=weights, n_frames=n_frames, mode=mode, context=context,
        model_config=model_config, steps=steps, sampler=sampler,
        released_attention=released_attention).split(seed=list(seeds)).combine("seed"),
        name="sample")
    return node.out_file, node.info


@define_workflow(outputs=["weights", "report"])
def AIDTraining(images: list[File], names: list[str], subject_split: dict, config: dict,
                size: int = 64, axis: int = 2, kspace: bool = False) -> tuple[File, dict]:
    """Cut every volume (NIfTI or fully sampled k-space) into slices, then train AID and
    test it on the held-out subjects.

    Parameters
    ----------
    images : list[File]
        Anatomical NIfTI volumes, or k-space files when ``kspace``.
    names : list[str]
        ``sub-<label>...`` per volume; the subject part keys the split.
    subject_split : dict
        Subject-level train/val/test lists.
    config : dict
        Architecture and training settings (see :func:`srprep.models.aid.train.run_training`).
    size, axis, kspace :
        Slice size, slicing axis of NIfTI volumes, input kind.

    Returns
    -------
    weights : File
        ``aid.pt`` (EMA weights, release format) with its sidecar.
    report : dict
        Training history and test figures.
    """
    prepared = workflow.add(
        PrepareAIDSlices(size=size, axis=axis, kspace=kspace).split(
            ("in_file", "name"), in_file=images, name=names).combine("name"), name="prepare")
    trained = workflow.add(TrainAID(volumes=prepared.out, subject_split=subject_split,
                                    config=config), name="train")
    return trained.weights, trained.report
