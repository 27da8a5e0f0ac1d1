"""The pure update steps, each `f(state, ...) -> (state, metrics)`, jitted once per config.

`data` is the whole training set as a uint8 device array (N, H, W, C) (with its labels, for a
conditional run), passed as an argument (never baked into the program as a constant), and
batches are drawn from it inside the step, with replacement, as the seed does; or, where the set
lives on disk (data placement "stream"), `Drawn`: the real batches of this call's critic updates,
gathered by the host at the indices `real_indices` gives, which are the ones the step would draw.

What the steps do, point by point (the config fields that change a point are named):
- critic update: a real batch and a fake batch go through the critic as two separate batches
  (each with its own BatchNorm statistics, as in the seed and the official code), one optimizer
  update on the loss (`loss`: Wasserstein, DCGAN cross-entropy, or Wasserstein plus the gradient
  penalty), then every trainable critic parameter is clipped to [-clip, clip] (loss "wgan" only;
  `clip_when`, `clip_batch_stats`). `keras_exact` makes it two updates, real batch then fake batch.
- fake batches: the generator runs in training mode (batch statistics) and the running statistics
  that forward would produce are dropped, so a critic step changes nothing of the generator's
  (`fake_batches`: "inference" uses the running averages, "train-update" keeps the update).
- critic updates per generator iteration: n_critic (`critic_schedule` "official": 100 for the first
  25 iterations and every 500th), two static scan lengths behind `lax.cond`, so no retrace.
- generator update: fresh noise (`keras_exact`: the last critic step's noise), one optimizer
  update on the generator loss with the critic in training mode (batch statistics, dropout) and
  frozen.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import flax.struct
import jax
import jax.numpy as jnp
import optax

from wgan_jax import augment, losses, models, optim, platform
from wgan_jax.config import Config
from wgan_jax.data import to_unit_range
from wgan_jax.state import (AUGMENT_CRITIC, AUGMENT_GENERATOR, BN_STATS, CRITIC, GENERATOR, PENALTY,
                            NetState, TrainState, stream)

Metrics = dict[str, jax.Array]

# Latent vectors whose batch statistics become the averaged generator's BatchNorm statistics
# under ema_stats "recomputed".
RECOMPUTE_SAMPLES = 1024

# The official code's critic schedule: OFFICIAL_LONG updates for the first OFFICIAL_WARMUP
# generator iterations and every OFFICIAL_EVERY-th one.
OFFICIAL_LONG, OFFICIAL_WARMUP, OFFICIAL_EVERY = 100, 25, 500


def shard_batch(x: jax.Array) -> jax.Array:
    """Splits a batch over the "data" axis of the mesh the caller set with `jax.set_mesh`
    (wgan_jax.distributed); without one, x unchanged."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or "data" not in mesh.axis_names:
        return x
    return jax.lax.with_sharding_constraint(x, jax.sharding.PartitionSpec("data"))


def _batch_index(key: jax.Array, batch_size: int, count: int) -> jax.Array:
    """The indices of a real batch, drawn with replacement from `count` images."""
    return shard_batch(jax.random.randint(key, (batch_size,), 0, count))


def real_batch(data: jax.Array, key: jax.Array, batch_size: int) -> jax.Array:
    """`batch_size` images drawn with replacement, scaled from uint8 to [-1, 1] as the seed does."""
    return to_unit_range(jnp.take(data, _batch_index(key, batch_size, data.shape[0]), axis=0))


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
    return jax.vmap(lambda u: jax.random.randint(_update_keys(key, u)[0], (batch_size,), 0,
                                                 size))(updates)


def _real(data, key: jax.Array, config: Config) -> tuple[jax.Array, jax.Array | None]:
    """A real batch and, for a conditional run (whose `data` is (images, labels)), its labels:
    the same draw as `real_batch`; a `Drawn` batch as it is."""
    if isinstance(data, Drawn):
        return to_unit_range(data.images), data.labels
    if not config.conditional:
        return real_batch(data, key, config.batch_size), None
    images, labels = data
    index = _batch_index(key, config.batch_size, images.shape[0])
    return to_unit_range(jnp.take(images, index, axis=0)), jnp.take(labels, index)


def fake_labels(noise_key: jax.Array, count: int, config: Config) -> jax.Array | None:
    """The labels a conditional run's fake batch asks for, uniform over the classes and drawn
    from the batch's noise key folded with 1 (so unconditional runs draw exactly as before);
    None when unconditional."""
    if not config.conditional:
        return None
    return shard_batch(jax.random.randint(jax.random.fold_in(noise_key, 1), (count,), 0,
                                          config.num_classes))


def _update_keys(key: jax.Array, update: jax.Array) -> jax.Array:
    """Keys of critic update number `update` of the run with root key `key`: real batch, noise,
    dropout (real), dropout (fake)."""
    return jax.random.split(jax.random.fold_in(stream(key, CRITIC), update), 4)


def _critic_keys(state: TrainState, update: jax.Array) -> jax.Array:
    return _update_keys(state.key, update)


def _fake_batch(state: TrainState, noise_key: jax.Array, config: Config):
    """A fake batch for the critic as (images, labels: None unless conditional), and the
    generator's running statistics after making it."""
    generator, _ = models.build(config)
    z = shard_batch(jax.random.normal(noise_key, (config.batch_size, config.latent_dim)))
    labels = fake_labels(noise_key, config.batch_size, config)
    if config.fake_batches == "inference":
        images = generator.apply(state.gen.variables, z, train=False, labels=labels)
        return (jax.lax.stop_gradient(images), labels), state.gen.stats
    images, updated = generator.apply(state.gen.variables, z, train=True, labels=labels,
                                      mutable=["batch_stats"])
    return (jax.lax.stop_gradient(images), labels), updated["batch_stats"]


def _clip(net: NetState, bound: jax.Array, config: Config) -> NetState:
    """The WGAN clip of the critic's parameters (and, with clip_batch_stats, its statistics) to
    [-bound, bound], bound being the state's clip; the critic unchanged for other losses."""
    if not losses.OBJECTIVES[config.loss].clipped:
        return net
    return net.replace(params=optim.clip_params(net.params, bound),
                       stats=optim.clip_params(net.stats, bound) if config.clip_batch_stats
                       else net.stats)


def _critic_scores(critic, params, stats, images, dropout_key, labels=None):
    """Critic scores in training mode, and its BatchNorm statistics after this batch."""
    scores, updated = critic.apply({"params": params, "batch_stats": stats}, images, train=True,
                                   labels=labels, rngs={"dropout": dropout_key},
                                   mutable=["batch_stats"])
    return scores, updated.get("batch_stats", stats)


def _critic_update(state: TrainState, data, keys: jax.Array, fake: tuple, config: Config
                   ) -> tuple[TrainState, Metrics]:
    _, critic = models.build(config)
    objective = losses.OBJECTIVES[config.loss]
    real, real_labels = _real(data, keys[0], config)
    fake, fake_labels_ = fake
    if config.augment != "off":  # one policy, each batch its own per-image draws
        real_key, fake_key = jax.random.split(
            jax.random.fold_in(stream(state.key, AUGMENT_CRITIC), state.critic_updates))
        real = augment.augment(real, real_key, config.augment)
        fake = augment.augment(fake, fake_key, config.augment)
    net = state.critic
    if config.clip_when == "before":
        net = _clip(net, state.clip, config)
    if config.keras_exact:
        return _keras_critic_update(state, net, real, fake, keys, config)

    def loss_fn(params):
        scores_real, new_stats = _critic_scores(critic, params, net.stats, real, keys[2],
                                                real_labels)
        scores_fake, new_stats = _critic_scores(critic, params, new_stats, fake, keys[3],
                                                fake_labels_)
        loss = objective.critic(scores_real, scores_fake)
        aux = {"wasserstein_estimate": jnp.mean(scores_real) - jnp.mean(scores_fake)}
        if objective.penalised:
            mix_key = jax.random.fold_in(stream(state.key, PENALTY), state.critic_updates)
            penalty = _penalty(critic, params, real, fake, mix_key)
            loss = loss + config.gp_weight * penalty
            aux["gradient_penalty"] = penalty
        return loss, (new_stats, aux)

    (loss, (stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
    net = net.update(grads, optim.optimizer(config, state.lr_critic), stats)
    return _after_critic_update(state, net, config), {"critic_loss": loss, **aux}


def _after_critic_update(state: TrainState, net: NetState, config: Config) -> TrainState:
    """The state with the updated critic `net` (clipped, under clip_when "after") and the update
    counted."""
    if config.clip_when == "after":
        net = _clip(net, state.clip, config)
    return state.replace(critic=net, critic_updates=state.critic_updates + 1)


def _penalty(critic, params, real: jax.Array, fake: jax.Array, mix_key: jax.Array) -> jax.Array:
    """WGAN-GP's penalty on the critic as a deterministic function (dropout off, which is all
    `train=False` changes in a critic without BatchNorm). The published critics have no dropout
    (wgan-gp's default is 0); with dropout set, a mask of the penalty's own would constrain a
    random sub-network, a different one at every update, rather than the critic."""
    mix = jax.random.uniform(mix_key, (real.shape[0],))
    penalty, _ = losses.gradient_penalty(
        lambda x: critic.apply({"params": params}, x, train=False), real, fake, mix)
    return penalty


def _keras_critic_update(state, net, real, fake, keys, config):
    """The seed's critic step: `train_on_batch(real, -1)`, then `train_on_batch(fake, +1)`, each
    a full optimizer update, then the clip. The losses are those train_on_batch returns (before
    each update); the seed prints 1 - their mean."""
    _, critic = models.build(config)
    tx = optim.optimizer(config, state.lr_critic)
    objective, halves = losses.OBJECTIVES[config.loss], []
    for images, dropout_key, term in ((real, keys[2], objective.real),
                                      (fake, keys[3], objective.fake)):
        def loss_fn(p, images=images, dropout_key=dropout_key, term=term):
            scores, new_stats = _critic_scores(critic, p, net.stats, images, dropout_key)
            return term(scores), new_stats

        (half, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
        net = net.update(grads, tx, stats)
        halves.append(half)
    loss = halves[0] + halves[1]
    return _after_critic_update(state, net, config), {
        "critic_loss": loss, "wasserstein_estimate": -loss, "seed_d_loss": 1.0 - 0.5 * loss}


def _critic_step_with(state: TrainState, data: jax.Array, keys: jax.Array,
                      config: Config) -> tuple[TrainState, Metrics]:
    fake, gen_stats = _fake_batch(state, keys[1], config)
    if config.fake_batches == "train-update":
        state = state.replace(gen=state.gen.replace(stats=gen_stats))
    return _critic_update(state, data, keys, fake, config)


def _critic_step(state: TrainState, data: jax.Array, config: Config) -> tuple[TrainState, Metrics]:
    return _critic_step_with(state, data, _critic_keys(state, state.critic_updates), config)


def critic_unroll(config: Config) -> int:
    """The critic scan's unroll factor: the config's, else full on CPU and none elsewhere."""
    if config.critic_unroll:
        return config.critic_unroll
    return config.n_critic if platform.on_cpu() else 1


def _critic_steps(state: TrainState, data: jax.Array, config: Config,
                  count: int | None = None) -> tuple[TrainState, Metrics]:
    """`count` (default n_critic) critic updates under `lax.scan`; metrics stacked along a
    leading axis.

    The generator does not change during these updates, so unless its running statistics must
    follow each fake batch ("train-update"), all fake batches are made up front in one vmapped
    call (BatchNorm statistics stay per batch): the same numbers as making each inside its
    update, with fewer and larger kernels.
    """
    count = count or config.n_critic
    updates = state.critic_updates + jnp.arange(count)
    keys = jax.vmap(lambda update: _critic_keys(state, update))(updates)
    unroll = min(critic_unroll(config), count)
    # a Drawn `data` holds one batch per update: each update takes its own slice of it
    drawn = data if isinstance(data, Drawn) else None

    def real(batch):
        return data if drawn is None else batch

    if config.fake_batches == "train-update":
        return jax.lax.scan(lambda carry, xs: _critic_step_with(carry, real(xs[1]), xs[0], config),
                            state, (keys, drawn), unroll=unroll)
    fakes = jax.vmap(lambda key: _fake_batch(state, key, config)[0])(keys[:, 1])

    def body(carry, inputs):
        update_keys, fake, batch = inputs
        return _critic_update(carry, real(batch), update_keys, fake, config)

    return jax.lax.scan(body, state, (keys, fakes, drawn), unroll=unroll)


def long_iteration(step: int) -> bool:
    """Whether generator iteration `step` (0-based) is one of the official schedule's long ones,
    for the host (critic_count is the traced twin)."""
    return step < OFFICIAL_WARMUP or step % OFFICIAL_EVERY == 0


def critic_count(step: jax.Array, config: Config) -> jax.Array:
    """Critic updates in generator iteration `step` (0-based) under the config's schedule."""
    if config.critic_schedule == "official":
        long = (step < OFFICIAL_WARMUP) | (step % OFFICIAL_EVERY == 0)
        return jnp.where(long, OFFICIAL_LONG, config.n_critic)
    return jnp.asarray(config.n_critic)


def critic_updates_before(step: int, config: Config) -> int:
    """Critic updates done before generator iteration `step` (0-based) under the config's
    schedule: the state's critic_updates counter at that iteration, for the host."""
    if config.critic_schedule != "official":
        return step * config.n_critic
    long = min(step, OFFICIAL_WARMUP) + len(range(OFFICIAL_EVERY, step, OFFICIAL_EVERY))
    return long * OFFICIAL_LONG + (step - long) * config.n_critic


def mean_critic_updates(config: Config) -> float:
    """Critic updates per generator iteration over a whole run of config.iterations, on average
    (the official schedule's long iterations included)."""
    if config.critic_schedule != "official":
        return float(config.n_critic)
    return critic_updates_before(config.iterations, config) / config.iterations


def _generator_step(state: TrainState, config: Config) -> tuple[TrainState, Metrics]:
    generator, critic = models.build(config)
    noise_key, dropout_key = jax.random.split(
        jax.random.fold_in(stream(state.key, GENERATOR), state.step))
    if config.keras_exact:  # the seed's combined.train_on_batch(noise, ...) reuses the loop's noise
        noise_key = _critic_keys(state, state.critic_updates - 1)[1]
    z = shard_batch(jax.random.normal(noise_key, (config.batch_size, config.latent_dim)))
    labels = fake_labels(noise_key, config.batch_size, config)

    def loss_fn(params):
        fake, updated = generator.apply({"params": params, "batch_stats": state.gen.stats}, z,
                                        train=True, labels=labels, mutable=["batch_stats"])
        # the critic sees the generator's images as it saw them in its updates; the gradient
        # flows back through the augmentation
        fake = augment.augment(fake, jax.random.fold_in(stream(state.key, AUGMENT_GENERATOR),
                                                        state.step), config.augment)
        scores, _ = _critic_scores(critic, state.critic.params, state.critic.stats, fake,
                                   dropout_key, labels)
        return losses.OBJECTIVES[config.loss].generator(scores), updated["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.gen.params)
    gen = state.gen.update(grads, optim.optimizer(config, state.lr_generator), stats)
    state = _average(state.replace(gen=gen), config)
    state = state.replace(step=state.step + 1)
    metrics = {"generator_loss": loss}
    if config.keras_exact:
        metrics["seed_g_loss"] = 1.0 - loss
    return state, metrics


def ema_decay(step: jax.Array, config: Config) -> jax.Array:
    """The average's decay at generator update `step` (0-based): config.ema, lowered at the start
    to (1 + step) / (10 + step) (TensorFlow's ExponentialMovingAverage with num_updates), so the
    random initial generator is forgotten within the first few hundred updates."""
    step = step.astype(jnp.float32)
    return jnp.minimum(config.ema, (1.0 + step) / (10.0 + step))


def _average(state: TrainState, config: Config) -> TrainState:
    """Moves the averaged generator towards the just-updated one (no-op with ema 0)."""
    if not config.ema:
        return state
    rate = 1.0 - ema_decay(state.step, config)
    return state.replace(ema=optax.incremental_update(state.gen.variables, state.ema, rate))


def _last_critic_metrics(result: tuple[TrainState, Metrics]) -> tuple[TrainState, Metrics]:
    state, metrics = result
    return state, {k: v[-1] for k, v in metrics.items()}


def _train_step(state: TrainState, data: jax.Array, config: Config) -> tuple[TrainState, Metrics]:
    """One generator iteration. Reports the last critic update's loss: the best-trained critic's
    Wasserstein estimate, the quantity the WGAN paper plots."""
    if config.critic_schedule == "official":
        state, critic_metrics = jax.lax.cond(
            critic_count(state.step, config) == OFFICIAL_LONG,
            lambda s: _last_critic_metrics(_critic_steps(s, data, config, OFFICIAL_LONG)),
            lambda s: _last_critic_metrics(_critic_steps(s, data, config)), state)
    else:
        state, critic_metrics = _last_critic_metrics(_critic_steps(state, data, config))
    state, generator_metrics = _generator_step(state, config)
    return state, {**critic_metrics, **generator_metrics}


def generator_variables(state: TrainState, config: Config, averaged: bool = True) -> dict:
    """The variables images are drawn with: the averaged generator's when config.ema is on and
    `averaged`, else the trained generator's. Under ema_stats "recomputed" the averaged weights
    get the batch statistics of RECOMPUTE_SAMPLES latent vectors from the run's own fixed
    stream, so the same weights always get the same statistics."""
    if not (config.ema and averaged):
        return state.gen.variables
    if config.ema_stats == "averaged":
        return state.ema
    # Momentum 0 makes the "running" statistics after one training-mode pass the batch's own.
    generator, _ = models.build(dataclasses.replace(config, bn_momentum=0.0))
    z = jax.random.normal(stream(state.key, BN_STATS), (RECOMPUTE_SAMPLES, config.latent_dim))
    _, updated = generator.apply(state.ema, z, train=True, labels=balanced_labels(
        RECOMPUTE_SAMPLES, config), mutable=["batch_stats"])
    return {"params": state.ema["params"], "batch_stats": updated["batch_stats"]}


def balanced_labels(count: int, config: Config) -> jax.Array | None:
    """0, 1, ..., num_classes - 1, 0, 1, ... (`count` of them) for a conditional run: the labels
    of its sample grids and evaluations; None when unconditional."""
    return jnp.arange(count) % config.num_classes if config.conditional else None


def _draw(variables: dict, z: jax.Array, config: Config, labels: jax.Array | None = None
          ) -> jax.Array:
    generator, _ = models.build(config)
    return generator.apply(variables, z, train=False, labels=labels)


def _generate(state: TrainState, z: jax.Array, config: Config, averaged: bool = True,
              labels: jax.Array | None = None) -> jax.Array:
    return _draw(generator_variables(state, config, averaged), z, config, labels)


def _static(fn, static: tuple[str, ...] = ("config",)):
    """`fn` jitted with its `config` (and the other `static` arguments) static, the config
    keyed by `program()`: calls whose configs differ only in what the state carries (seed, clip,
    learning rates) share one compilation. `lower` and `_cache_size` are the jitted function's."""
    jitted = jax.jit(fn, static_argnames=static)
    signature = inspect.signature(fn)

    def keyed(args, kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.arguments["config"] = bound.arguments["config"].program()
        return bound.args, bound.kwargs

    @functools.wraps(fn)
    def call(*args, **kwargs):
        args, kwargs = keyed(args, kwargs)
        return jitted(*args, **kwargs)

    def lower(*args, **kwargs):
        args, kwargs = keyed(args, kwargs)
        return jitted.lower(*args, **kwargs)

    call.lower, call._cache_size = lower, jitted._cache_size
    return call


#: One critic update (draws its own batch, noise and dropout keys from the state).
critic_step = _static(_critic_step)
#: n_critic critic updates under lax.scan, equal to n_critic calls of `critic_step`.
critic_steps = _static(_critic_steps)
#: One generator update.
generator_step = _static(_generator_step)
#: One generator iteration: `critic_steps` then `generator_step`. The training programs
#: (wgan_jax.programs) are built from it.
train_step = _static(_train_step)
#: Images in [-1, 1] from latent vectors z (B, latent_dim) (and, conditional, labels (B,)),
#: BatchNorm in inference mode; the averaged generator's when config.ema is on, unless
#: averaged=False.
generate = _static(_generate, ("config", "averaged"))
#: Images in [-1, 1] from generator variables {"params", "batch_stats"} (`generator_variables`,
#: or a shipped generator's, wgan_jax.pretrained), latent vectors z (B, latent_dim) and, for a
#: conditional generator, labels (B,).
draw = _static(_draw)
#: `generator_variables`, compiled (the recomputed statistics are a generator pass).
variables_of = _static(generator_variables, ("config", "averaged"))
