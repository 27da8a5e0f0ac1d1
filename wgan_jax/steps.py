"""The pure update steps, each `f(state, ...) -> (state, metrics)`, jitted once per config.

`data` is always the whole training set as a uint8 device array (N, H, W, C), passed as an
argument (never baked into the program as a constant); batches are drawn from it inside the step,
with replacement, as the seed does.

What the steps do, point by point:
- critic update: a real batch and a fake batch go through the critic as two separate batches
  (each with its own BatchNorm statistics, as in the seed and the official code), one RMSprop
  update on mean(D(fake)) - mean(D(real)), then every trainable critic parameter is clipped to
  [-clip, clip]. BatchNorm running statistics are not clipped (the seed clips them too).
- the generator runs in training mode (batch statistics) to make the critic's fake batch; the
  running statistics that forward would produce are dropped, so a critic step changes nothing
  of the generator's.
- generator update: fresh noise, one RMSprop update on -mean(D(G(z))) with the critic in training
  mode (batch statistics, dropout) and frozen.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from wgan_jax import losses, models, optim
from wgan_jax.config import Config
from wgan_jax.state import CRITIC, GENERATOR, TrainState, stream

Metrics = dict[str, jax.Array]


def real_batch(data: jax.Array, key: jax.Array, batch_size: int) -> jax.Array:
    """`batch_size` images drawn with replacement, scaled from uint8 to [-1, 1] as the seed does."""
    index = jax.random.randint(key, (batch_size,), 0, data.shape[0])
    return (jnp.take(data, index, axis=0).astype(jnp.float32) - 127.5) / 127.5


def _critic_keys(state: TrainState, update: jax.Array) -> jax.Array:
    """Keys of critic update number `update`: real batch, noise, dropout (real), dropout (fake)."""
    return jax.random.split(jax.random.fold_in(stream(state.key, CRITIC), update), 4)


def _fake_batch(state: TrainState, noise_key: jax.Array, config: Config) -> jax.Array:
    generator, _ = models.build(config)
    z = jax.random.normal(noise_key, (config.batch_size, config.latent_dim))
    variables = {"params": state.gen_params, "batch_stats": state.gen_stats}
    images, _ = generator.apply(variables, z, train=True, mutable=["batch_stats"])
    return jax.lax.stop_gradient(images)


def _critic_update(state: TrainState, data: jax.Array, keys: jax.Array, fake: jax.Array,
                   config: Config) -> tuple[TrainState, Metrics]:
    _, critic = models.build(config)
    real = real_batch(data, keys[0], config.batch_size)

    def loss_fn(params):
        scores_real, updated = critic.apply(
            {"params": params, "batch_stats": state.critic_stats}, real, train=True,
            rngs={"dropout": keys[2]}, mutable=["batch_stats"])
        scores_fake, updated = critic.apply(
            {"params": params, **updated}, fake, train=True,
            rngs={"dropout": keys[3]}, mutable=["batch_stats"])
        return losses.critic_loss(scores_real, scores_fake), updated["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.critic_params)
    updates, opt_state = optim.rmsprop(config).update(grads, state.critic_opt, state.critic_params)
    params = optim.clip_params(optax.apply_updates(state.critic_params, updates), config.clip)
    state = state.replace(critic_params=params, critic_stats=stats, critic_opt=opt_state,
                          critic_updates=state.critic_updates + 1)
    return state, {"critic_loss": loss, "wasserstein_estimate": -loss}


def _critic_step(state: TrainState, data: jax.Array, config: Config) -> tuple[TrainState, Metrics]:
    keys = _critic_keys(state, state.critic_updates)
    return _critic_update(state, data, keys, _fake_batch(state, keys[1], config), config)


def critic_unroll(config: Config) -> int:
    """The critic scan's unroll factor: the config's, else full on CPU and none elsewhere."""
    if config.critic_unroll:
        return config.critic_unroll
    return config.n_critic if jax.default_backend() == "cpu" else 1


def _critic_steps(state: TrainState, data: jax.Array, config: Config) -> tuple[TrainState, Metrics]:
    """n_critic critic updates under `lax.scan`; metrics stacked along a leading axis.

    The generator does not change during these updates, so all n_critic fake batches are made up
    front in one vmapped call (BatchNorm statistics stay per batch): the same numbers as making
    each inside its update, with fewer and larger kernels.
    """
    updates = state.critic_updates + jnp.arange(config.n_critic)
    keys = jax.vmap(lambda update: _critic_keys(state, update))(updates)
    fakes = jax.vmap(lambda key: _fake_batch(state, key, config))(keys[:, 1])

    def body(carry, inputs):
        return _critic_update(carry, data, *inputs, config)

    return jax.lax.scan(body, state, (keys, fakes), unroll=critic_unroll(config))


def _generator_step(state: TrainState, config: Config) -> tuple[TrainState, Metrics]:
    generator, critic = models.build(config)
    noise_key, dropout_key = jax.random.split(
        jax.random.fold_in(stream(state.key, GENERATOR), state.step))
    z = jax.random.normal(noise_key, (config.batch_size, config.latent_dim))

    def loss_fn(params):
        fake, updated = generator.apply({"params": params, "batch_stats": state.gen_stats}, z,
                                        train=True, mutable=["batch_stats"])
        scores, _ = critic.apply({"params": state.critic_params, "batch_stats": state.critic_stats},
                                 fake, train=True, rngs={"dropout": dropout_key},
                                 mutable=["batch_stats"])
        return losses.generator_loss(scores), updated["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.gen_params)
    updates, opt_state = optim.rmsprop(config).update(grads, state.gen_opt, state.gen_params)
    state = state.replace(gen_params=optax.apply_updates(state.gen_params, updates),
                          gen_stats=stats, gen_opt=opt_state, step=state.step + 1)
    return state, {"generator_loss": loss}


def _train_step(state: TrainState, data: jax.Array, config: Config) -> tuple[TrainState, Metrics]:
    """One generator iteration. Reports the last critic update's loss: the best-trained critic's
    Wasserstein estimate, the quantity the WGAN paper plots."""
    state, critic_metrics = _critic_steps(state, data, config)
    state, generator_metrics = _generator_step(state, config)
    return state, {**{k: v[-1] for k, v in critic_metrics.items()}, **generator_metrics}


def _train_chunk(state: TrainState, data: jax.Array, config: Config,
                 length: int) -> tuple[TrainState, Metrics]:
    """`length` generator iterations in one dispatch; metrics stacked, shape (length,)."""
    if length == 1:  # no outer scan: XLA:CPU runs a scan of scans far slower
        state, metrics = _train_step(state, data, config)
        return state, jax.tree_util.tree_map(lambda m: m[None], metrics)
    return jax.lax.scan(lambda carry, _: _train_step(carry, data, config), state, None,
                        length=length)


def _generate(state: TrainState, z: jax.Array, config: Config) -> jax.Array:
    generator, _ = models.build(config)
    return generator.apply({"params": state.gen_params, "batch_stats": state.gen_stats}, z,
                           train=False)


_static = functools.partial(jax.jit, static_argnames="config")

#: One critic update (draws its own batch, noise and dropout keys from the state).
critic_step = _static(_critic_step)
#: n_critic critic updates under lax.scan, equal to n_critic calls of `critic_step`.
critic_steps = _static(_critic_steps)
#: One generator update.
generator_step = _static(_generator_step)
#: One generator iteration: `critic_steps` then `generator_step`.
train_step = _static(_train_step)
#: Images in [-1, 1] from latent vectors z (B, latent_dim), BatchNorm in inference mode.
generate = _static(_generate)
#: `length` train steps per dispatch, for the host loop; donates (consumes) its input state.
train_chunk = jax.jit(_train_chunk, static_argnames=("config", "length"), donate_argnames="state")
