"""UniRes' output-grid rules and working-memory model, without torch.

Why a module of its own: planning a run (the App's ``--mem`` check, the scheduler's
memory estimate of a fit job) needs only headers and these rules; importing
:mod:`.fit` would load torch (~1.3 s) in the App's main process for every UniRes run.
"""
from __future__ import annotations

import numpy as np

from .meanspace import mean_space


def _voxel_sizes(affine):
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(0))


#: output-grid rules: ``auto`` -- the lattice of the first input that already has the
#: output voxel size (e.g. a 1 mm T1w for 1 mm outputs); else the first input's (the
#: reference's) orientation, moved axis by axis onto the lattice on which the inputs
#: sample that axis at the output voxel size, its box holding every input; ``mean`` --
#: UniRes' own mean space (the barycentre of the input affines; the reference's
#: behaviour); ``inputs`` -- the same as ``auto`` (its name in srprep 2026-12-07).
GRID_RULES = ("auto", "mean", "inputs")


def output_grid(affines, shapes, voxel_size, rule: str = "auto"
                ) -> tuple[np.ndarray, tuple, str, str]:
    """Output grid, mode (``sr``, ``denoise`` or ``identity``; UniRes 8.1) and where the
    grid comes from (``input <i>`` or ``mean space``).

    Why ``auto``: the reference's mean space has a sub-voxel phase set by the average of
    the input affines, so its lattice matches no input.  When one input is already at the
    output resolution, every output then has to be interpolated once more to overlay it
    (or to be compared with it), which blurs away the gain: on the demo at 2 mm that extra
    trilinear step cost UniRes 1.9 dB (T2w) and 3.2 dB (PDw) against the truth
    (benchmarks/RESULTS.md).  On that
    input's own lattice it is not resampled at all and the outputs overlay it voxel for
    voxel, as users of ``space-T1w`` derivatives expect.  When no input has the output
    voxel size, the grid takes the first input's orientation (the App's co-registration
    reference, the T1w) instead of the barycentre of every input's, and the lattice on
    which the inputs sample each axis at the output voxel size (:func:`_input_phases`):
    with a real oblique PD beside a coronal thick T1w the barycentre was rotated 4
    degrees from both, so the joint fit had to be interpolated again to overlay the T1w,
    and lost to fitting the T1w alone; in the T1w's frame it beats it (+0.2 dB at
    1.76 mm, +0.6 dB at 3.52 mm; benchmarks/RESULTS.md).
    """
    if rule not in GRID_RULES:
        raise ValueError(f"grid rule must be one of {', '.join(GRID_RULES)}, got {rule!r}")
    shapes = [tuple(int(d) for d in s[:3]) for s in shapes]
    sizes = np.array([_voxel_sizes(a) for a in affines])
    same_size = np.allclose(sizes, sizes[0], atol=1e-3)
    if voxel_size is None or (np.isscalar(voxel_size) and voxel_size == 0):
        voxel_size = sizes[0] if same_size else None
    target = None if voxel_size is None else np.broadcast_to(np.asarray(voxel_size, float), (3,))
    denoise = same_size and target is not None and np.allclose(sizes[0], target, atol=1e-3)
    mode = "denoise" if denoise else "sr"
    if denoise and all(np.allclose(a, affines[0], atol=1e-3) for a in affines) and \
            all(s == shapes[0] for s in shapes):
        return np.asarray(affines[0], float), shapes[0], "identity", "input 0"
    if rule == "mean" or target is None:
        affine, shape = mean_space(affines, shapes, target)
        if rule != "mean":
            affine, shape = covering(affine, shape, affines, shapes)
        return affine, shape, mode, "mean space"
    for i, (affine, size) in enumerate(zip(affines, sizes)):
        if np.allclose(size, target, atol=1e-3):
            return np.asarray(affine, float), shapes[i], mode, f"input {i}"
    # the reference input's frame (the T1w's in the App): its orientation, not the
    # barycentre of every input's, which lies between an oblique stack and the others
    affine, shape = mean_space(affines[:1], shapes[:1], target)
    affine, aligned = _input_phases(affine, affines, target)
    source = "input 0's orientation" + (", lattice of " + ", ".join(
        f"{'xyz'[k]}: input {i}" for k, i in aligned.items()) if aligned else "")
    affine, shape = covering(affine, shape, affines, shapes)
    return affine, shape, mode, source


def _input_phases(affine, affines, target) -> tuple[np.ndarray, dict[int, int]]:
    """The mean space moved, axis by axis, onto the lattice of an input that samples that
    axis at the output voxel size (the first one whose voxel axis is parallel to it).

    Why: thick stacks of one session along different axes (a sagittal T1w, a coronal T2w,
    an axial FLAIR) each sample their in-plane axes at the output resolution, on one
    lattice; the mean space averages their affines into a lattice offset from all of them
    (-0.22/-0.61/-0.61 voxel on the 4 mm demo), so each output must be interpolated again
    to overlay any input, which cost the joint fit more than it gained (srprep-eval
    --mixed-axes, 4 mm demo, 8 mm slices: jointly on the mean space T2w/PDw -1.3/-1.9 dB
    below single-contrast fits, on the inputs' lattice +0.2/+1.4 dB above them;
    benchmarks/RESULTS.md).  Returns the moved affine and {output axis: input index}."""
    affine = np.asarray(affine, float).copy()
    target = np.broadcast_to(np.asarray(target, float), (3,))
    aligned: dict[int, int] = {}
    for k in range(3):
        col = affine[:3, k] / np.linalg.norm(affine[:3, k])
        for i, a in enumerate(affines):
            a = np.asarray(a, float)
            sizes = _voxel_sizes(a)
            found = [j for j in range(3)
                     if abs(abs(col @ a[:3, j]) / sizes[j] - 1) < 1e-6
                     and abs(sizes[j] - target[k]) < 1e-3 * target[k]]
            if not found:
                continue
            j = found[0]
            u = np.linalg.solve(a, affine[:, 3])[j]       # the origin in input voxels
            affine[:3, 3] -= (u - np.round(u)) * a[:3, j]
            aligned[k] = i
            break
    return affine, aligned


def covering(affine, shape, affines, shapes) -> tuple[np.ndarray, tuple]:
    """The grid ``(affine, shape)`` extended by whole voxels (orientation and lattice phase
    kept) until it holds every input's field of view: voxel centres, and along an axis
    where an input's voxels are larger than the output's, their whole extent (a thick
    slice's profile).

    Why (deviation from the reference, ``--output-grid mean`` keeps its box): UniRes'
    mean space is shifted by about two output voxels along every flipped input axis
    (an LAS input's last 2 columns fall outside it: 5.3 mm at 2.64 mm), and it ends on
    the centre of the outermost thick slice, so half of that slice's profile lies
    outside the grid.  The projection counts those samples as zero, and the fit makes the
    edge slice bright to explain the measured value (+41 % against the input on a real
    T1w acquired as 5.28 mm slices; tests/bids_app/test_real_headers.py)."""
    affine = np.asarray(affine, float)
    shape = np.array([int(d) for d in shape[:3]])
    lo, hi = np.zeros(3), shape - 1.0
    out_size = _voxel_sizes(affine)
    for a, s in zip(affines, shapes):
        a = np.asarray(a, float)
        n = np.array([int(d) for d in s[:3]])
        # half a voxel more along the axes on which this input is coarser than the output
        size = _voxel_sizes(a)
        margin = np.where(size > 1.01 * np.min(out_size), 0.5, 0.0)
        corners = np.array([[i, j, k, 1.0]
                            for i in (-margin[0], n[0] - 1 + margin[0])
                            for j in (-margin[1], n[1] - 1 + margin[1])
                            for k in (-margin[2], n[2] - 1 + margin[2])]).T
        idx = np.linalg.solve(affine, a @ corners)[:3]
        lo, hi = np.minimum(lo, idx.min(1)), np.maximum(hi, idx.max(1))
    start = np.minimum(0, np.floor(lo + 1e-3)).astype(int)
    stop = np.maximum(shape - 1, np.ceil(hi - 1e-3)).astype(int)
    if not start.any() and (stop == shape - 1).all():
        return affine, tuple(int(d) for d in shape)
    moved = affine.copy()
    moved[:3, 3] = affine[:3, :3] @ start + affine[:3, 3]
    return moved, tuple(int(d) for d in stop - start + 1)


#: relative voxel-size difference under which an output grid "nearly coincides" in
#: resolution with an input (see :func:`solve_lattice`)
NEAR_SAME_SIZE = 0.15


def solve_lattice(affines, target_affine, target_shape
                  ) -> tuple[np.ndarray, tuple, int] | None:
    """The lattice to solve on when the output grid nearly coincides in resolution with an
    input but not in phase: ``(affine, shape, input index)``, else ``None``.

    Why: sampled at the same spacing with a different phase, an input's voxel sees the
    output's highest frequencies only through the average of neighbouring output voxels,
    which cancels the alternating (Nyquist) pattern exactly for any symmetric profile.
    That band is unobservable, the fit amplifies the input's noise into it, and the output
    shows a checkerboard, or a moire of stripes when the spacings differ by a few percent
    (``--common-output`` at the inputs' voxel size, whose similarity to the template
    rescales them).  Solving on that input's own lattice (extended over the output's field
    of view) and reslicing the result once (cubic B-spline) gives the output without it.
    """
    target_affine = np.asarray(target_affine, float)
    target_size = np.sort(_voxel_sizes(target_affine))
    corners = np.array([[i, j, k, 1.0] for i in (0, target_shape[0] - 1)
                        for j in (0, target_shape[1] - 1) for k in (0, target_shape[2] - 1)]).T
    near = [i for i, a in enumerate(affines)
            if np.all(np.abs(target_size / np.sort(_voxel_sizes(a)) - 1) <= NEAR_SAME_SIZE)]
    if not near:
        return None
    for index in near:
        to_input = np.linalg.solve(np.asarray(affines[index], float), target_affine)
        if (np.allclose(to_input[:3, :3], np.round(to_input[:3, :3]), atol=1e-3)
                and np.allclose(to_input[:3, 3], np.round(to_input[:3, 3]), atol=0.05)):
            return None                    # already on that input's lattice
    index = near[0]
    affine = np.asarray(affines[index], float)
    ijk = (np.linalg.solve(affine, target_affine) @ corners)[:3]
    lo = np.floor(ijk.min(axis=1)) - 1
    hi = np.ceil(ijk.max(axis=1)) + 1
    shift = np.eye(4)
    shift[:3, 3] = lo
    return affine @ shift, tuple(int(n) for n in hi - lo + 1), index


def estimate_memory_gb(n_channels: int, n_images: int, n_voxels: int) -> float:
    """Working memory of a fit: ~(7C + 11) float32 volumes on the output grid (y, z, w,
    CG and difference buffers) plus ~4 per observation (sampling grid, mask, A'x)."""
    return 4 * n_voxels * (7 * n_channels + 11 + 4 * n_images) / 2**30
