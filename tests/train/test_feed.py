"""The two data placements (wgan_jax.train.feed, wgan_jax.data.placement): streamed batches are the
ones the step draws from the whole set, a streamed run resumes exactly, and the up-front decision
between the two."""

import hashlib
import signal

import jax
import numpy as np
import pytest
from PIL import Image

from wgan_jax import UserError, data
from wgan_jax.train import loop
from wgan_jax.core.runs import init_states
from wgan_jax.core import draws
from wgan_jax.ckpt import read_states
from wgan_jax.data import placement

from conftest import TINY


def final_leaves(workdir):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(
        read_states(workdir, None, init_states).states)]


def assert_same_run(a, b):
    left, right = final_leaves(a), final_leaves(b)
    assert len(left) == len(right) > 0
    for x, y in zip(left, right):
        np.testing.assert_array_equal(x, y)  # bitwise, every leaf, keys and counters included


def test_the_host_draws_the_indices_the_step_draws(images):
    """real_indices for critic update u is the draw of critic update u inside the step: the
    real batch critic_step takes is the images at those indices."""
    state = init_states(TINY)
    state = jax.tree_util.tree_map(lambda x: x[0], state).replace(
        critic_updates=jax.numpy.asarray(7, jax.numpy.int32))
    index = draws.real_indices(state.key, 7, 3, TINY.algorithm.batch_size, len(images))
    assert index.shape == (3, TINY.algorithm.batch_size)
    for update in range(3):
        in_step = draws.batch_index(draws.critic_keys(state, 7 + update)[0], TINY.algorithm.batch_size,
                                     len(images))
        np.testing.assert_array_equal(index[update], in_step)
    assert len(np.unique(np.asarray(index))) > TINY.algorithm.batch_size  # three different batches


@pytest.mark.slow
@pytest.mark.parametrize("changes", [
    dict(seeds=2),  # two runs, each its own batches
    dict(conditional=True),  # labels gathered with the images
    dict(critic_schedule="official", n_critic=4, iterations=2),  # 100 updates, in pieces
], ids=["two-runs", "conditional", "official"])
def test_a_streamed_run_is_bitwise_the_device_run(tmp_path, changes):
    config = TINY.replace(**{"iterations": 3, **changes})
    for mode in ("device", "stream"):
        loop.run(config.replace(data_placement=mode), tmp_path / mode)
    assert_same_run(tmp_path / "device", tmp_path / "stream")


@pytest.mark.slow
def test_a_streamed_run_resumed_after_an_interruption_is_bitwise_an_uninterrupted_one(tmp_path):
    config = TINY.replace(iterations=5, data_placement="stream", log_every=1,
                                 checkpoint_every=1)
    loop.run(config, tmp_path / "straight")
    real_log = loop._Trainer._log

    def log_then_interrupt(self, at, metrics):  # SIGINT, as a user's Ctrl-C, after iteration 2
        real_log(self, at, metrics)
        if at == 2:
            signal.raise_signal(signal.SIGINT)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop._Trainer, "_log", log_then_interrupt)
        with pytest.raises(loop.Interrupted):
            loop.run(config, tmp_path / "resumed")
    stopped_at = int(read_states(tmp_path / "resumed", None, init_states).states.step[0])
    assert 2 <= stopped_at < 5
    loop.run(config, tmp_path / "resumed", resume=True)
    assert_same_run(tmp_path / "straight", tmp_path / "resumed")


def folder(root, count=48):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(root / f"{i:03d}.png")
    return root


@pytest.mark.slow
def test_a_folder_over_the_memory_budget_is_streamed_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WGAN_JAX_CACHE", str(tmp_path / "cache"))
    pictures = folder(tmp_path / "pictures")
    config = TINY.replace(data=str(pictures), iterations=2)
    monkeypatch.setenv(placement.BUDGET_VARIABLE, "10K")  # 43 pictures of 784 bytes: 33.7 KB
    loop.run(config, tmp_path / "streamed")
    lines = [line for line in capsys.readouterr().err.splitlines() if "Streaming" in line]
    assert lines == ["Streaming 43 images of 28x28x1: decoded they take 0.00 GB, above the memory "
                     "budget of 0.00 GB (WGAN_JAX_MEMORY_BUDGET=10K); each iteration's batches are "
                     "gathered from the memory-mapped cache on disk (--data-placement device to "
                     "override)."]
    monkeypatch.setenv(placement.BUDGET_VARIABLE, "1M")
    loop.run(config, tmp_path / "placed")
    assert "Streaming" not in capsys.readouterr().err
    assert_same_run(tmp_path / "streamed", tmp_path / "placed")


@pytest.mark.parametrize("requested, size, budget, mode, says", [
    ("auto", 100, "200", "device", None),
    ("auto", 300, "200", "stream", "Streaming"),
    ("stream", 100, "200", "stream", "as --data-placement stream asks"),
    ("device", 300, "200", "device", "above the budget"),
    ("device", 100, "200", "device", None),
])
def test_the_decision_both_ways(monkeypatch, requested, size, budget, mode, says):
    monkeypatch.setenv(placement.BUDGET_VARIABLE, budget)
    decided = placement.decide(requested, size, "N images", "disk")
    assert decided.mode == mode
    assert (decided.line is None) if says is None else (says in decided.line)
    assert decided.line is None or "\n" not in decided.line


def test_the_budget_without_the_knob_is_half_the_free_memory(monkeypatch):
    monkeypatch.delenv(placement.BUDGET_VARIABLE, raising=False)
    monkeypatch.setattr(placement, "host_available", lambda: 8 * 2**30)
    monkeypatch.setattr(placement, "device_available", lambda: None)  # the CPU: host memory
    assert placement.budget()[0] == 4 * 2**30
    monkeypatch.setattr(placement, "device_available", lambda: 2 * 2**30)  # a smaller device
    assert placement.budget() == (2**30, "half the free memory of a device, 2.15 GB")
    assert 0 < placement.host_available()


@pytest.mark.parametrize("text, count", [("2000", 2000), ("512K", 512 * 1024), ("1.5G", 3 * 2**29),
                                         ("3mb", 3 * 2**20)])
def test_budget_sizes(text, count):
    assert placement.parse_bytes(text) == count


@pytest.mark.parametrize("text", ["lots", "-5", "0", "1X"])
def test_a_bad_budget_is_one_line(text):
    with pytest.raises(UserError, match="WGAN_JAX_MEMORY_BUDGET") as info:
        placement.parse_bytes(text)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_tfds_dataset_streams_from_its_cache_like_a_folder(tmp_path, monkeypatch):
    """tfds splits are read chunk by chunk into the cache and memory-mapped from it (mock data
    here: no network), so they stream the same way."""
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setenv("WGAN_JAX_CACHE", str(tmp_path / "cache"))
    config = TINY.replace(data="cifar10", iterations=2, conditional=True)
    with tfds.testing.mock_data(num_examples=16):
        train = data.load("cifar10")
        assert isinstance(train.images, np.memmap) and train.images.shape == (16, 32, 32, 3)
        assert train.sha256 == hashlib.sha256(np.array(train.images).data).hexdigest()
        for mode in ("device", "stream"):
            loop.run(config.replace(data_placement=mode), tmp_path / mode)
    assert_same_run(tmp_path / "device", tmp_path / "stream")
