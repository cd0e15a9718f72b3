"""Registry of the methods the BIDS App can run.

Names and one-line descriptions are static so ``srprep --help`` needs no imports;
:func:`get_method` imports an adapter only when a run uses it.
"""
from __future__ import annotations

from importlib import import_module

from .base import Derivative, Job, MethodSpec

#: name -> (module, attribute, description)
METHODS: dict[str, tuple[str, str, str]] = {
    "unires": (".unires", "UNIRES", "UniRes multi-contrast super-resolution (no weights)"),
    "babyai": (".babyai", "BABYAI", "BABY-AI: thick T2w + iso T1w -> iso T2w (weights)"),
    "easysr": (".easysr", "EASYSR", "EasySR: through-plane 3-D generator (weights; released: rat)"),
    "pccnn": (".pccnn", "PCCNN", "PCCNN: dMRI angular super-resolution (weights)"),
    "sh": (".pccnn", "SH", "spherical-harmonic angular interpolation of dMRI (baseline)"),
    "linear": (".baseline", "LINEAR", "trilinear reslicing (baseline)"),
    "cubic": (".baseline", "CUBIC", "cubic B-spline reslicing (baseline)"),
}

DEFAULT_METHOD = "unires"


def get_method(name: str) -> MethodSpec:
    """Return the :class:`MethodSpec` registered under ``name``."""
    try:
        module, attr, _ = METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; available: {', '.join(METHODS)}") from None
    return getattr(import_module(module, __name__), attr)


__all__ = ["METHODS", "DEFAULT_METHOD", "Derivative", "Job", "MethodSpec", "get_method"]
