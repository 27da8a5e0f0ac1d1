"""A folder of the user's own pictures (PNG, JPEG, WebP, BMP, searched recursively), read with
Pillow, fitted to one size and channel count, and cached.

Decoding is the slow part (seconds for tens of thousands of files), so the decoded uint8 array
is cached under the user's cache folder (`$WGAN_JAX_CACHE`, else `$XDG_CACHE_HOME/wgan_jax`, else
`~/.cache/wgan_jax`), keyed by a hash of the file list (paths, sizes, modification times) and the
fitting options: a second run reads it in a fraction of a second, and any change to the folder or
the options decodes again. Files that do not decode are skipped and counted; sub-folder names
become labels when every picture lies in one. A fixed, seeded share of the pictures is held out
for evaluation and never trained on.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from wgan_jax import paths
from wgan_jax.data.base import Dataset, Options, Splits
from wgan_jax.data.fit import GREY_MODES, background_rgb, fit
from wgan_jax.errors import UserError, first_line

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# The held-out share is drawn with this seed from the sorted file list: the same folder always
# holds out the same pictures.
HOLDOUT_SEED = 0
# Bumped when the cached arrays would differ for the same files and options.
CACHE_VERSION = 1


def cache_folder() -> Path:
    """Where decoded folders are cached."""
    if os.environ.get("WGAN_JAX_CACHE"):
        return Path(os.environ["WGAN_JAX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "wgan_jax"


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
               "background": options.background, "version": CACHE_VERSION}
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


def decode_folder(folder: Path, files: list[str], options: Options
                  ) -> tuple[np.ndarray, list[int], list[str]]:
    """Every readable picture fitted to one shape: the images, the indices of the files they
    came from, and 'path: reason' for each file skipped."""
    background = background_rgb(options.background)
    headers = {path: _header(folder / path) for path in files}
    skipped = [f"{folder / path}: not a picture Pillow can read" for path, h in headers.items()
               if h is None]
    readable = [path for path in files if headers[path] is not None]
    if not readable:
        raise UserError(f"{folder}: no readable picture among {len(files)} file(s)")
    size, channels = _choose_shape({p: headers[p] for p in readable}, options)
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        decoded = list(pool.map(lambda p: _decode(folder / p, size, channels, background),
                                readable, chunksize=64))
    index = {path: i for i, path in enumerate(files)}
    kept = [(index[p], d) for p, d in zip(readable, decoded) if isinstance(d, np.ndarray)]
    skipped += [f"{folder / p}: {d}" for p, d in zip(readable, decoded) if isinstance(d, str)]
    if not kept:
        raise UserError(f"{folder}: no readable picture among {len(files)} file(s) (first: "
                        f"{skipped[0]})")
    return np.stack([d for _, d in kept]), [i for i, _ in kept], skipped


def _read_cache(path: Path) -> tuple[np.ndarray, list[int], list[str]] | None:
    try:
        with np.load(path) as cached:
            return (cached["images"], cached["kept"].tolist(),
                    json.loads(str(cached["skipped"])))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # missing or damaged: decode again


def _write_cache(path: Path, images: np.ndarray, kept: list[int], skipped: list[str]) -> None:
    """Writes the cache atomically and removes this folder's older caches; a cache folder that
    cannot be written costs only the next run's decoding time."""
    try:
        paths.save_npz(path, images=images, kept=np.array(kept, np.int64),
                       skipped=np.array(json.dumps(skipped)))
        for older in path.parent.glob(path.name.split("-")[0] + "-*.npz"):
            if older != path:
                older.unlink(missing_ok=True)
    except OSError as err:
        print(f"warning: cannot cache the decoded pictures in {path.parent} ({err.strerror or err}); "
              f"the next run decodes them again", file=sys.stderr)


def load_folder(folder: Path, options: Options) -> Dataset:
    """Every readable picture under `folder` as one dataset (from the cache when it is current)."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder" if not folder.exists() else
                        f"{folder} is a file; give the folder that holds the pictures")
    files = picture_files(folder)
    if not files:
        raise UserError(f"{folder}: no picture files ({', '.join(EXTENSIONS)}) in it or below it")
    folder_id = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
    cache = cache_folder() / "folders" / f"{folder_id}-{_cache_key(folder, files, options)[:24]}.npz"
    cached = _read_cache(cache)
    if cached is None:
        cached = decode_folder(folder, files, options)
        _write_cache(cache, *cached)
    images, kept, skipped = cached
    if skipped:
        print(f"warning: skipped {len(skipped)} unreadable file(s) of {len(files)} (first: "
              f"{skipped[0]})", file=sys.stderr)
    labels, classes = _labels([files[i] for i in kept])
    return Dataset(images, labels, f"images:{folder}", classes)


def holdout_split(dataset: Dataset, share: float) -> Splits:
    """A fixed, seeded share of the pictures held out; training never sees them."""
    count = len(dataset.images)
    held = min(count - 1, max(1 if share > 0 and count > 1 else 0, round(share * count)))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(count)
    train, heldout = np.sort(order[held:]), np.sort(order[:held])
    if not held:
        return Splits(dataset, None, "none: the folder holds one picture" if count == 1 else
                      "none: the held-out share is 0")
    note = (f"{held} of the folder's {count} pictures ({share:.0%}, drawn with seed "
            f"{HOLDOUT_SEED}), never trained on")
    return Splits(dataset.take(train, dataset.name),
                  dataset.take(heldout, f"{dataset.name} (held out)"), note)


class FolderSource:
    """A folder of pictures, with a held-out share for evaluation."""

    kind = "images"

    def __init__(self, folder: str | os.PathLike, options: Options):
        self.folder = Path(folder).expanduser()
        self.options = options
        self._splits: Splits | None = None

    def _split_once(self) -> Splits:
        if self._splits is None:
            self._splits = holdout_split(load_folder(self.folder, self.options),
                                         self.options.holdout)
        return self._splits

    def split(self, name: str) -> Dataset | None:
        return self._split_once().train if name == "train" else self._split_once().heldout

    def heldout_note(self) -> str:
        return self._split_once().heldout_note
