"""Named datasets from tensorflow-datasets' catalog, read with `tfds.data_source` (no TensorFlow
needed). A dataset must have been prepared (downloaded) once; nothing is fetched here."""

from __future__ import annotations

import dataclasses

import numpy as np

from wgan_jax.data.base import Dataset, check_uint8_images
from wgan_jax.errors import UserError, first_line


def load_tfds(name: str, split: str = "train", data_dir: str | None = None) -> Dataset:
    """One split of a tensorflow-datasets image dataset."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise UserError(f"tfds dataset {name!r} needs tensorflow-datasets ({err})") from None
    try:
        source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    except Exception as err:  # noqa: BLE001 - tfds raises many types (not found, not prepared)
        raise UserError(f"tfds dataset {name!r} split {split!r}: {first_line(err)}") from None
    if len(source) == 0:
        raise UserError(f"tfds dataset {name!r} split {split!r} is empty")
    first = source[0]
    if "image" not in first:
        raise UserError(f"tfds dataset {name!r} has no 'image' feature (features: {sorted(first)})")
    examples = [source[i] for i in range(len(source))]
    images = check_uint8_images(np.stack([np.asarray(ex["image"]) for ex in examples]),
                                f"tfds dataset {name!r}")
    labels = np.asarray([ex["label"] for ex in examples], np.int32) if "label" in first else None
    return Dataset(images, labels, f"tfds:{name}")


class TfdsSource:
    """A tfds dataset: its train split, and its test split (where it has one) as the held-out one."""

    kind = "tfds"

    def __init__(self, name: str):
        self.name = name

    def split(self, name: str) -> Dataset | None:
        if name == "train":
            return load_tfds(self.name, "train")
        try:
            test = load_tfds(self.name, "test")
        except UserError:
            return None
        return dataclasses.replace(test, name=f"{test.name} test split")

    def heldout_note(self) -> str:
        return "the test split, where the dataset has one"
