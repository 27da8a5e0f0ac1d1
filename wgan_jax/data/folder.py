"""A folder of the user's own pictures (PNG, JPEG, WebP, BMP, searched recursively), read with
Pillow, fitted to one size and channel count, and cached.

Decoding is the slow part (seconds for tens of thousands of files, hours for millions), so the
decoded pictures are cached as one uint8 file under the user's cache folder
(wgan_jax.data.cache.cache_folder), training pictures first, then the held-out ones, read back
memory-mapped: a set bigger than memory is decoded chunk by chunk (an interrupted decode goes on
where it stopped) and trained on without ever being loaded whole (data placement "stream").
The cache is keyed by a hash of the file list (paths, sizes, modification times), the fitting
options and the held-out share: a second run reads it at once, and any change to the folder or
the options decodes again. Files that do not decode are skipped and counted; sub-folder names
become labels when every picture lies in one. A fixed, seeded share of the pictures is held out
for evaluation and never trained on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from wgan_jax.data import cache
from wgan_jax.data.base import Dataset, Options, Splits
from wgan_jax.data.fit import GREY_MODES, background_rgb, fit
from wgan_jax.errors import UserError, first_line

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# The held-out share is drawn with this seed from the sorted file list: the same folder always
# holds out the same pictures.
HOLDOUT_SEED = 0
# Bumped when the cached arrays would differ for the same files and options (2: a memory-mapped
# file, training pictures first, then the held-out ones).
CACHE_VERSION = 2


def picture_files(folder: Path) -> list[str]:
    """The picture files under `folder` (sub-folders searched, links to folders not followed)
    as sorted paths relative to it; a file reached twice through a symbolic link counts once.
    os.walk and string paths: pathlib per file took most of a cached load of 60,000 pictures."""
    root = os.path.join(str(folder), "")
    real_root = os.path.join(os.path.realpath(folder), "")
    found = []
    for directory, _, names in os.walk(folder):
        base = os.path.join(directory, "")[len(root):]
        found += [base + name for name in names if os.path.splitext(name)[1].lower() in EXTENSIONS]
    seen, files = set(), []
    for relative in sorted(found):
        path = root + relative
        # only links need resolving: a plain file's real path is its place under the real folder
        real = os.path.realpath(path) if os.path.islink(path) else real_root + relative
        if real not in seen and os.path.isfile(path):
            seen.add(real)
            files.append(relative)
    return files


def _labels(files: list[str]) -> tuple[np.ndarray | None, tuple[str, ...] | None]:
    """Labels from first-level sub-folder names, when every picture lies in a sub-folder."""
    parts = [relative.split(os.sep) for relative in files]
    if not parts or any(len(p) < 2 for p in parts):
        return None, None
    classes = tuple(sorted({p[0] for p in parts}))
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index[p[0]] for p in parts], np.int32), classes


def _cache_key(folder: Path, files: list[str], options: Options) -> str:
    listing = []
    root = os.path.join(str(folder), "")
    for relative in files:
        stat = os.stat(root + relative)
        listing.append((relative, stat.st_size, stat.st_mtime_ns))
    fitting = {"image_size": options.image_size, "channels": options.channels,
               "background": options.background, "holdout": options.holdout,
               "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps([fitting, listing]).encode()).hexdigest()


def _header(path: Path) -> tuple[tuple[int, int], str] | None:
    """A picture's size and mode, from its header alone; None if it is no picture."""
    try:
        with Image.open(path) as picture:
            return picture.size, picture.mode
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _decode(path: Path, size: int, channels: int, background) -> np.ndarray | str:
    """The fitted picture, or why it could not be read."""
    try:
        with Image.open(path) as picture:
            if picture.format == "JPEG" and size:
                picture.draft("RGB" if channels == 3 else "L", (size, size))  # decode smaller
            picture.load()
            return fit(picture, size, channels, background)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return first_line(err, 120)


def _choose_shape(headers: dict[Path, tuple], options: Options) -> tuple[int, int]:
    """The size (0: the pictures' own) and channel count to fit every picture to."""
    channels = options.channels or (1 if all(m in GREY_MODES for _, m in headers.values()) else 3)
    if options.image_size:
        return options.image_size, channels
    sizes = sorted({s for s, _ in headers.values()})
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sizes[:3])
        raise UserError(f"the pictures have {len(sizes)} sizes ({shown}{', ...' if len(sizes) > 3 else ''}); "
                        f"pass --image-size N to resize and centre-crop them to N x N")
    return 0, channels


def _holdout(count: int, share: float) -> tuple[np.ndarray, np.ndarray, str]:
    """The positions (sorted) of the training and the held-out pictures among `count`, and the
    held-out note: a fixed, seeded share held out, which training never sees."""
    held = min(count - 1, max(1 if share > 0 and count > 1 else 0, round(share * count)))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(count)
    if not held:
        return np.arange(count), order[:0], ("none: the folder holds one picture" if count == 1
                                             else "none: the held-out share is 0")
    note = (f"{held} of the folder's {count} pictures ({share:.0%}, drawn with seed "
            f"{HOLDOUT_SEED}), never trained on")
    return np.sort(order[held:]), np.sort(order[:held]), note


def _decode_into(directory: Path, folder: Path, files: list[str], options: Options) -> dict:
    """Decodes the readable pictures of `files` into the cache `directory`, training pictures
    first, then the held-out ones, and returns the cache's description (meta.json)."""
    background = background_rgb(options.background)
    headers = {path: _header(folder / path) for path in files}
    skipped = [f"{folder / path}: not a picture Pillow can read" for path, h in headers.items()
               if h is None]
    readable = [i for i, path in enumerate(files) if headers[path] is not None]
    if not readable:
        raise UserError(f"{folder}: no readable picture among {len(files)} file(s)")
    size, channels = _choose_shape({files[i]: headers[files[i]] for i in readable}, options)
    row = [size or headers[files[readable[0]]][0][1], size or headers[files[readable[0]]][0][0],
           channels]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        def make(chunk: range) -> list:
            return list(pool.map(lambda i: _decode(folder / files[readable[i]], size, channels,
                                                   background), chunk))
        failed = cache.fill(directory / "decoded.u8", len(readable), row, make,
                            f"Decoding {len(readable)} pictures of {folder} "
                            f"({len(readable) * int(np.prod(row)) / 1e9:.2f} GB of cache)")
    skipped += [f"{folder / files[readable[i]]}: {why}" for i, why in sorted(failed.items())]
    rows = np.array([i for i in range(len(readable)) if i not in failed], np.int64)
    if not len(rows):
        raise UserError(f"{folder}: no readable picture among {len(files)} file(s) (first: "
                        f"{skipped[0]})")
    train, heldout, note = _holdout(len(rows), options.holdout)
    order = np.concatenate([rows[train], rows[heldout]])
    digest = cache.reorder(directory / "decoded.u8", directory / "images.u8", order, row,
                           len(train))
    (directory / "decoded.u8").unlink()
    kept = np.array(readable, np.int64)[order]
    np.save(directory / "kept.npy", kept)
    meta = {"version": CACHE_VERSION, "row": row, "train": len(train), "heldout": len(heldout),
            "train_sha256": digest, "skipped": skipped, "note": note}
    cache.write_json(directory / "meta.json", meta)  # last: its presence marks the cache whole
    return meta


def folder_splits(folder: Path, options: Options) -> Splits:
    """Every readable picture under `folder`, a fixed share held out (options.holdout), as two
    datasets whose images are read-only memory maps of the cache (decoded first where the cache
    is not current)."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder" if not folder.exists() else
                        f"{folder} is a file; give the folder that holds the pictures")
    files = picture_files(folder)
    if not files:
        raise UserError(f"{folder}: no picture files ({', '.join(EXTENSIONS)}) in it or below it")
    folder_id = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    directory = cache.cache_folder() / "folders" / f"{folder_id}-{_cache_key(folder, files, options)[:24]}"
    meta = cache.read_json(directory / "meta.json")
    if meta is None or meta.get("version") != CACHE_VERSION:
        directory = cache.writable(directory, "pictures")
        meta = _decode_into(directory, folder, files, options)
        for older in directory.parent.glob(f"{folder_id}-*"):
            if older != directory:
                shutil.rmtree(older, ignore_errors=True)
    if meta["skipped"]:
        print(f"warning: skipped {len(meta['skipped'])} unreadable file(s) of {len(files)} "
              f"(first: {meta['skipped'][0]})", file=sys.stderr)
    kept, count = np.load(directory / "kept.npy"), meta["train"] + meta["heldout"]
    images = cache.open_rows(directory / "images.u8", count, meta["row"])
    labels, classes = _labels([files[i] for i in kept])
    name = f"images:{folder}"

    def part(rows: slice, name: str, digest: str | None = None) -> Dataset:
        at = (str(directory / "images.u8"), rows.start * int(np.prod(meta["row"])))
        return Dataset(images[rows], None if labels is None else labels[rows], name, classes,
                       digest, at)

    train = part(slice(0, meta["train"]), name, meta["train_sha256"])
    heldout = part(slice(meta["train"], count), f"{name} (held out)") if meta["heldout"] else None
    return Splits(train, heldout, meta["note"])


def load_folder(folder: Path, options: Options) -> Dataset:
    """Every readable picture under `folder` as one dataset, in the files' sorted order."""
    return folder_splits(folder, dataclasses.replace(options, holdout=0.0)).train


class FolderSource:
    """A folder of pictures, with a held-out share for evaluation."""

    kind = "images"

    def __init__(self, folder: str | os.PathLike, options: Options):
        self.folder = Path(folder).expanduser()
        self.options = options
        self._splits: Splits | None = None

    def _split_once(self) -> Splits:
        if self._splits is None:
            self._splits = folder_splits(self.folder, self.options)
        return self._splits

    def split(self, name: str) -> Dataset | None:
        return self._split_once().train if name == "train" else self._split_once().heldout

    def heldout_note(self) -> str:
        return self._split_once().heldout_note
