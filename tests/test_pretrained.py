"""Shipped generators: export and load round-trip exactly, and the shipped one scores as its card
says."""


import numpy as np
import pytest

from wgan_jax import UserError, pretrained
from wgan_jax.train import loop
from wgan_jax.core.runs import init_states
from wgan_jax.core import generation
from wgan_jax.ckpt import read_states
from wgan_jax.core.state import select

from conftest import TINY, leaves


@pytest.fixture(scope="module")
def averaged_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pretrained") / "run"
    config = TINY.replace(iterations=2, ema=0.5, ema_stats="recomputed", eval_every=0)
    loop.run(config, workdir)
    return config, workdir


@pytest.mark.slow
def test_export_then_load_gives_the_runs_averaged_generator_and_its_scores(averaged_run, tmp_path):
    config, workdir = averaged_run
    card = pretrained.export(workdir, "tiny", samples=200, command="train.py ...", where=tmp_path)
    generator = pretrained.load("tiny", where=tmp_path)
    state = select(read_states(workdir, None, init_states).states, 0)
    expected = generation.variables_of(state, config.program())  # averaged, statistics recomputed
    for got, want in zip(leaves(generator.variables), leaves(expected)):
        np.testing.assert_array_equal(got, want)
    assert generator.config == config and card["iterations"] == 2
    assert card["averaged"] and card["command"] == "train.py ..."
    assert len(card["train_sha256"]) == 64
    again = pretrained.evaluate(generator)  # the same noise, classifier and metrics
    assert again["fd_mnist"] == pytest.approx(card["evaluation"]["fd_mnist"], rel=1e-6)
    assert pretrained.names(tmp_path) == ["tiny"]
    raw = pretrained.export(workdir, "raw", samples=200, where=tmp_path, averaged=False)
    trained = generation.variables_of(state, config.program(), False)
    for got, want in zip(leaves(pretrained.load("raw", where=tmp_path).variables), leaves(trained)):
        np.testing.assert_array_equal(got, want)
    assert not raw["averaged"] and raw["evaluation"]["fd_mnist"] != card["evaluation"]["fd_mnist"]


@pytest.mark.slow
def test_fid_off_leaves_fid_off_the_card_of_a_run_that_asked_for_it(tmp_path):
    """--fid overrides the run's eval_fid for the card (FID costs half an hour per 10,000
    images on a CPU): a run trained with eval_fid "on" exports without the Inception."""
    workdir = tmp_path / "run"
    loop.run(TINY.replace(iterations=2, eval_every=0, eval_fid="on"), workdir)
    card = pretrained.export(workdir, "nofid", samples=100, where=tmp_path, fid="off")
    assert "fid" not in card["evaluation"] and card["evaluation"]["fd_mnist"] > 0
    assert card["config"]["outputs"]["eval_fid"] == "on"  # the run's own config, as trained


def test_an_unknown_name_is_a_one_line_error_naming_the_shipped_ones(tmp_path):
    with pytest.raises(UserError, match=r"no pretrained generator 'cifar' \(shipped: none\)"):
        pretrained.load("cifar", where=tmp_path)


@pytest.mark.slow
@pytest.mark.heavy
@pytest.mark.parametrize("name", pretrained.names())
def test_each_shipped_generator_scores_as_its_card_says(name):
    generator = pretrained.load(name)
    card = generator.card
    assert card.get("data", card.get("dataset")) == "mnist" and card["samples"] == 10000 and card["iterations"] > 0
    scored = pretrained.evaluate(generator)
    # The same weights, noise, classifier and metrics as the export; only XLA:CPU's code
    # differs (the tests compile with LLVM -O0, the export did not), which moves pixels by
    # float32 rounding. Measured: 5e-8 relative on fd_mnist, 7e-8 on kid_mnist; 1e-5 leaves
    # ~100x room. Precision and recall are shares of 10,000 images: 1e-3 is ten images.
    for key in ("fd_mnist", "kid_mnist", "classifier_score"):
        assert scored[key] == pytest.approx(card["evaluation"][key], rel=1e-5), key
    for key in ("precision", "recall", *(["conditional_accuracy"] if generator.conditional else [])):
        assert scored[key] == pytest.approx(card["evaluation"][key], abs=1e-3), key
    assert scored["fd_mnist"] < 60  # digits: between real ones shifted by 1 and 2 pixels
    assert ("conditional_accuracy" in scored) == generator.conditional
