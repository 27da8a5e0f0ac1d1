"""MNIST-style IDX files: a folder holding the four standard files, the MNIST copy shipped inside
the package, and Debian's Fashion-MNIST (package dataset-fashion-mnist)."""

from __future__ import annotations

import dataclasses
import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np

from wgan_jax.data.base import Dataset, check_uint8_images
from wgan_jax.errors import UserError

# IDX type byte -> numpy dtype (big-endian, as the format stores it).
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# The four standard file stems of an IDX dataset folder, by split.
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# Where Debian's dataset-fashion-mnist package puts its IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """Parses one IDX file (gzipped or not, told apart by its first bytes)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise UserError(f"{path}: cannot read ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UserError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise UserError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = _IDX_DTYPES[raw[2]]
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise UserError(f"{path}: header says shape {shape} ({expected} bytes of data) but the file "
                        f"holds {len(raw) - header}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise UserError(f"{folder / stem}[.gz]: file not found")


def holds_idx(folder: Path) -> bool:
    """Whether `folder` holds the training images of an IDX dataset."""
    stem = IDX_FILES["train"][0]
    return (folder / stem).is_file() or (folder / f"{stem}.gz").is_file()


def load_idx_dir(folder: str | os.PathLike, split: str = "train", name: str | None = None) -> Dataset:
    """Reads a split ("train" or "test") from a folder with the standard MNIST-style IDX names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: data folder not found")
    image_path, label_path = (_find_idx(folder, stem) for stem in IDX_FILES[split])
    images, labels = load_idx(image_path), load_idx(label_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"{image_path}: expected uint8 images of shape (N, H, W), got "
                        f"{images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise UserError(f"{label_path}: expected {images.shape[0]} labels, got shape {labels.shape}")
    return Dataset(check_uint8_images(images, str(image_path)), labels.astype(np.int32),
                   name or str(folder))


def bundled_mnist_folder():
    """The folder of the MNIST copy shipped inside the package (see assets/mnist/README.md)."""
    return resources.files("wgan_jax") / "assets" / "mnist"


def load_bundled_mnist(split: str = "train") -> Dataset:
    """The MNIST copy shipped inside the package."""
    with resources.as_file(bundled_mnist_folder()) as path:
        return load_idx_dir(path, split, name="mnist (bundled)")


class IdxSource:
    """A folder of IDX files: its train split, and its test split as the held-out one."""

    kind = "idx"

    def __init__(self, folder: str | os.PathLike | None = None, name: str | None = None):
        self.folder = None if folder is None else Path(folder).expanduser()
        self.name = name

    def split(self, name: str) -> Dataset:
        if name == "train":
            return load_bundled_mnist() if self.folder is None else \
                load_idx_dir(self.folder, "train", self.name)
        test = load_bundled_mnist("test") if self.folder is None else \
            load_idx_dir(self.folder, "test", self.name)
        return dataclasses.replace(test, name=f"{test.name} test split")

    def heldout_note(self) -> str:
        return "the test split"


def fashion_mnist() -> IdxSource | None:
    """Debian's Fashion-MNIST IDX files, where the package is installed."""
    if DEBIAN_FASHION_MNIST.is_dir():
        return IdxSource(DEBIAN_FASHION_MNIST, "fashion_mnist (Debian IDX)")
    return None
