"""Named datasets from tensorflow-datasets' catalog, read with `tfds.data_source` (no TensorFlow
needed). A dataset must have been prepared (downloaded) once; nothing is fetched here."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from wgan_jax.data import cache
from wgan_jax.data.base import Dataset, Options, check_uint8_images
from wgan_jax.data.fit import background_rgb, fit_array
from wgan_jax.errors import UserError, first_line

# Bumped when the cached arrays would differ for the same dataset and options.
CACHE_VERSION = 1


def _data_source(name: str, split: str, data_dir: str | None):
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
    if "image" not in source[0]:
        raise UserError(f"tfds dataset {name!r} has no 'image' feature (features: "
                        f"{sorted(source[0])})")
    return source


def _cache_key(name: str, split: str, data_dir: str | None, source, options: Options) -> str:
    """What names a cached split: the dataset, its length, the bytes of three of its images
    (a re-prepared dataset differs there) and the fitting options."""
    probes = sorted({0, len(source) // 2, len(source) - 1})
    images = [hashlib.sha256(np.ascontiguousarray(source[i]["image"]).data).hexdigest()
              for i in probes]
    fitting = [options.image_size, options.channels, options.background, CACHE_VERSION]
    return hashlib.sha256(json.dumps([name, split, data_dir, len(source), images,
                                      fitting]).encode()).hexdigest()


def load_tfds(name: str, split: str = "train", data_dir: str | None = None,
              options: Options = Options()) -> Dataset:
    """One split of a tensorflow-datasets image dataset, fitted to `options`: read once, chunk
    by chunk, into the cache (wgan_jax.data.cache), then memory-mapped from there, so that a
    split bigger than memory can be streamed."""
    source = _data_source(name, split, data_dir)
    where, labelled = f"tfds dataset {name!r}", "label" in source[0]
    background = background_rgb(options.background)

    def fitted(index: int):
        example = source[index]
        image = check_uint8_images(np.asarray(example["image"])[None], where)
        image = fit_array(image, options.image_size, options.channels, background)[0]
        return (image, int(example["label"])) if labelled else image

    row = list((fitted(0)[0] if labelled else fitted(0)).shape)
    key = _cache_key(name, split, data_dir, source, options)
    directory = cache.cache_folder() / "tfds" / f"{name.replace('/', '_')}-{split}-{key[:24]}"
    meta = cache.read_json(directory / "meta.json")
    if meta is None:
        directory = cache.writable(directory, "images")

        def make(chunk: range) -> list:
            def one(index: int):
                made = fitted(index)
                shape = list((made[0] if labelled else made).shape)
                return made if shape == row else (
                    f"example {index} is {'x'.join(map(str, shape))}, the first "
                    f"{'x'.join(map(str, row))}; pass --image-size N to fit them all to N x N")
            with ThreadPoolExecutor(max_workers=4) as pool:
                return list(pool.map(one, chunk))

        failed = cache.fill(directory / "images.u8", len(source), row, make,
                            f"Reading {len(source)} images of tfds {name} ({split})", labelled)
        if failed:
            raise UserError(f"{where} split {split!r}: {failed[min(failed)]}")
        meta = {"row": row, "count": len(source), "labelled": labelled,
                "sha256": cache.digest(directory / "images.u8", len(source), row)}
        cache.write_json(directory / "meta.json", meta)
    images = cache.open_rows(directory / "images.u8", meta["count"], meta["row"])
    labels = (np.array(np.memmap(cache.labels_path(directory / "images.u8"), np.int32, "r"))
              if meta["labelled"] else None)
    return Dataset(images, labels, f"tfds:{name}", None, meta["sha256"],
                   (str(directory / "images.u8"), 0))


class TfdsSource:
    """A tfds dataset: its train split, and its test split (where it has one) as the held-out one."""

    kind = "tfds"

    def __init__(self, name: str, options: Options = Options()):
        self.name = name
        self.options = options

    def split(self, name: str) -> Dataset | None:
        if name == "train":
            return load_tfds(self.name, "train", options=self.options)
        try:
            test = load_tfds(self.name, "test", options=self.options)
        except UserError:
            return None
        return dataclasses.replace(test, name=f"{test.name} test split")

    def heldout_note(self) -> str:
        return "the test split, where the dataset has one"
