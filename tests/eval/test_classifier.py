"""The shipped evaluation classifiers: accuracy on the real test sets, deterministic training."""

import json
from importlib import resources

import jax
import numpy as np
import pytest

from wgan_jax import UserError, data
from wgan_jax.eval import classifier


def card(name: str) -> dict:
    """The JSON card the shipping command wrote beside classifier `name`."""
    return json.loads((resources.files("wgan_jax") / "assets" / "classifiers" / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_shipped_classifier_reaches_its_accuracy_on_the_real_test_set(name):
    if name == "fashion_mnist" and not data.DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed")
    params = classifier.load(name)
    accuracy = classifier.accuracy(params, data.load(name, split="heldout"))
    assert accuracy >= classifier.REQUIRED_ACCURACY[name]
    # The card records what the shipping command measured; another XLA build may flip an
    # image or two near a decision boundary.
    assert accuracy == pytest.approx(card(name)["test_accuracy"], abs=5e-4)


@pytest.mark.slow
def test_training_is_deterministic_given_the_seed(mnist_train):
    small = data.Dataset(mnist_train.images[:512], mnist_train.labels[:512], "mnist[:512]")
    runs = [classifier.train(small, seed=3, batch_size=64, max_steps=3) for _ in range(2)]
    other = classifier.train(small, seed=4, batch_size=64, max_steps=3)
    for a, b, c in zip(*(jax.tree_util.tree_leaves(r) for r in (*runs, other))):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in
               zip(jax.tree_util.tree_leaves(runs[0]), jax.tree_util.tree_leaves(other)))


def test_a_dataset_without_a_classifier_is_a_clear_error():
    assert classifier.available("mnist") and classifier.available("fashion_mnist")
    assert not classifier.available("cifar10")
    with pytest.raises(UserError, match="no evaluation classifier for dataset 'cifar10'"):
        classifier.load("cifar10")


def test_classify_pads_to_its_compiled_batch_and_accepts_uint8_or_float(mnist_train):
    params = classifier.load("mnist")
    images = mnist_train.images[:1003]  # one full batch and a ragged remainder
    probs, features = classifier.predict(params, images)
    assert probs.shape == (1003, 10) and features.shape == (1003, classifier.FEATURES)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    as_float = (images.astype(np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(classifier.predict(params, as_float)[1], features, atol=1e-5)
    assert np.mean(probs.argmax(axis=1) == mnist_train.labels[:1003]) > 0.98
