"""The training state: one pytree holding everything a step reads or writes."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax import models, optim
from wgan_jax.config import Config

# Independent random streams, all folded out of the state's one root key. A critic update uses
# fold_in(stream(key, CRITIC), critic_updates), a generator update fold_in(stream(key, GENERATOR),
# step): each update's key depends only on its own counter, so the n_critic keys of an iteration
# can be made up front, and no key is ever used twice.
INIT, CRITIC, GENERATOR, SAMPLES, EVAL, PENALTY, BN_STATS = range(7)


def stream(key: jax.Array, name: int) -> jax.Array:
    """The root key of one named random stream."""
    return jax.random.fold_in(key, name)


@flax.struct.dataclass
class TrainState:
    gen_params: Any  # generator trainable parameters
    gen_stats: Any  # generator BatchNorm running statistics
    critic_params: Any  # critic trainable parameters (the clipped ones)
    critic_stats: Any  # critic BatchNorm running statistics ({} without BatchNorm)
    # The averaged generator's parameters and BatchNorm statistics (config.ema); {} when off.
    ema_params: Any
    ema_stats: Any
    gen_opt: Any  # generator optimizer state
    critic_opt: Any  # critic optimizer state
    key: jax.Array  # root PRNG key of the run (raw uint32[2]); never consumed directly
    # The two learning rates and the clip bound (Config.critic_lr(), generator_lr(), clip), held
    # as f32 scalars rather than compiled in, so runs batched with jax.vmap (wgan_jax.seeds) can
    # each have their own.
    lr_critic: jax.Array
    lr_generator: jax.Array
    clip: jax.Array
    step: jax.Array  # generator updates done (int32 scalar)
    critic_updates: jax.Array  # critic updates done (int32 scalar)


@functools.partial(jax.jit, static_argnames="config")
def init_state(config: Config, key: jax.Array) -> TrainState:
    """Fresh networks (Glorot init), zeroed optimizer states, counters at 0.

    The critic starts unclipped, as in the paper and the seed: the clip follows each update.
    """
    generator, critic = models.build(config)
    gen_key, critic_key = jax.random.split(stream(key, INIT))
    z = jnp.zeros((1, config.latent_dim), jnp.float32)
    images = jnp.zeros((1, *config.image_shape), jnp.float32)
    gen_vars = generator.init(gen_key, z, train=False)
    critic_vars = critic.init(critic_key, images, train=False)
    critic_params = critic_vars["params"]
    tx = optim.optimizer(config)
    averaged = config.ema > 0  # the average starts at the initial generator
    return TrainState(
        gen_params=gen_vars["params"], gen_stats=gen_vars["batch_stats"],
        critic_params=critic_params, critic_stats=critic_vars.get("batch_stats", {}),
        ema_params=gen_vars["params"] if averaged else {},
        ema_stats=gen_vars["batch_stats"] if averaged else {},
        gen_opt=tx.init(gen_vars["params"]), critic_opt=tx.init(critic_params),
        key=key, lr_critic=jnp.asarray(config.critic_lr(), jnp.float32),
        lr_generator=jnp.asarray(config.generator_lr(), jnp.float32),
        clip=jnp.asarray(config.clip, jnp.float32),
        step=jnp.zeros((), jnp.int32), critic_updates=jnp.zeros((), jnp.int32))


def iteration(state: TrainState) -> int:
    """Generator iterations done. Read from this process's first copy of the counter, which every
    batched run and every device shares, so it also works on a state spread over processes."""
    return int(np.ravel(state.step.addressable_shards[0].data)[0])
