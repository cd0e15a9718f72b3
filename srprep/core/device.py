"""Compute device selection and GPU slots for tasks.

The device comes from ``SRPREP_DEVICE`` (set by the CLI from ``--device``), not from a
task input, so switching CPU/GPU does not invalidate cached results.  ``auto`` falls back
to the CPU with a log line; ``cuda`` without a GPU is an error, never a silent fallback.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import ConfigurationError

log = logging.getLogger("srprep.device")


def select_device(requested: str | None = None) -> str:
    """``cpu``, ``cuda`` or ``cuda:N`` for ``requested`` (default ``$SRPREP_DEVICE`` or auto)."""
    choice = (requested or os.environ.get("SRPREP_DEVICE") or "auto").lower()
    if choice == "cpu":
        return "cpu"
    import torch

    available = torch.cuda.is_available()
    if choice == "auto":
        if available:
            return "cuda"
        log.info("no CUDA device available: running on the CPU")
        return "cpu"
    if choice.startswith("cuda"):
        if not available:
            raise ConfigurationError(f"device {choice!r} requested but CUDA is not available")
        return choice
    raise ConfigurationError(f"unknown device {choice!r}; use auto, cpu or cuda")


def configure_threads() -> int:
    """Give torch the thread budget of this process (``OMP_NUM_THREADS``)."""
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


#: glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Let this process reuse freed CPU memory instead of handing it back to the kernel.

    Why: glibc serves every allocation above its mmap threshold (at most 32 MB) with a
    fresh ``mmap`` and returns it with ``munmap`` when freed; the volumes of an iterative
    solver on a 1 mm head (20-60 MB tensors, several per iteration) then cost a page
    fault per 4 KiB page on every iteration -- measured as ~20 % system time and tens of
    millions of minor faults in a UniRes fit (benchmarks/RESULTS.md).  Raising the mmap
    and trim thresholds keeps such blocks in the heap for reuse.  Cost: the heap does not
    shrink and fragments, so peak resident memory grows (1 mm, 3 contrasts: 1.85 -> 2.49
    GB) -- call it in worker processes that run one solver, not in a library user's
    process.  Returns False where this is not glibc (nothing is changed).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, int(limit_bytes)) == 1
    return mallopt(_M_TRIM_THRESHOLD, int(limit_bytes)) == 1 and ok


def visible_gpus() -> list[int]:
    """Indices (as torch numbers them) of the GPUs this process may use.

    ``$SRPREP_GPUS`` (set by ``--gpus N``) caps the count; otherwise every device torch
    sees, i.e. all of ``CUDA_VISIBLE_DEVICES``.
    """
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cap = os.environ.get("SRPREP_GPUS")
    if cap:
        count = min(count, int(cap))
    return list(range(count))


def gpus_present() -> bool:
    """Whether this node has an NVIDIA GPU this process may use, without importing torch
    (the CLI asks it when deciding whether SLURM steps request GPUs)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "NoDevFiles"):
        return False
    nodes = Path("/proc/driver/nvidia/gpus")
    return (nodes.is_dir() and any(nodes.iterdir())) or Path("/dev/nvidia0").exists()


def physical_gpu(index: int) -> str:
    """The node-wide name of torch's GPU ``index``: its entry in ``CUDA_VISIBLE_DEVICES``
    (a number or a UUID), so that two runs given different GPUs by the scheduler never
    share a lock, and two given the same GPU always do."""
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
               if v.strip()]
    name = visible[index] if index < len(visible) else str(index)
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def lock_folder() -> Path:
    """Where the per-device lock files live: ``$SRPREP_LOCK_DIR`` or a folder in the
    node's own temporary directory -- never the (possibly shared) work directory, where
    one lock would serialise the GPU steps of every node of a cluster."""
    folder = os.environ.get("SRPREP_LOCK_DIR")
    if not folder:
        uid = os.getuid() if hasattr(os, "getuid") else "user"
        folder = Path(tempfile.gettempdir()) / f"srprep-gpu-locks-{uid}"
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def gpu_slot(device: str, devices: list[int] | None = None, *, poll_s: float = 0.5
             ) -> Iterator[str]:
    """Hold one GPU slot for the duration of a step; yields the device to use.

    ``cpu`` yields ``cpu`` at once (CPU steps never wait for a GPU).  ``cuda:N`` waits
    for device N.  ``cuda`` takes the first free device of ``devices`` (default
    :func:`visible_gpus`), trying them from a per-process starting point so that
    concurrent steps spread over the node's GPUs, and waits when all are busy.  One
    slot per device: a step owns its GPU's memory while it runs.
    """
    if not device.startswith("cuda"):
        yield device
        return
    from filelock import FileLock, Timeout

    if ":" in device:
        candidates = [int(device.split(":", 1)[1])]
    else:
        candidates = list(visible_gpus() if devices is None else devices)
        if not candidates:
            raise ConfigurationError("device 'cuda' requested but no GPU is visible "
                                     "(check CUDA_VISIBLE_DEVICES and --gpus)")
    folder = lock_folder()
    start = os.getpid() % len(candidates)
    order = candidates[start:] + candidates[:start]
    locks = {i: FileLock(str(folder / f"srprep-gpu-{physical_gpu(i)}.lock")) for i in order}
    while True:
        for index in order:
            try:
                locks[index].acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield f"cuda:{index}"
            finally:
                locks[index].release()
            return
        if len(order) == 1:                      # one candidate: block on it
            with locks[order[0]]:
                yield f"cuda:{order[0]}"
            return
        time.sleep(poll_s)


def check_device_memory(method: str, needed_gb: float, device: str) -> None:
    """One-line error when a GPU step needs more memory than ``device`` has."""
    if not device.startswith("cuda") or needed_gb <= 0:
        return
    import torch

    index = int(device.split(":", 1)[1]) if ":" in device else 0
    total = torch.cuda.get_device_properties(index).total_memory / 2**30
    if needed_gb > total:
        raise ConfigurationError(f"{method} needs ~{needed_gb:.1f} GB of GPU memory but "
                                 f"{device} has {total:.1f} GB: use --device cpu or a "
                                 "coarser --output-resolution")
