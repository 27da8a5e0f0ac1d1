"""Training data as uint8 arrays (N, H, W, C) on the host, from one registry of sources.

A source is named by one string (`--data`), with an optional kind prefix:

    mnist                  the MNIST copy shipped inside the package
    fashion_mnist          Debian's dataset-fashion-mnist files where installed, else tfds
    idx:FOLDER             a folder holding the four MNIST-style IDX files
    images:FOLDER          a folder of PNG/JPEG/WebP/BMP pictures, searched recursively
    tfds:NAME              a prepared tensorflow-datasets image dataset (no download)

Without a prefix, an existing folder is read as IDX files if it holds them and as pictures
otherwise, and any other name is a tfds dataset. Every source gives a training split and, where
it can, a held-out split for evaluation (`Splits`): the test split of IDX and tfds datasets, a
fixed share of a picture folder. `Options` fit any source's images to one square size and channel
count. The training step scales the uint8 pixels to [-1, 1] on the device
(wgan_jax.core.draws.to_unit_range), so the whole set costs
one byte per pixel of device memory, where it fits (data placement "device"); a picture folder
too big for memory stays in its memory-mapped cache file and is streamed (wgan_jax.data.placement,
wgan_jax.data.stream).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Protocol

from wgan_jax.data.base import Dataset, Options, Splits, known_classifier
from wgan_jax.data.catalog import TfdsSource, load_tfds
from wgan_jax.data.fit import background_rgb, fit_array
from wgan_jax.data.cache import cache_folder
from wgan_jax.data.folder import FolderSource
from wgan_jax.data.idx import (DEBIAN_FASHION_MNIST, IDX_FILES, IdxSource, bundled_mnist_folder,
                               fashion_mnist, holds_idx, load_bundled_mnist, load_idx, load_idx_dir)
from wgan_jax.errors import UserError

__all__ = ["DEBIAN_FASHION_MNIST", "IDX_FILES", "KINDS", "Dataset", "Options", "Source", "Splits",
           "bundled_mnist_folder", "cache_folder", "known_classifier", "load", "load_bundled_mnist",
           "load_idx", "load_idx_dir", "load_splits", "load_tfds", "source"]


class Source(Protocol):
    """A place training images come from."""

    kind: str  # the prefix that names it: idx, images, tfds

    def split(self, name: str) -> Dataset | None:
        """The "train" or the "heldout" split as uint8 arrays; None where there is none."""

    def heldout_note(self) -> str:
        """Where the held-out images come from (or why there are none), in words."""


# Each kind prefix and how it makes a source from the rest of the spec.
KINDS: dict[str, Callable[[str, Options], Source]] = {
    "idx": lambda rest, options: IdxSource(rest),
    "images": lambda rest, options: FolderSource(rest, options),
    "tfds": lambda rest, options: TfdsSource(rest, options),
}


def _looks_like_path(spec: str) -> bool:
    return os.sep in spec or spec.startswith(("~", "."))


def source(spec: str, options: Options = Options()) -> Source:
    """The source a --data spec names."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        if not rest:
            raise UserError(f"--data {spec!r}: give what follows {kind}:, e.g. {kind}:"
                            f"{'mnist' if kind == 'tfds' else 'path/to/folder'}")
        return KINDS[kind](rest, options)
    if spec == "mnist":
        return IdxSource()
    if spec == "fashion_mnist" and fashion_mnist() is not None:
        return fashion_mnist()
    path = Path(spec).expanduser()
    if path.exists() or _looks_like_path(spec):
        return IdxSource(path) if path.is_dir() and holds_idx(path) else FolderSource(path, options)
    return TfdsSource(spec, options)


def _fitted(dataset: Dataset | None, options: Options) -> Dataset | None:
    if dataset is None:
        return None
    images = fit_array(dataset.images, options.image_size, options.channels,
                       background_rgb(options.background))
    return dataset if images is dataset.images else dataclasses.replace(dataset, images=images,
                                                                     known_sha256=None, file=None)


def load_splits(spec: str = "mnist", options: Options = Options()) -> Splits:
    """Both splits of the source `spec` names, fitted to `options`."""
    named = source(spec, options)
    return Splits(_fitted(named.split("train"), options), _fitted(named.split("heldout"), options),
                  named.heldout_note())


def load(spec: str = "mnist", split: str = "train", options: Options = Options()) -> Dataset:
    """One split ("train" or "heldout") of the source `spec` names, fitted to `options`."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    named = source(spec, options)
    dataset = named.split(split)
    if dataset is None:
        raise UserError(f"--data {spec}: no held-out split ({named.heldout_note()})")
    return _fitted(dataset, options)
