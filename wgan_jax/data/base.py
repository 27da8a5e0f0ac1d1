"""What every data source returns: a split as host uint8 arrays, and the options that shape it."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from typing import Any

import numpy as np

from wgan_jax.errors import UserError

# sha256 of the test images (uint8, N x H x W x C, C-order bytes) of the datasets the package
# ships an evaluation classifier for: whichever source delivers them (bundled, Debian's IDX
# files, tfds, a folder of IDX files), an evaluation against the same bytes uses the classifier.
KNOWN_TEST_SETS = {
    "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161": "mnist",
    "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a": "fashion_mnist",
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One split of an image dataset, on the host."""

    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray | None  # int32 (N,) where the source has labels
    name: str  # where it came from, for logs and config.json
    classes: tuple[str, ...] | None = None  # label i's name, where the source names them
    # The images' sha256 where the source knows it already (a cache computed it while writing),
    # so that a set on disk is not read whole to be named
    known_sha256: str | None = None
    # Where the images lie on disk as rows of uint8 (a cache file's path and the byte offset of
    # the first image), where `images` maps such a file: a stream reads its rows from there
    file: tuple[str, int] | None = None

    @functools.cached_property
    def sha256(self) -> str:
        """The images' content hash: what a checkpoint records and a resume compares."""
        if self.known_sha256:
            return self.known_sha256
        return hashlib.sha256(np.ascontiguousarray(self.images).data).hexdigest()

    @property
    def nbytes(self) -> int:
        """The decoded images' size in bytes."""
        return int(np.prod(self.images.shape)) * self.images.dtype.itemsize

    def identity(self) -> dict[str, Any]:
        """Name, shape and content hash of the images, as checkpoints record them."""
        return {"source": self.name, "shape": list(self.images.shape), "sha256": self.sha256}


def known_classifier(heldout: Dataset) -> str | None:
    """The shipped classifier whose test set `heldout` is, if any: its feature space then gives
    the evaluation fd_<name> and the other classifier metrics."""
    return KNOWN_TEST_SETS.get(heldout.sha256)


@dataclasses.dataclass(frozen=True)
class Splits:
    """A source's training split and its held-out split (None where it has none)."""

    train: Dataset
    heldout: Dataset | None
    # Where the held-out images come from, in words, for config.json and reports.
    heldout_note: str


@dataclasses.dataclass(frozen=True)
class Options:
    """How images are fitted to what the networks take; the defaults change nothing."""

    # Side of the square images to train on; 0: the images' own size (they must share one).
    image_size: int = 0
    # 1 (grey) or 3 (RGB); 0: what the files hold.
    channels: int = 0
    # Colour that transparent pixels are composited onto: a name or #rrggbb (Pillow's ImageColor).
    background: str = "white"
    # Share of a folder held out for evaluation when the source has no test split of its own.
    holdout: float = 0.1

    def describe(self) -> str:
        size = f"{self.image_size}px" if self.image_size else "own size"
        channels = {0: "own channels", 1: "grey", 3: "RGB"}[self.channels]
        return f"{size}, {channels}, background {self.background}"


def check_uint8_images(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 images as (N, H, W, C): a 3-D array gains a channel axis; anything else is refused."""
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[-1] not in (1, 3, 4):
        raise UserError(f"{where}: expected uint8 images (H, W) or (H, W, 1|3|4), got "
                        f"{images.dtype} {images.shape[1:]}")
    return images
