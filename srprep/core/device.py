"""Compute device selection and GPU serialisation for tasks.

The device comes from ``SRPREP_DEVICE`` (set by the CLI from ``--device``), not from a
task input, so switching CPU/GPU does not invalidate cached results.  ``auto`` falls back
to the CPU with a log line; ``cuda`` without a GPU is an error, never a silent fallback.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
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


@contextlib.contextmanager
def gpu_lock(device: str) -> Iterator[None]:
    """Serialise GPU work of concurrent worker processes with a file lock per device
    (CPU tasks keep running in parallel).  Lock files live in ``$SRPREP_LOCK_DIR``."""
    if not device.startswith("cuda"):
        yield
        return
    from filelock import FileLock

    index = device.split(":", 1)[1] if ":" in device else "0"
    folder = Path(os.environ.get("SRPREP_LOCK_DIR") or tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / f"srprep-gpu{index}.lock")):
        yield
