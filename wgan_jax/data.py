"""Image datasets as uint8 arrays of shape (N, H, W, C): bundled MNIST, IDX folders, tfds.

Every loader ends in the same place, a host uint8 array; the training step scales it to [-1, 1]
on the device, so the whole set costs one byte per pixel of device memory.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np

from wgan_jax.errors import UserError

# IDX type byte -> numpy dtype (big-endian, as the format stores it).
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

# The four standard file stems of an IDX dataset folder, by split.
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# Where Debian's dataset-fashion-mnist package puts its IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of an image dataset, on the host."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray | None  # int (N,) where the source has labels
    name: str  # where it came from, for logs and config.json


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


def load_idx_dir(folder: str | os.PathLike, split: str = "train", name: str | None = None) -> Dataset:
    """Reads a split from a folder with the standard MNIST-style IDX file names."""
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
    return Dataset(images[..., None], labels.astype(np.int32), name or str(folder))


def load_bundled_mnist(split: str = "train") -> Dataset:
    """The MNIST copy shipped inside the package (see assets/mnist/README.md)."""
    folder = resources.files("wgan_jax") / "assets" / "mnist"
    with resources.as_file(folder) as path:
        return load_idx_dir(path, split, name="mnist (bundled)")


def load_tfds(name: str, split: str = "train", data_dir: str | None = None) -> Dataset:
    """Any tensorflow-datasets image dataset, through `tfds.data_source` (no TensorFlow needed)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise UserError(f"--dataset {name} needs tensorflow-datasets ({err})") from None
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as err:  # tfds raises many types (not found, no network, bad split)
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"tfds dataset {name!r} split {split!r}: {first_line}") from None
    if len(source) == 0:
        raise UserError(f"tfds dataset {name!r} split {split!r} is empty")
    first = source[0]
    if "image" not in first:
        raise UserError(f"tfds dataset {name!r} has no 'image' feature (features: {sorted(first)})")
    examples = [source[i] for i in range(len(source))]
    images = np.stack([np.asarray(ex["image"]) for ex in examples])
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8:
        raise UserError(f"tfds dataset {name!r}: expected uint8 images (H, W, C), got "
                        f"{images.dtype} {images.shape[1:]}")
    labels = np.asarray([ex["label"] for ex in examples], np.int32) if "label" in first else None
    return Dataset(images, labels, f"tfds:{name}")


def load(dataset: str = "mnist", data_dir: str | None = None, split: str = "train") -> Dataset:
    """The dataset a config names: an IDX folder if given, else bundled MNIST, else tfds."""
    if data_dir is not None:
        return load_idx_dir(data_dir, split)
    if dataset == "mnist":
        return load_bundled_mnist(split)
    if dataset == "fashion_mnist" and DEBIAN_FASHION_MNIST.is_dir():
        return load_idx_dir(DEBIAN_FASHION_MNIST, split, name="fashion_mnist (Debian IDX)")
    return load_tfds(dataset, split)
