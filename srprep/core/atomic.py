"""Atomic file writing: a file appears under its final name complete, or not at all.

A killed process, a full disk or an exception while writing leaves at most a hidden
temporary file (``.<name>.<pid>.<token>.tmp<ext>``) beside the target, never a
truncated file under the final name.  :func:`remove_stale_temporaries` cleans those up.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

#: glob matching the temporaries this module creates
TEMP_GLOB = ".*.tmp*"


def _extension(name: str) -> str:
    """Return the extension that format detection (e.g. nibabel) needs to see."""
    for ext in (".nii.gz", ".tar.gz", ".tsv.gz"):
        if name.endswith(ext):
            return ext
    return Path(name).suffix


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not all filesystems allow opening directories
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it to ``final`` on success.

    The temporary keeps the final extension so format detection by name works.  On any
    exception (including KeyboardInterrupt) the temporary is removed and nothing is
    left under ``final``; an existing ``final`` is only replaced once the new file is
    complete and flushed to disk.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(
        f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{_extension(final.name)}"
    )
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}")
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: object) -> Path:
    """Atomically write ``obj`` as indented JSON with a trailing newline."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def copy_file(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Atomically copy ``src`` to ``dst`` (content only; permissions from the umask)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def remove_stale_temporaries(root: str | os.PathLike, *, older_than: float = 0.0,
                             recursive: bool = True) -> int:
    """Delete temporaries left by killed writers under ``root``; return how many.

    Only call it where no other process is writing, or with ``older_than`` (seconds)
    large enough that no live writer can own the file.
    """
    import time

    n = 0
    now = time.time()
    found = Path(root).rglob(TEMP_GLOB) if recursive else Path(root).glob(TEMP_GLOB)
    for tmp in found:
        if tmp.is_file() and ".tmp" in tmp.name and now - tmp.stat().st_mtime >= older_than:
            with contextlib.suppress(OSError):
                tmp.unlink()
                n += 1
    return n
