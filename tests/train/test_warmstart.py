"""Fine-tuning from another run's checkpoint (--init-from): what is carried over, what is not,
and that a conditional run started from an unconditional one starts out computing exactly what
the unconditional networks did."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TINY
from wgan_jax.train import loop
from wgan_jax.core.runs import init_states
from wgan_jax.core import models
from wgan_jax.ckpt import read_states
from wgan_jax.errors import UserError
from wgan_jax.core.state import select
from wgan_jax.train.warmstart import initial_states, parse_source, transplant

CONDITIONAL = TINY.replace(conditional=True, num_classes=10, ema=0.5)


@pytest.mark.parametrize("text, expected", [
    ("runs/a", (Path("runs/a"), None)),
    ("runs/a:best", (Path("runs/a"), "best")),
    ("runs/a:300", (Path("runs/a"), 300)),
    ("odd:name/run", (Path("odd:name/run"), None)),
])
def test_init_from_names_a_workdir_and_optionally_a_step(text, expected):
    assert parse_source(text) == expected


def test_a_bad_step_is_one_line():
    with pytest.raises(UserError, match="--step must be an iteration or 'best', got 'last'"):
        parse_source("runs/a:last")


def _outputs(config, variables, z, labels, images):
    """The generator's images and the critic's scores (inference mode) for these inputs."""
    generator, critic = models.build(config.nets)
    labels = labels if config.nets.conditional else None
    return (generator.apply(variables[0], z, train=False, labels=labels),
            critic.apply(variables[1], images, train=False, labels=labels))


def test_a_conditional_run_from_an_unconditional_one_starts_computing_what_it_did(tiny_run, images):
    config = CONDITIONAL.replace(init_from=f"{tiny_run}:2", clip=0.05, lr=1e-4)
    started = select(initial_states(config), 0)
    saved = read_states(tiny_run, 2, init_states)
    source = select(saved.states, 0)
    z = jax.random.normal(jax.random.PRNGKey(7), (10, TINY.nets.latent_dim))
    real = images[:10].astype(jnp.float32) / 127.5 - 1.0
    for label in range(10):  # every label gives the unconditional networks' outputs
        labels = jnp.full((10,), label, jnp.int32)
        for new, old in [((started.gen.variables, started.critic.variables),
                          (source.gen.variables, source.critic.variables)),
                         ((started.ema, started.critic.variables), (source.ema, source.critic.variables))]:
            for x, y in zip(_outputs(config, new, z, labels, real), _outputs(saved.config, old, z, labels, real)):
                # The conditional first layer sums 16 more products, each exactly 0.0: only the
                # order of a float32 sum can differ.
                np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-6)
    fresh = select(init_states(config), 0)
    # The label's inputs start at zero, the new embeddings as a fresh run's.
    kernel = started.gen.params["Dense_0"]["kernel"]
    assert kernel.shape[0] == 2 * TINY.nets.latent_dim and not np.any(kernel[TINY.nets.latent_dim:])
    np.testing.assert_array_equal(started.gen.params["label_embedding"]["embedding"],
                                  fresh.gen.params["label_embedding"]["embedding"])
    assert not np.any(started.critic.params["projection"]["embedding"])
    # The optimizer's state follows the networks; what is about this run is this run's.
    for a, b in zip(jax.tree_util.tree_leaves(started.critic.opt), jax.tree_util.tree_leaves(source.critic.opt)):
        np.testing.assert_array_equal(a, b)
    assert int(source.step) == 2 and int(started.step) == 0 and int(started.critic_updates) == 0
    np.testing.assert_array_equal(started.key, fresh.key)
    assert started.clip == np.float32(0.05) and started.lr_generator == np.float32(1e-4)


def test_the_average_starts_at_the_generator_when_the_source_kept_none(tiny_run):
    saved = read_states(tiny_run, 2, init_states).states
    config = CONDITIONAL.replace(ema=0.9)
    started = transplant(init_states(config), saved.replace(ema={}), "src")
    for a, b in zip(jax.tree_util.tree_leaves(started.ema),
                    jax.tree_util.tree_leaves({"params": started.gen.params, "batch_stats": started.gen.stats})):
        np.testing.assert_array_equal(a, b)


def test_one_source_run_starts_every_run_and_other_counts_are_refused(tiny_run):
    saved = read_states(tiny_run, 2, init_states).states
    three = transplant(init_states(TINY.replace(seeds=3, ema=0.5)), saved, "src")
    for run in range(3):
        np.testing.assert_array_equal(three.gen.params["Dense_0"]["kernel"][run],
                                      saved.gen.params["Dense_0"]["kernel"][0])
    assert len({tuple(np.asarray(k)) for k in three.key}) == 3  # each run keeps its own random streams
    with pytest.raises(UserError, match="that checkpoint holds 3 runs, this run has 2"):
        transplant(init_states(TINY.replace(seeds=2, ema=0.5)), three, "src")


@pytest.mark.parametrize("change, message", [
    (dict(gen_channels=(8, 8)), r"gen\.params\['BatchNorm_1'\]\['bias'\] differs \(that run's \(4,\), this run's \(8,\)\)"),
    (dict(latent_dim=8), r"gen\.params\['Dense_0'\]\['kernel'\] differs"),
    (dict(image_shape=(32, 32, 1)), "that run trained on 28x28x1 images, this one on 32x32x1"),
])
def test_other_networks_are_one_line_naming_what_differs(tiny_run, change, message):
    with pytest.raises(UserError, match=message):
        initial_states(TINY.replace(init_from=str(tiny_run), **change))


@pytest.mark.slow
def test_a_run_from_train_py_records_where_it_started_and_trains(tiny_run, tmp_path):
    workdir = tmp_path / "tuned"
    loop.run(TINY.replace(iterations=1, conditional=True, init_from=str(tiny_run)),
             workdir)
    assert json.loads((workdir / "config.json").read_text())["training"]["init_from"].startswith(str(tiny_run))
    tuned = read_states(workdir, None, init_states)
    assert tuned.config.nets.conditional and int(np.ravel(tuned.states.step)[0]) == 1
