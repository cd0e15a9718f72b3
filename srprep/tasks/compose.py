"""``python.define`` / ``workflow.define`` whose functions reach workers *by reference*.

Why: ``@python.define`` replaces the module attribute ``Reslice`` with the task class, so
the plain function is no longer importable under its own name and cloudpickle ships it to
a spawned ``cf`` (or SLURM) worker *by value*.  Pydra hashes a function by its source
(``inspect.getsource``); a function rebuilt from a by-value pickle has no source file
(cloudpickle >= 3.1.3 even names it ``<dynamic-code>``), so the worker falls back to
hashing byte code, the task's ``function`` field hashes differently there than in the
parent, and Pydra aborts the job ("Input field hashes have changed during the execution").

The fix is at the root: each wrapped function is also stored in its module under a
private name (``_<Name>_function``) and its ``__qualname__`` points there, so every
pickler, old or new, pickles it by reference; the worker imports the very same function
and hashes the very same source.  The source-based hash ignores the function's name, so
cache entries of earlier runs stay valid.
"""
from __future__ import annotations

import sys
import typing as ty

from pydra.compose import python, workflow

__all__ = ["define_python", "define_workflow", "importable"]


def importable(func: ty.Callable) -> ty.Callable:
    """Register ``func`` at module level under ``_<name>_function`` and return it.

    Raises:
        TypeError: for a nested function or lambda, which no worker can import.
    """
    if "<locals>" in func.__qualname__ or func.__name__ == "<lambda>":
        raise TypeError(f"{func.__qualname__}: task functions must be defined at module "
                        "level so that workers can import them")
    alias = f"_{func.__name__}_function"
    module = sys.modules[func.__module__]
    existing = getattr(module, alias, None)
    if existing is not None and existing is not func:
        raise TypeError(f"{func.__module__}.{alias} is already taken")
    setattr(module, alias, func)
    func.__qualname__ = alias
    return func


def _wrap(define: ty.Callable, wrapped, kwargs):
    if wrapped is not None:
        return define(importable(wrapped), **kwargs)
    return lambda func: define(importable(func), **kwargs)


def define_python(wrapped: ty.Callable | None = None, /, **kwargs):
    """:func:`pydra.compose.python.define` for a module-level function (same arguments)."""
    return _wrap(python.define, wrapped, kwargs)


def define_workflow(wrapped: ty.Callable | None = None, /, **kwargs):
    """:func:`pydra.compose.workflow.define` for a module-level constructor (same arguments)."""
    return _wrap(workflow.define, wrapped, kwargs)


# -- memory estimates for the scheduler (``--mem``) ------------------------------------

#: task class (module.name) -> function(task) -> GB of memory its job needs
_MEMORY: dict[str, ty.Callable] = {}
#: a Python process with numpy/scipy/nibabel loaded (what a job costs before its data)
BASE_JOB_GB = 0.25
#: float64 working copies of the largest input volume a generic image step keeps
_COPIES = 6


def memory_estimate(task_class: type, estimator: ty.Callable[[ty.Any], float]) -> None:
    """Register how much memory (GB) a job of ``task_class`` needs, from its inputs."""
    _MEMORY[f"{task_class.__module__}.{task_class.__name__}"] = estimator


def job_memory_gb(task) -> float:
    """Memory a job needs (GB): the task's registered estimate, or for an unregistered
    step ``BASE_JOB_GB`` plus a few float64 copies of its largest NIfTI input (headers
    only are read)."""
    estimator = _MEMORY.get(f"{type(task).__module__}.{type(task).__name__}")
    if estimator is not None:
        return float(estimator(task))
    return BASE_JOB_GB + _COPIES * 8 * max(
        (_voxels(p) for p in _nifti_inputs(task)), default=0) / 2**30


def _nifti_inputs(task) -> list[str]:
    import attrs

    found: list[str] = []

    def visit(value) -> None:
        if isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
            text = str(value)
            if text.endswith((".nii", ".nii.gz")):
                found.append(text)

    if attrs.has(type(task)):
        for field in attrs.fields(type(task)):
            if not field.name.startswith("_"):
                visit(getattr(task, field.name, None))
    return found


def _voxels(path: str) -> int:
    import numpy as np

    try:
        import nibabel as nib

        return int(np.prod(nib.load(path).shape))
    except Exception:   # not there yet, or not an image: no estimate from it
        return 0
