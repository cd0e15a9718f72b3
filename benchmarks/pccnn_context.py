"""PCCNN context size: a whole shell at once vs subsets in the trained range (issue #16).

The network aggregates its context by a *sum* and is trained on 6-20 directions of one
shell; an acquisition with 30-90 directions per shell presents it with several times more.
This scores, on held-out directions of simulated 3-shell phantoms (dipy's 64-direction
table, SNR 30; every 8th direction of each shell held out, the rest or a part of it
acquired), the prediction from the whole shell against subsets of at most ``N`` volumes
averaged (``predict_subject(max_context=N)``), and SH interpolation, by NRMSE against the
noise-free signal.  Needs a model trained by ``srprep-train pccnn`` (weights file).

    python benchmarks/pccnn_context.py MODEL/pccnn/pccnn_weights.pt --max-context 0 20 12
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from _common import header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights")
    parser.add_argument("--max-context", type=int, nargs="+", default=[0, 20, 12],
                        help="0: the whole shell")
    parser.add_argument("--acquired-every", type=int, nargs="+", default=[1, 2],
                        help="keep every k-th of the non-held-out directions per shell")
    parser.add_argument("--subjects", type=int, nargs="+", default=[9, 10])
    args = parser.parse_args()
    from srprep.core.dmri_sim import multishell_phantom
    from srprep.core.dwi import shell_labels
    from srprep.core.evaluate import score_angular
    from srprep.core.sh import sh_interpolate
    from srprep.models.pccnn.inference import predict_subject
    from srprep.models.pccnn.network import from_official_checkpoint

    model = from_official_checkpoint(args.weights)
    print(header())
    print("| acquired per shell | subject | SH | " + " | ".join(
        "whole shell" if n == 0 else f"subsets <= {n}" for n in args.max_context) + " |")
    for every in args.acquired_every:
        for seed in args.subjects:
            ph = multishell_phantom((24, 24, 16), snr=30, seed=seed)
            shells = shell_labels(ph.bvals)
            held, keep = [], list(np.flatnonzero(shells == 0))
            for s in sorted(set(shells) - {0}):
                idx = np.flatnonzero(shells == s)
                held += list(idx[::8])
                keep += list(np.setdiff1d(idx, idx[::8])[::every])
            held, keep = np.array(held), np.sort(keep)
            data, bvals, bvecs = ph.noisy[..., keep], ph.bvals[keep], ph.bvecs[keep]
            truth = ph.signal[..., held]
            sh = sh_interpolate(data, bvals, bvecs, ph.bvals[held], ph.bvecs[held])
            cells = [f"{score_angular(truth, sh, ph.mask)['nrmse']:.4f}"]
            for n in args.max_context:
                start = time.perf_counter()
                pred, report = predict_subject(model, data, bvals, bvecs, ph.bvals[held],
                                               ph.bvecs[held], ph.mask, ph.affine,
                                               max_context=n or None)
                cells.append(f"{score_angular(truth, pred, ph.mask)['nrmse']:.4f} "
                             f"({time.perf_counter() - start:.1f} s)")
            n_shell = int(np.sum(shell_labels(bvals) == sorted(set(shells) - {0})[0]))
            print(f"| {n_shell} | {seed} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
