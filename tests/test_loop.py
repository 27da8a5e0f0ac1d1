import dataclasses
import json

import matplotlib.image
import pytest

from wgan_jax import loop

from conftest import TINY


@pytest.mark.parametrize("total, longest, every", [
    (4000, 50, (50, 50)), (2000, 1, (25, 100)), (103, 40, (25, 10)), (7, 100, (50,)), (10, 3, (4,)),
])
def test_chunks_cover_the_run_and_end_on_every_log_and_sample_point(total, longest, every):
    lengths = loop.chunk_lengths(total, longest, *every)
    assert sum(lengths) == total and all(1 <= n <= longest for n in lengths)
    ends = set()
    done = 0
    for n in lengths:
        done += n
        ends.add(done)
    for e in every:
        assert set(range(e, total + 1, e)) <= ends
    assert total in ends


def test_chunk_lengths_take_few_distinct_values():
    """Each distinct length is one compilation."""
    assert set(loop.chunk_lengths(4000, 50, 50, 50)) == {50}
    assert len(set(loop.chunk_lengths(2010, 100, 25, 100))) <= 3


def test_cifar10_through_tfds_trains_colour_networks(tmp_path):
    """cifar10 comes through tfds.data_source (mock data here: no network); the networks take its
    32x32x3 shape from the data, and evaluation is switched off for want of a classifier."""
    tfds = pytest.importorskip("tensorflow_datasets")
    config = dataclasses.replace(TINY, dataset="cifar10", iterations=2, eval_every=2)
    with tfds.testing.mock_data(num_examples=16):
        loop.run(config, tmp_path / "w")
    saved = json.loads((tmp_path / "w" / "config.json").read_text())
    assert saved["image_shape"] == [32, 32, 3] and saved["dataset_source"] == "tfds:cifar10"
    grid = matplotlib.image.imread(tmp_path / "w" / "samples" / "final.png")
    assert grid.shape == (2 * (5 * 34 + 2), 2 * (5 * 34 + 2), 4)  # RGBA from RGB tiles
    assert not any("fd_" in line for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines())
