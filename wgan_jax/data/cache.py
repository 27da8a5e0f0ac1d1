"""Decoded images as a uint8 file on disk, read back memory-mapped: a set never has to fit in
memory to be decoded, cached or trained on.

A file is filled in chunks of rows by a function that makes them (decoding pictures in
parallel); after every chunk the rows are flushed and a small JSON file records how far it got,
so an interrupted fill continues where it stopped. Where the cache folder is: `cache_folder`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from wgan_jax import paths, terminal

# Fills of fewer rows than this (under a second or two of decoding) show no progress.
SHOWN = 2000
# Rows made and written per chunk: the most a fill holds in memory at once (4096 pictures of
# 64x64x3 are 50 MB) and the most an interruption loses.
CHUNK = 4096


def cache_folder() -> Path:
    """Where decoded sets are cached: $WGAN_JAX_CACHE, else $XDG_CACHE_HOME/wgan_jax, else
    ~/.cache/wgan_jax."""
    if os.environ.get("WGAN_JAX_CACHE"):
        return Path(os.environ["WGAN_JAX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wgan_jax"


def write_json(path: Path, value) -> None:
    """`value` as JSON at `path`, atomically (a reader sees the old file or the new one)."""
    paths.write_atomically(path, lambda f: f.write(json.dumps(value).encode()))


def read_json(path: Path):
    """The JSON at `path`; None where it is missing or damaged."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def open_rows(path: Path, count: int, row: Sequence[int], mode: str = "r") -> np.memmap:
    """The uint8 file at `path` as an array (count, *row), memory-mapped (mode "r": read-only)."""
    return np.memmap(path, np.uint8, mode, shape=(count, *row))


class Rows:
    """Random rows of a uint8 file read with plain reads (`read(indices)`), for a stream: a
    memory map would fault in the pages (and the kernel's large folios) around every row and
    count them all as the process's resident memory (benchmarks/NOTES.md)."""

    def __init__(self, file: tuple[str, int], row: Sequence[int]):
        self.path, self.offset = file
        self.row, self.size = tuple(row), int(np.prod(row))

    def read(self, indices: np.ndarray) -> np.ndarray:
        """The rows at `indices` (any shape), as an array (*indices.shape, *row)."""
        flat = np.ravel(indices)
        out = np.empty((len(flat), self.size), np.uint8)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            for i, index in enumerate(flat):
                out[i] = np.frombuffer(_read(descriptor, self.offset + int(index) * self.size,
                                             self.size), np.uint8)
        finally:
            os.close(descriptor)
        return out.reshape(*np.shape(indices), *self.row)


def labels_path(path: Path) -> Path:
    """Where `fill(..., labelled=True)` keeps the labels of the rows of `path` (int32)."""
    return path.with_name(path.name + ".labels")


def _read(file: int, offset: int, size: int) -> bytes:
    """`size` bytes at `offset` of the open file `file`, however many reads it takes."""
    parts, done = [], 0
    while done < size:
        part = os.pread(file, size - done, offset + done)
        if not part:
            raise OSError(f"unexpected end of the cache file at byte {offset + done}")
        parts.append(part)
        done += len(part)
    return b"".join(parts)


def _write(file: int, block: np.ndarray, offset: int) -> None:
    view, done = memoryview(np.ascontiguousarray(block)).cast("B"), 0
    while done < len(view):
        done += os.pwrite(file, view[done:], offset + done)


def fill(path: Path, count: int, row: Sequence[int],
         make: Callable[[range], list], description: str, labelled: bool = False
         ) -> dict[int, str]:
    """Fills the file `path` with `count` rows of shape `row`, `make(indices)` giving each row
    (with `labelled`, a pair (row, label), the labels going to `labels_path(path)`), or, for a
    row it cannot make, why (that row stays zero); continues an earlier, interrupted fill of
    the same file. Returns {row: why} for the rows not made. A progress bar with ETA (one line
    where the console is no terminal) shows the rows still to make, where they are SHOWN or
    more. Written with plain writes, a chunk at a time, rather than through a memory map, so
    that the process holds one chunk, not the file's pages."""
    progress_path = path.with_name(path.name + ".progress.json")
    progress = read_json(progress_path)
    size = int(np.prod(row))
    fresh = not (progress and progress.get("count") == count and progress.get("row") == list(row)
                 and path.exists())
    if fresh:
        progress = {"count": count, "row": list(row), "done": 0, "failed": {}}
    targets = [path, labels_path(path)] if labelled else [path]
    # not O_APPEND: Linux's pwrite appends to such a file whatever the offset
    files = [os.open(target, os.O_RDWR | os.O_CREAT | (os.O_TRUNC if fresh else 0), 0o644)
             for target in targets]
    try:
        with terminal.Phases(terminal.console()) as phases:
            left = count - progress["done"]
            advance = phases.track(description, left) if left >= SHOWN else lambda done: None
            while progress["done"] < count:
                chunk = range(progress["done"], min(count, progress["done"] + CHUNK))
                block = np.zeros((len(chunk), *row), np.uint8)
                tags = np.zeros(len(chunk), np.int32)
                for i, made in enumerate(make(chunk)):
                    if isinstance(made, str):
                        progress["failed"][str(chunk[i])] = made
                    elif labelled:
                        block[i], tags[i] = made
                    else:
                        block[i] = made
                _write(files[0], block, chunk.start * size)
                if labelled:
                    _write(files[1], tags, chunk.start * 4)
                progress["done"] = chunk.stop
                write_json(progress_path, progress)
                advance(len(chunk))
    finally:
        for file in files:
            os.close(file)
    progress_path.unlink(missing_ok=True)
    return {int(index): why for index, why in progress["failed"].items()}


def reorder(source: Path, target: Path, order: np.ndarray, row: Sequence[int],
            hashed: int) -> str:
    """Writes the rows `order` of the file `source` to `target`, in that order, chunk by chunk
    (plain reads and writes: no page of either file is mapped); returns the sha256 of the
    first `hashed` rows written (the digest hashlib gives the same bytes in one array)."""
    size, digest = int(np.prod(row)), hashlib.sha256()
    with open(source, "rb") as reading, open(target, "wb") as writing:
        for start in range(0, len(order), CHUNK):
            rows = order[start:start + CHUNK]
            block = np.empty((len(rows), size), np.uint8)
            for i in np.argsort(rows, kind="stable"):  # sorted reads: sequential on disk
                block[i] = np.frombuffer(_read(reading.fileno(), int(rows[i]) * size, size),
                                         np.uint8)
            _write(writing.fileno(), block, start * size)
            digest.update(block[:max(0, min(len(block), hashed - start))].data)
    return digest.hexdigest()


def digest(path: Path, count: int, row: Sequence[int]) -> str:
    """The sha256 of the file's `count` rows, read chunk by chunk (what hashlib gives the same
    bytes in one array)."""
    size, hashed = CHUNK * int(np.prod(row)), hashlib.sha256()
    total = count * int(np.prod(row))
    with open(path, "rb") as reading:
        for offset in range(0, total, size):
            hashed.update(_read(reading.fileno(), offset, min(size, total - offset)))
    return hashed.hexdigest()


def writable(directory: Path, what: str) -> Path:
    """`directory`, created; where it cannot be, a temporary folder of this process, with a
    warning (an unwritable cache folder costs the next run's decoding time, nothing else)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return directory
    except OSError as err:
        print(f"warning: cannot cache the decoded {what} in {directory.parent} "
              f"({err.strerror or err}); the next run decodes them again", file=sys.stderr)
        return Path(tempfile.mkdtemp(prefix="wgan_jax-cache-"))
