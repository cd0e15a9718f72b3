"""``srprep-recon INPUT [INPUT ...] OUTPUT_DIR``: reconstruct raw Cartesian k-space
(fastMRI HDF5 or ISMRMRD) with AID and the zero-filled / SENSE-l1 baselines, and write a
BIDS dataset (``sub-<label>/anat/sub-<label>_rec-<method>_<suffix>.nii.gz`` + sidecars).

Fully sampled input is undersampled retrospectively (``--acceleration``, ``--mask``,
``--acs``) and the fully sampled image is written too (``rec-fullysampled``), with PSNR and
NRMSE of every method in its sidecar; input with missing lines is reconstructed as acquired.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from srprep.core.errors import ConfigurationError, InputError

log = logging.getLogger("srprep.recon")
METHODS = ("aid", "zerofilled", "sensel1")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srprep-recon", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT",
                   help="k-space files (.h5 fastMRI or ISMRMRD), then OUTPUT_DIR")
    p.add_argument("--participant-label", nargs="+", default=None,
                   help="one label per input (default: from the file name)")
    p.add_argument("--session-label", default=None)
    p.add_argument("--suffix", default=None,
                   help="BIDS suffix (default: from the file name / protocol, else T2w)")
    p.add_argument("--method", nargs="+", choices=METHODS, default=["aid", "zerofilled"])
    g = p.add_argument_group("undersampling (fully sampled input)")
    g.add_argument("--acceleration", type=int, default=4)
    g.add_argument("--mask", choices=["equispaced", "random"], default="equispaced")
    g.add_argument("--acs", type=int, default=0, help="central lines added to the mask")
    g.add_argument("--mask-seed", type=int, default=1234)
    g.add_argument("--maps-from", choices=["auto", "full", "acquired"], default="auto",
                   help="ESPIRiT calibration data (auto: full when retrospective)")
    g.add_argument("--no-crop-readout", action="store_true",
                   help="keep an oversampled readout (default: crop to the phase-encode size)")
    a = p.add_argument_group("AID")
    a.add_argument("--weights", type=Path, default=None,
                   help="AID checkpoint (a srprep-trained aid.pt or a released .pt)")
    a.add_argument("--model", default="aid-brain",
                   help="released weights name/config when --weights is not given "
                        "(aid-brain, aid-abide, ...; fetched with srprep-weights)")
    a.add_argument("--weights-dir", default=None)
    a.add_argument("--steps", type=int, default=100, help="reverse diffusion steps (50-1000)")
    a.add_argument("--dc-iters", type=int, default=4, help="data-consistency steps per step (K)")
    a.add_argument("--dc-step", type=float, default=1.0, help="data-consistency step size")
    a.add_argument("--dc-scale", type=float, default=1.0,
                   help="intensity of the data relative to the prior (reference: 0.15-1)")
    a.add_argument("--released-attention", action="store_true",
                   help="condition on the previous slice only, as the released code does")
    a.add_argument("--first-slice", choices=["recon", "full"], default="recon",
                   help="full: take slice 0 fully sampled (the reference's protocol)")
    a.add_argument("--seed", type=int, default=0)
    s = p.add_argument_group("SENSE-l1")
    s.add_argument("--lamda", type=float, default=0.005)
    s.add_argument("--iterations", type=int, default=100)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("-w", "--work-dir", type=Path, default=None)
    p.add_argument("--worker", choices=["debug", "cf"], default="debug")
    return p


def _label(path: Path) -> str:
    stem = path.name.split(".")[0]
    label = re.sub(r"[^A-Za-z0-9]", "", stem)
    return label or "01"


def _weights(opts) -> tuple[Path | None, str]:
    if "aid" not in opts.method:
        return None, ""
    from srprep.models.aid.configs import is_latent, released_name

    if opts.weights is not None:
        if not opts.weights.is_file():
            raise ConfigurationError(f"--weights {opts.weights}: no such file")
        side = opts.weights.with_suffix(".json")
    if is_latent(opts.model) and (opts.weights is None or not side.is_file()):
        raise ConfigurationError(
            f"--model {opts.model}: this prior works in a VQ autoencoder's latent space and "
            "srprep has no decoder for it, so it cannot reconstruct k-space")
    if opts.weights is not None:
        return opts.weights.resolve(), "" if side.is_file() else opts.model
    from srprep.models import weights as W

    name = opts.model if opts.model in W.REGISTRY else None
    if name is None:
        released_name(opts.model)            # a configuration name without a registry entry
        raise ConfigurationError(f"--model {opts.model}: give the checkpoint with --weights")
    return W.path(name, opts.weights_dir).resolve(), opts.model


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    if len(opts.inputs) < 2:
        parser.error("give at least one INPUT and the OUTPUT_DIR")
    *inputs, out_dir = opts.inputs
    try:
        for f in inputs:
            if not f.is_file():
                raise InputError(f"{f}: no such file")
        labels = opts.participant_label or [_label(f) for f in inputs]
        if len(labels) != len(inputs):
            raise ConfigurationError(f"--participant-label: {len(labels)} label(s) for "
                                     f"{len(inputs)} input(s)")
        bad = [lb for lb in labels if not re.fullmatch(r"[A-Za-z0-9]+", lb)]
        if bad or len(set(labels)) != len(labels):
            raise ConfigurationError(f"participant labels must be unique and alphanumeric: {labels}")
        if opts.acceleration < 1 or opts.steps < 1 or opts.dc_iters < 0:
            raise ConfigurationError("--acceleration and --steps must be >= 1, --dc-iters >= 0")
        if out_dir.exists() and not out_dir.is_dir():
            raise ConfigurationError(f"{out_dir}: exists and is not a folder")
        weights, model_config = _weights(opts)
    except (InputError, ConfigurationError) as exc:
        print(f"srprep-recon: error: {exc}", file=sys.stderr)
        return 2

    import os

    from srprep.bids_app import engine
    from srprep.bids_app.recon_export import export_recon, write_description
    from srprep.pipelines.aid import KSpaceReconWorkflow

    os.environ["SRPREP_DEVICE"] = opts.device
    work = (opts.work_dir or out_dir / ".srprep-work").resolve()
    engine.configure_environment(work, omp_nthreads=os.cpu_count() or 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_description(out_dir)
    failed = 0
    for f, label in zip(inputs, labels):
        wf = KSpaceReconWorkflow(
            in_file=f.resolve(), methods=list(opts.method), acceleration=opts.acceleration,
            mask=opts.mask, acs=opts.acs, mask_seed=opts.mask_seed, maps_from=opts.maps_from,
            crop_readout=not opts.no_crop_readout, weights=weights, model_config=model_config,
            steps=opts.steps, cond_iters=opts.dc_iters, eta=opts.dc_step, scale=opts.dc_scale,
            released_attention=opts.released_attention, seed=opts.seed,
            first_slice=opts.first_slice, lamda=opts.lamda, iterations=opts.iterations)
        outcome = engine.run(wf, work / f"sub-{label}", worker=opts.worker)
        if not outcome.ok:
            print(f"srprep-recon: {f.name} failed: {outcome.error}", file=sys.stderr)
            failed += 1
            continue
        o = outcome.outputs
        written = export_recon(out_dir, label, opts.session_label, opts.suffix, f,
                               list(opts.method), list(o.images), list(o.infos), o.prepared,
                               dict(o.prepare_info), weights=weights)
        for w in written:
            print(f"srprep-recon: wrote {w.relative_to(out_dir)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
