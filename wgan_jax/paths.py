"""Paths and the files behind them: a user's path is a name, never a pattern, and a cache file
appears whole or not at all.

etils' `epath.Path.glob(pattern)` (under orbax) joins the folder and the pattern into one string
and hands it to Python's `glob.glob`, so the folder's own `[`, `]`, `*` and `?` become wildcards:
in a workdir named `runs/[exp1]` orbax's listing of a checkpoint's per-process OCDBT folders found
nothing, it skipped the merge of their manifests without an error, and every checkpoint then read
as damaged ("no arrays listed"). `literal_glob_base()` makes `glob` take the folder literally and
only the pattern as a pattern; orbax is otherwise untouched. tests/test_paths.py checks a workdir
of each special character end to end.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from etils import epath

# The class that defines glob for both PosixGPath and WindowsGPath (etils has no public hook).
_GPATH = epath.gpath._GPath  # noqa: SLF001
_ORIGINAL_GLOB = _GPATH.glob


def _glob(self, pattern: str) -> Iterator:
    """GPath.glob with the folder escaped, for local paths (remote ones keep their own rules)."""
    base = self._path_str
    if "://" in base:
        yield from _ORIGINAL_GLOB(self, pattern)
        return
    if "**" in pattern:
        raise NotImplementedError(f"recursive `**` patterns are not supported: {pattern!r}")
    for found in glob.glob(os.path.join(glob.escape(base), pattern)):
        yield self._new(found)


def literal_glob_base() -> None:
    """Installs the escaped glob on etils' path class (idempotent)."""
    _GPATH.glob = _glob


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """`write(file)` into a temporary file of its own in `path`'s folder, then renamed into place:
    a reader (another process, a later run) finds the old file or the whole new one, never a
    torn one. Raises OSError where the folder cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        try:
            write(f)
        except BaseException:
            os.unlink(f.name)
            raise
    os.replace(f.name, path)


def save_npz(path: Path, **arrays) -> None:
    """`np.savez` to `path`, atomically (`write_atomically`)."""
    write_atomically(path, lambda f: np.savez(f, **arrays))
