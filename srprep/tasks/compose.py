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
