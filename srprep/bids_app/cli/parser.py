"""Command-line parser of the BIDS App (BIDS-Apps positional interface, fMRIPrep-style
options).  Imports nothing heavy: ``srprep --help`` must be instant."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from ..methods import DEFAULT_METHOD, METHODS
from ..naming import clean_label

EXIT_CODES = """\
exit codes:
  0  every selected participant was processed
  1  at least one participant failed (the others were still processed and exported)
  2  usage error or unusable dataset (nothing was processed)
"""


def _seed(text: str) -> int:
    """A non-negative integer (ANTs and numpy seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**31:
        raise argparse.ArgumentTypeError(f"must be between 0 and 2^31 - 1, got {value}")
    return value


def _label(prefix: str):
    def check(value: str) -> str:
        try:
            return clean_label(value, prefix)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    check.__name__ = f"{prefix} label"
    return check


def _to_gb(value: str) -> float:
    """``16G``, ``16000`` (MB), ``1.5T``, ``512M`` -> GB."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)[bB]?\s*", value)
    if not m:
        raise argparse.ArgumentTypeError(f"invalid memory amount {value!r} (e.g. 16G, 16000)")
    number, unit = float(m.group(1)), (m.group(2) or "M").upper()
    return number * {"K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3}[unit]


def _int_at_least(minimum: int, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {n}")
    return n


def _non_negative_int(value: str) -> int:
    return _int_at_least(0, value)


def _positive_int(value: str) -> int:
    return _int_at_least(1, value)


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0 < x <= 20:
        raise argparse.ArgumentTypeError(f"voxel size must be in (0, 20] mm, got {x}")
    return x


class _Resolution(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) not in (1, 3):
            parser.error(f"{option_string} takes 1 (isotropic) or 3 voxel sizes in mm")
        setattr(namespace, self.dest, values * 3 if len(values) == 1 else values)
        namespace.output_resolution_given = True   # methods with a data-driven default


class _VersionAction(argparse.Action):
    """``--version``: also says whether the installed dependencies are the locked ones
    (computed only when asked, so that ordinary start-up stays fast)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs):
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0,
                         help="print the version, and whether the dependencies match the "
                              "lock file, then exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from ..provenance import version_line

        print(version_line())
        parser.exit()


def _default_nprocs() -> int:
    for var in ("SLURM_CPUS_PER_TASK", "NSLOTS"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def build_parser() -> argparse.ArgumentParser:
    methods = "\n".join(f"  {name:8s} {desc}" for name, (_, _, desc) in METHODS.items())
    parser = argparse.ArgumentParser(
        prog="srprep",
        description="MRI super-resolution and reconstruction BIDS App.",
        epilog=f"methods:\n{methods}\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("bids_dir", type=Path, help="root of the input BIDS dataset")
    parser.add_argument("output_dir", type=Path,
                        help="output folder (a BIDS derivative dataset; may be "
                             "<bids_dir>/derivatives/<name>, not elsewhere inside bids_dir)")
    parser.add_argument("analysis_level", choices=["participant"],
                        help="processing stage (only 'participant')")
    parser.add_argument("--version", action=_VersionAction)

    sel = parser.add_argument_group("selecting data")
    sel.add_argument("--participant-label", "--participant_label", nargs="+", default=[],
                     type=_label("sub"), metavar="LABEL",
                     help="participants to process (with or without 'sub-'); default all")
    sel.add_argument("--session-label", "--session_label", nargs="+", default=[],
                     type=_label("ses"), metavar="LABEL",
                     help="sessions to process (with or without 'ses-'); default all")
    sel.add_argument("--skip-bids-validation", "--skip_bids_validation", action="store_true",
                     help="do not validate the input dataset")
    sel.add_argument("--bids-filter-file", type=Path, default=None, metavar="FILE",
                     help="JSON file selecting inputs per query, as fMRIPrep's, e.g. "
                          '{"t1w": {"acquisition": "mprage"}, "t2w": {"run": 1}} '
                          "(pybids entity names; null: entity absent)")
    sel.add_argument("--bids-database-dir", type=Path, default=None, metavar="DIR",
                     help="pybids index folder: built there once and reused by later runs "
                          "(delete it when the dataset changes); default: a fresh index "
                          "in the work directory for every run")

    proc = parser.add_argument_group("processing")
    proc.add_argument("--method", nargs="+", default=[DEFAULT_METHOD], choices=list(METHODS),
                      metavar="METHOD",
                      help=f"method(s) to run (default {DEFAULT_METHOD}): {', '.join(METHODS)}")
    proc.add_argument("--output-resolution", "--vx", nargs="+", type=_positive_float,
                      action=_Resolution, default=[1.0, 1.0, 1.0], metavar="MM",
                      help="output voxel size in mm: one value (isotropic) or three")

    ur = parser.add_argument_group("UniRes options (--method unires)")
    ur.add_argument("--reg-scale", type=float, default=4.0, metavar="S",
                    help="final regularisation multiplier (default 4; larger = smoother)")
    ur.add_argument("--scale", action="store_true",
                    help="estimate even/odd slice intensity factors (interleaved 2-D scans)")
    ur.add_argument("--unified-rigid", action="store_true",
                    help="refine the rigid alignment of each image inside the fit (on "
                         "UniRes' mean space: on the inputs' lattice it cannot move)")
    ur.add_argument("--ct", action="store_true", help="inputs are CT (Hounsfield units)")
    ur.add_argument("--linear", action="store_true",
                    help="trilinear reslice onto the common grid only (no fit)")
    ur.add_argument("--common-output", action="store_true",
                    help="MNI-aligned (rigid) grid with dims 2^k or 3*2^k (<= 256): every "
                         "participant gets the same CNN-friendly affine and shape")
    ur.add_argument("--atlas-rigid", "--atlas_rigid", action="store_true",
                    help="with --common-output: align rigidly (6 parameters) instead of the "
                         "default 7-parameter similarity (rigid + isotropic scale, as UniRes' "
                         "reference), which resizes every head to the template's size")
    ur.add_argument("--output-grid", choices=["auto", "mean", "inputs"], default="auto",
                    help="auto (default): reconstruct on the lattice of the first input that "
                         "already has the output voxel size (usually the T1w), so it is not "
                         "interpolated and the outputs overlay it voxel for voxel; otherwise "
                         "in the first input's (the T1w's) orientation, on the lattice the "
                         "inputs sample at the output voxel size axis by axis, holding every "
                         "input's whole field of view; 'mean': UniRes' own mean space (the "
                         "barycentre of the input affines); 'inputs': the same as auto")
    ur.add_argument("--crop", action="store_true",
                    help="output grid = the MNI152 box of --fov at --output-resolution, "
                         "without aligning the subject (for data already in MNI-like world "
                         "space; --common-output aligns first)")
    ur.add_argument("--fov", choices=["brain", "head"], default="brain",
                    help="box for --crop/--common-output: brain (+8 mm) or the whole head "
                         "(default brain)")
    ur.add_argument("--res-origin", "--res_origin", action="store_true",
                    help="with --ct: reslice each CT onto a rotation-free grid centred on the "
                         "world origin first (for scanner affines that are badly off)")
    ur.add_argument("--label-file", "--label_file", nargs="+", type=Path, default=[],
                    metavar="PATH",
                    help="label maps (BIDS-named, e.g. sub-01_dseg.nii.gz; files, or folders "
                         "searched for *_dseg/*_mask.nii[.gz] not in a template space) to "
                         "carry onto the output grid with the input whose grid each shares")
    ur.add_argument("--include-echoes", action="store_true",
                    help="make each echo of a multi-echo image a channel of its own "
                         "(default: echo- images are skipped with a warning)")
    ur.add_argument("--denoising", action="store_true",
                    help="keep the native voxel size (MTV denoising when sizes agree)")
    ur.add_argument("--no-coregister", action="store_true",
                    help="trust the headers: no rigid co-registration before the fit")
    ur.add_argument("--coregistration-tolerance", type=float, default=0.25, metavar="F",
                    help="apply a co-registration transform only if it moves some point of "
                         "the first image's field of view by at least F x its smallest voxel "
                         "(default 0.25; 0 applies every estimate)")
    ur.add_argument("--max-iter", type=_positive_int, default=512,
                    help="maximum ADMM iterations (default 512)")
    ur.add_argument("--tolerance", type=float, default=1e-4,
                    help="stopping tolerance on the relative objective gain (default 1e-4)")

    dl = parser.add_argument_group("learned methods (babyai, easysr, pccnn)")
    dl.add_argument("--atlas", type=Path, default=None,
                    help="babyai's atlas (FILE, or 'mni152' for the adult MNI152 on the "
                         "182x218x182 1 mm grid); default: the atlas the weights were "
                         "trained on (released weights: the infant atlas, "
                         "'srprep-weights fetch babyai-atlas')")
    dl.add_argument("--sw-overlap", type=float, default=0.5,
                    help="sliding-window overlap (default 0.5, the BABY-AI reference)")
    dl.add_argument("--sw-mode", choices=["constant", "gaussian"], default="constant",
                    help="window blending: constant (reference) or gaussian")
    dl.add_argument("--sw-batch-size", type=_positive_int, default=4,
                    help="windows per forward pass (larger: faster on GPUs, more memory)")
    dl.add_argument("--template", type=Path, default=None,
                    help="easysr: rigid registration to this template before inference "
                         "(e.g. EasySR's bmc_t2_rat.nii.gz); default: the image's own axes")
    dl.add_argument("--target-bvals", type=Path, default=None,
                    help="pccnn/sh: FSL .bval of the scheme to synthesise (with --target-bvecs)")
    dl.add_argument("--target-bvecs", type=Path, default=None,
                    help="pccnn/sh: FSL .bvec of the scheme to synthesise")
    dl.add_argument("--angular-factor", type=_positive_int, default=2,
                    help="pccnn/sh without target files: N x the acquired directions per "
                         "shell, uniformly spread (default 2)")
    dl.add_argument("--pccnn-variant", default="PCCNN",
                    choices=["PCCNN", "PCCNN-Bv", "PCCNN-Sp", "PCCNN-Bv-Sp"],
                    help="PCCNN variant (default PCCNN)")
    dl.add_argument("--pccnn-model", type=Path, default=None,
                    help="a PCCNN checkpoint file (e.g. from srprep-train pccnn) instead of "
                         "the official weights of --pccnn-variant")
    dl.add_argument("--pccnn-context", choices=["shell", "all"], default="shell",
                    help="context per target shell (default; as trained) or all shells at "
                         "once (the reference)")
    dl.add_argument("--pccnn-max-context", type=_non_negative_int, default=None, metavar="N",
                    help="with --pccnn-context shell, split a shell of more than N acquired "
                         "directions into well-spread subsets of at most N, predict from each "
                         "and average (the network sums its context); 0: whole shells. "
                         "Default: the top of the model's training range (q_in_max of a "
                         "srprep-train model, 20 for the official weights)"),
    dl.add_argument("--pccnn-parity", choices=["srprep", "reference"], default="srprep",
                    help="'reference' reproduces the reference's prediction protocol exactly "
                         "(all-shell context, tiles padded with normalised 0, targets in "
                         "chunks of 10 in file order); default: srprep's")
    dl.add_argument("--easysr-model", default="mixed", metavar="{mixed,t1,FILE}",
                    help="easysr generator: the official 'mixed' (default) or 't1' model, "
                         "or a generator .pth file (e.g. from srprep-train easysr)")

    perf = parser.add_argument_group("resources")
    perf.add_argument("--nprocs", "--nthreads", "--n-cpus", "--n_cpus", type=_positive_int,
                      default=None, help="CPU cores to use in total (default: all available)")
    perf.add_argument("--omp-nthreads", type=_positive_int, default=None,
                      help="threads per process (default: min(8, nprocs))")
    perf.add_argument("--mem", "--mem-mb", "--mem_mb", type=_to_gb, default=0.0,
                      metavar="AMOUNT",
                      help="memory the default worker may commit at once, e.g. 16G or 16000 "
                           "(MB): a job starts only while the estimates of the running jobs "
                           "and its own fit")
    perf.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                      help="device for model inference (auto: CUDA when available)")
    perf.add_argument("--gpus", type=_positive_int, default=None, metavar="N",
                      help="use at most N of the visible GPUs (default: all of "
                           "CUDA_VISIBLE_DEVICES); each GPU runs one GPU step at a time")
    perf.add_argument("--weights-dir", type=Path, default=None,
                      help="folder with model weights (default: $SRPREP_WEIGHTS_DIR or the "
                           "user cache)")

    run = parser.add_argument_group("execution")
    run.add_argument("-w", "--work-dir", type=Path, default=Path("work"),
                     help="work folder for intermediate results; reuse it to resume "
                          "(default ./work)")
    run.add_argument("--worker", choices=["cf", "debug", "slurm"], default=None,
                     help="Pydra worker: cf (local processes, default), debug (serial, "
                          "in-process) or slurm (one sbatch job per step)")
    run.add_argument("--sbatch-args", default="",
                     help="extra sbatch arguments for --worker slurm, given with '=' "
                          "(e.g. --sbatch-args='-p short --mem=8G')")
    run.add_argument("--gpu-sbatch-args", default="--gres=gpu:1",
                     help="sbatch arguments added to GPU steps with --worker slurm unless "
                          "--device cpu (default '--gres=gpu:1')")
    run.add_argument("--config-file", type=Path, default=None, metavar="TOML",
                     help="repeat a run: the config.toml it wrote (logs/<run_id>/); options "
                          "given on this command line take precedence")
    run.add_argument("--reports-only", action="store_true",
                     help="only re-write the participant reports and the index from the "
                          "last run's records (nothing is processed)")
    run.add_argument("--stop-on-first-crash", action="store_true",
                     help="stop at the first failed step instead of carrying on with the "
                          "other methods and participants")
    run.add_argument("--random-seed", type=_seed, default=None, metavar="N",
                     help="seed every stochastic step (ANTs registration sampling, target "
                          "q-space directions); default: each step's fixed seed, so runs "
                          "repeat exactly either way. Recorded in config.toml")
    run.add_argument("--write-graph", action="store_true",
                     help="write each method's workflow graph (Graphviz .dot, and .svg "
                          "when Graphviz is installed) to <output_dir>/logs/<run_id>/graphs")
    run.add_argument("--clean-workdir", action="store_true",
                     help="delete a participant's cached intermediate results before running")
    run.add_argument("--debug", action="store_true",
                     help="verbose logs and the serial in-process debug worker")
    run.add_argument("-v", "--verbose", action="count", default=0,
                     help="more log output (repeat for more)")
    return parser
