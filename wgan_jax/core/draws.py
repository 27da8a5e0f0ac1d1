"""What each update draws, and how many updates an iteration has: the keys of critic update u
(folded from the state's root key and u, never reused), its real batch (drawn with replacement
inside the step, or drawn ahead by the host at the same indices: `Drawn`), the labels a
conditional fake batch asks for, and the critic schedule."""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax.config import Config, Program
from wgan_jax.core.state import CRITIC, TrainState, stream


# The official code's critic schedule: OFFICIAL_LONG updates for the first OFFICIAL_WARMUP
# generator iterations and every OFFICIAL_EVERY-th one.
OFFICIAL_LONG, OFFICIAL_WARMUP, OFFICIAL_EVERY = 100, 25, 500


def to_unit_range(images_uint8):
    """uint8 pixels (a NumPy or JAX array) to float32 in [-1, 1], the generator's output range,
    as the seed scales them."""
    return (images_uint8.astype(np.float32) - 127.5) / 127.5


def shard_batch(x: jax.Array) -> jax.Array:
    """Splits a batch over the "data" axis of the mesh the caller set with `jax.set_mesh`
    (wgan_jax.train.distributed); without one, x unchanged."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or "data" not in mesh.axis_names:
        return x
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec("data"))


def batch_index(key: jax.Array, batch_size: int, count: int) -> jax.Array:
    """The indices of a real batch, drawn with replacement from `count` images."""
    return shard_batch(jax.random.randint(key, (batch_size,), 0, count))


def real_batch(data: jax.Array, key: jax.Array, batch_size: int) -> jax.Array:
    """`batch_size` images drawn with replacement, scaled from uint8 to [-1, 1] as the seed does."""
    return to_unit_range(jnp.take(data, batch_index(key, batch_size, data.shape[0]), axis=0))


@flax.struct.dataclass
class Drawn:
    """Real batches drawn ahead by the host: images uint8 (U, B, H, W, C), one batch per critic
    update of the call (U), and their labels (U, B) for a conditional run, else None. Inside a
    critic update: one batch, (B, H, W, C) and (B,)."""

    images: jax.Array
    labels: jax.Array | None = None


def real_indices(key: jax.Array, first_update: int, count: int, batch_size: int,
                 size: int) -> jax.Array:
    """The indices (count, batch_size) of the real batches of critic updates first_update, ...,
    first_update + count - 1 of the run whose root key is `key`, in a set of `size` images:
    the draw each update makes inside the step, for the host to gather the same batches."""
    updates = first_update + jnp.arange(count)
    return jax.vmap(lambda u: jax.random.randint(update_keys(key, u)[0], (batch_size,), 0,
                                                 size))(updates)


def real(data, key: jax.Array, program: Program) -> tuple[jax.Array, jax.Array | None]:
    """A real batch and, for a conditional run (whose `data` is (images, labels)), its labels:
    the same draw as `real_batch`; a `Drawn` batch as it is."""
    if isinstance(data, Drawn):
        return to_unit_range(data.images), data.labels
    if not program.nets.conditional:
        return real_batch(data, key, program.algorithm.batch_size), None
    images, labels = data
    index = batch_index(key, program.algorithm.batch_size, images.shape[0])
    return to_unit_range(jnp.take(images, index, axis=0)), jnp.take(labels, index)


def latents(noise_key: jax.Array, program: Program) -> jax.Array:
    """A batch of the generator's N(0, 1) inputs, split over the mesh's "data" axis."""
    shape = (program.algorithm.batch_size, program.nets.latent_dim)
    return shard_batch(jax.random.normal(noise_key, shape))


def fake_labels(noise_key: jax.Array, count: int, program: Program) -> jax.Array | None:
    """The labels a conditional run's fake batch asks for, uniform over the classes and drawn
    from the batch's noise key folded with 1 (so unconditional runs draw exactly as before);
    None when unconditional."""
    if not program.nets.conditional:
        return None
    return shard_batch(jax.random.randint(jax.random.fold_in(noise_key, 1), (count,), 0,
                                          program.nets.num_classes))


def update_keys(key: jax.Array, update: jax.Array) -> jax.Array:
    """Keys of critic update number `update` of the run with root key `key`: real batch, noise,
    dropout (real), dropout (fake)."""
    return jax.random.split(jax.random.fold_in(stream(key, CRITIC), update), 4)


def critic_keys(state: TrainState, update: jax.Array) -> jax.Array:
    """Keys of the state's critic update number `update` (`update_keys` of its root key)."""
    return update_keys(state.key, update)


def long_iteration(step: int) -> bool:
    """Whether generator iteration `step` (0-based) is one of the official schedule's long ones,
    for the host (critic_count is the traced twin)."""
    return step < OFFICIAL_WARMUP or step % OFFICIAL_EVERY == 0


def critic_count(step: jax.Array, program: Program) -> jax.Array:
    """Critic updates in generator iteration `step` (0-based) under the program's schedule."""
    if program.algorithm.critic_schedule == "official":
        long = (step < OFFICIAL_WARMUP) | (step % OFFICIAL_EVERY == 0)
        return jnp.where(long, OFFICIAL_LONG, program.algorithm.n_critic)
    return jnp.asarray(program.algorithm.n_critic)


def critic_updates_before(step: int, program: Program) -> int:
    """Critic updates done before generator iteration `step` (0-based) under the program's
    schedule: the state's critic_updates counter at that iteration, for the host."""
    if program.algorithm.critic_schedule != "official":
        return step * program.algorithm.n_critic
    long = min(step, OFFICIAL_WARMUP) + len(range(OFFICIAL_EVERY, step, OFFICIAL_EVERY))
    return long * OFFICIAL_LONG + (step - long) * program.algorithm.n_critic


def mean_critic_updates(config: Config) -> float:
    """Critic updates per generator iteration over a whole run of training.iterations, on average
    (the official schedule's long iterations included)."""
    if config.algorithm.critic_schedule != "official":
        return float(config.algorithm.n_critic)
    return critic_updates_before(config.training.iterations, config) / config.training.iterations
