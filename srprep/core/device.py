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
