"""The training state: one pytree holding everything a step reads or writes."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from wgan_jax.config import Config
from wgan_jax.core import models, optim


# Independent random streams, all folded out of the state's one root key. A critic update uses
# fold_in(stream(key, CRITIC), critic_updates), a generator update fold_in(stream(key, GENERATOR),
# step): each update's key depends only on its own counter, so the n_critic keys of an iteration
# can be made up front, and no key is ever used twice.
# AUGMENT_* (the critic's augmentation, wgan_jax.core.augment) fold the same counters.
INIT, CRITIC, GENERATOR, SAMPLES, EVAL, PENALTY, BN_STATS, AUGMENT_CRITIC, AUGMENT_GENERATOR = range(9)


def stream(key: jax.Array, name: int) -> jax.Array:
    """The root key of one named random stream."""
    return jax.random.fold_in(key, name)


@flax.struct.dataclass
class NetState:
    """One trained network: what `apply` takes, and its optimizer's state."""

    params: Any  # trainable parameters (the critic's: the clipped ones)
    stats: Any  # BatchNorm running statistics ({} without BatchNorm)
    opt: Any  # optimizer state

    @property
    def variables(self) -> dict:
        """The network's variables as Flax's `apply` takes them."""
        return {"params": self.params, "batch_stats": self.stats}

    def update(self, grads, tx, stats=None) -> "NetState":
        """One optimizer step on `grads` with optax transformation `tx`, and the BatchNorm
        statistics the step's forward passes left (`stats`; default: unchanged)."""
        updates, opt = tx.update(grads, self.opt, self.params)
        return NetState(optax.apply_updates(self.params, updates),
                        self.stats if stats is None else stats, opt)


@flax.struct.dataclass
class TrainState:
    gen: NetState  # the generator
    critic: NetState  # the critic
    # The averaged generator's variables {"params", "batch_stats"} (averaging.ema); {} when off.
    ema: Any
    key: jax.Array  # root PRNG key of the run (raw uint32[2]); never consumed directly
    # The two learning rates and the clip bound (Runs.critic_lr(), generator_lr(), clip),
    # held as f32 scalars rather than compiled in, so that the runs of one program
    # (wgan_jax.core.runs) can each have their own.
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
    generator, critic = models.build(config.nets)
    gen_key, critic_key = jax.random.split(stream(key, INIT))
    z = jnp.zeros((1, config.nets.latent_dim), jnp.float32)
    images = jnp.zeros((1, *config.nets.image_shape), jnp.float32)
    labels = jnp.zeros((1,), jnp.int32) if config.nets.conditional else None
    gen_vars = generator.init(gen_key, z, train=False, labels=labels)
    critic_vars = critic.init(critic_key, images, train=False, labels=labels)
    tx = optim.optimizer(config.optim, config.runs.lr)
    return TrainState(
        gen=NetState(gen_vars["params"], gen_vars["batch_stats"], tx.init(gen_vars["params"])),
        critic=NetState(critic_vars["params"], critic_vars.get("batch_stats", {}),
                        tx.init(critic_vars["params"])),
        # The average starts at the initial generator.
        ema=dict(gen_vars) if config.averaging.ema else {},
        key=key, lr_critic=jnp.asarray(config.runs.critic_lr(), jnp.float32),
        lr_generator=jnp.asarray(config.runs.generator_lr(), jnp.float32),
        clip=jnp.asarray(config.runs.clip, jnp.float32),
        step=jnp.zeros((), jnp.int32), critic_updates=jnp.zeros((), jnp.int32))


@functools.partial(jax.jit, static_argnums=1)
def select(states: TrainState, index: int) -> TrainState:
    """Run `index`'s state out of states stacked along a leading run axis (one compiled program
    for the whole tree, rather than one small one per leaf shape)."""
    return jax.tree_util.tree_map(lambda x: x[index], states)


def abstract(states_fn, config: Config, sharding: jax.sharding.Sharding) -> TrainState:
    """The shapes and dtypes `states_fn(config)` returns, placed with `sharding`: a restore
    target, read without computing anything."""
    shapes = jax.eval_shape(lambda: states_fn(config))
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


@jax.jit
def _finite_leaves(state: TrainState) -> dict[str, jax.Array]:
    return {jax.tree_util.keystr(path): jnp.all(jnp.isfinite(x))
            for path, x in jax.tree_util.tree_leaves_with_path(state)
            if jnp.issubdtype(x.dtype, jnp.floating)}


def nonfinite_parts(state: TrainState) -> list[str]:
    """The parts of the state (".gen.params", ".critic.opt", ...) holding a NaN or an infinity."""
    bad = [path for path, ok in jax.device_get(_finite_leaves(state)).items() if not ok]
    return sorted({".".join(path.split(".")[:3]).split("[")[0].lstrip(".") for path in bad})


def iteration(state: TrainState) -> int:
    """Generator iterations done. Read from this process's first copy of the counter, which every
    run of a batch and every device shares, so it also works on a state spread over processes."""
    return int(np.ravel(state.step.addressable_shards[0].data)[0])
