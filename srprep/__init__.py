"""srprep: MRI super-resolution and reconstruction as Pydra workflows and a BIDS App.

The top-level package imports nothing heavy (no torch, ants or pydra) so that
``srprep --help`` and ``import srprep`` stay fast.
"""
from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("srprep")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["__version__"]
