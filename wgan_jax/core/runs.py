"""The runs of a training run: their configs, initial states and sample noise.

Run i of a config with `seeds` R is the run `train.py --seed <seed + i>` would make, with
`run_clips[i]` and `run_lrs[i]` when given: its own root key (so its own initial networks,
batches, noise, dropout and sample noise) and its own clip bound and learning rates, which the
state holds as values (`TrainState.lr_critic`, `lr_generator`, `clip`) so that one program
serves all runs (wgan_jax.train.programs). A single run is R = 1: every state the loop holds has the
leading run axis.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from wgan_jax.config import Config, StepConfig
from wgan_jax.core.state import SAMPLES, TrainState, init_state, stream


def run_configs(config: Config) -> list[Config]:
    """Each run's config, as the single run it equals (seeds 1, its seed, clip and lr)."""
    return [dataclasses.replace(
        config, seeds=1, seed=config.seed + i, run_clips=(), run_lrs=(),
        clip=config.run_clips[i] if config.run_clips else config.clip,
        lr=config.run_lrs[i] if config.run_lrs else config.lr) for i in range(config.seeds)]


@functools.partial(jax.jit, static_argnames="config")
def init_states(config: StepConfig) -> TrainState:
    """The runs' initial states, stacked along a leading axis of length config.seeds."""
    runs = run_configs(config)
    keys = jnp.stack([jax.random.PRNGKey(run.seed) for run in runs])
    states = jax.vmap(lambda key: init_state(config, key))(keys)
    return states.replace(lr_critic=jnp.array([run.critic_lr() for run in runs], jnp.float32),
                          lr_generator=jnp.array([run.generator_lr() for run in runs], jnp.float32),
                          clip=jnp.array([run.clip for run in runs], jnp.float32))


def sample_noise(config: Config, count: int) -> jax.Array:
    """Each run's fixed sample noise (runs, count, latent), the one its single run would use."""
    return jnp.stack([jax.random.normal(stream(jax.random.PRNGKey(run.seed), SAMPLES),
                                        (count, config.latent_dim)) for run in run_configs(config)])
