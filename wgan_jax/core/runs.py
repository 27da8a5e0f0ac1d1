"""The runs of a training run: their configs, initial states and sample noise.

Run i of a config with `seeds` R is the run `train.py --seed <seed + i>` would make, with
`run_clips[i]` and `run_lrs[i]` when given: its own root key (so its own initial networks,
batches, noise, dropout and sample noise) and its own clip bound and learning rates, which the
state holds as values (`TrainState.lr_critic`, `lr_generator`, `clip`) so that one program
serves all runs (wgan_jax.train.programs). A single run is R = 1: every state the loop holds has the
leading run axis.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from wgan_jax.config import Config, Runs
from wgan_jax.core.state import SAMPLES, TrainState, init_state, stream


def run_configs(config: Config) -> list[Config]:
    """Each run's config, as the single run it equals (seeds 1, its seed, clip and lr)."""
    runs = config.runs
    return [config.replace(
        seeds=1, seed=runs.seed + i, run_clips=(), run_lrs=(),
        clip=runs.run_clips[i] if runs.run_clips else runs.clip,
        lr=runs.run_lrs[i] if runs.run_lrs else runs.lr) for i in range(runs.seeds)]


def init_states(config: Config) -> TrainState:
    """The runs' initial states, stacked along a leading axis of length config.runs.seeds."""
    return _init_states(Config(runs=config.runs, **vars(config.program())))


@functools.partial(jax.jit, static_argnames="config")
def _init_states(config: Config) -> TrainState:
    # Keyed by what the states depend on (the runs section and the program), not the host's
    # sections, so that a longer run or other outputs compile nothing new.
    runs = run_configs(config)
    keys = jnp.stack([jax.random.PRNGKey(run.runs.seed) for run in runs])
    states = jax.vmap(lambda key: init_state(config, key))(keys)
    def each(value) -> jax.Array:
        return jnp.array([value(run.runs) for run in runs], jnp.float32)

    return states.replace(lr_critic=each(Runs.critic_lr), lr_generator=each(Runs.generator_lr),
                          clip=each(lambda run: run.clip))


def sample_noise(config: Config, count: int) -> jax.Array:
    """Each run's fixed sample noise (runs, count, latent), the one its single run would use."""
    shape = (count, config.nets.latent_dim)
    return jnp.stack([jax.random.normal(stream(jax.random.PRNGKey(run.runs.seed), SAMPLES), shape)
                      for run in run_configs(config)])
