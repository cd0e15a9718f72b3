"""Shared bits of the benchmark scripts: machine header, devices, peak memory."""
from __future__ import annotations

import platform
import resource


def header() -> str:
    """``# host | cpu | torch version | threads`` line printed before the figures."""
    import torch

    return (f"# {platform.node()} | {platform.processor() or platform.machine()} | "
            f"torch {torch.__version__} | threads {torch.get_num_threads()}")


def available(devices: list[str]) -> list[str]:
    """The requested devices that exist; says which CUDA requests were skipped."""
    import torch

    out = []
    for device in devices:
        if device == "cuda" and not torch.cuda.is_available():
            print("# cuda: not available, skipped")
            continue
        out.append(device)
    return out


def peak_rss_gb() -> float:
    """Peak resident memory of this process (GB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def peak_gpu_gb() -> float:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2)
