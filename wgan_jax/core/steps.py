"""The pure update steps, each `f(state, ...) -> (state, metrics)`, jitted once per program.

`data` is the whole training set as a uint8 device array (N, H, W, C) (with its labels, for a
conditional run), passed as an argument (never baked into the program as a constant), and
batches are drawn from it inside the step, with replacement, as the seed does; or, where the set
lives on disk (data placement "stream"), `draws.Drawn`: the real batches of this call's critic
updates, gathered by the host at the indices `draws.real_indices` gives, the ones the step would
draw. What each update draws, and the critic schedule, are in `draws`; drawing images from the
generator in `generate`.

What the steps do, point by point (the program fields that change a point are named):
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

import jax
import jax.numpy as jnp
import optax

from wgan_jax import config as config_lib, platform
from wgan_jax.config import Program
from wgan_jax.core import augment, draws, losses, models, optim
from wgan_jax.core.compiled import program_jit
from wgan_jax.core.state import (AUGMENT_CRITIC, AUGMENT_GENERATOR, GENERATOR, PENALTY, NetState,
                                 TrainState, stream)


Metrics = dict[str, jax.Array]


def _fake_batch(state: TrainState, noise_key: jax.Array, program: Program):
    """A fake batch for the critic as (images, labels: None unless conditional), and the
    generator's running statistics after making it."""
    generator, _ = models.build(program.nets)
    z = draws.latents(noise_key, program)
    labels = draws.fake_labels(noise_key, program.algorithm.batch_size, program)
    if program.algorithm.fake_batches == "inference":
        images = generator.apply(state.gen.variables, z, train=False, labels=labels)
        return (jax.lax.stop_gradient(images), labels), state.gen.stats
    images, updated = generator.apply(state.gen.variables, z, train=True, labels=labels,
                                      mutable=["batch_stats"])
    return (jax.lax.stop_gradient(images), labels), updated["batch_stats"]


def _clip(net: NetState, bound: jax.Array, program: Program) -> NetState:
    """The WGAN clip of the critic's parameters (and, with clip_batch_stats, its statistics) to
    [-bound, bound], bound being the state's clip; the critic unchanged for other losses."""
    if not config_lib.LOSSES[program.algorithm.loss].clipped:
        return net
    return net.replace(params=optim.clip_params(net.params, bound),
                       stats=optim.clip_params(net.stats, bound)
                       if program.algorithm.clip_batch_stats
                       else net.stats)


def _critic_scores(critic, params, stats, images, dropout_key, labels=None):
    """Critic scores in training mode, and its BatchNorm statistics after this batch."""
    scores, updated = critic.apply({"params": params, "batch_stats": stats}, images, train=True,
                                   labels=labels, rngs={"dropout": dropout_key},
                                   mutable=["batch_stats"])
    return scores, updated.get("batch_stats", stats)


def _critic_update(state: TrainState, data, keys: jax.Array, fake: tuple, program: Program
                   ) -> tuple[TrainState, Metrics]:
    _, critic = models.build(program.nets)
    objective = losses.OBJECTIVES[program.algorithm.loss]
    real, real_labels = draws.real(data, keys[0], program)
    fake, fake_labels_ = fake
    if program.algorithm.augment != "off":  # one policy, each batch its own per-image draws
        real_key, fake_key = jax.random.split(
            jax.random.fold_in(stream(state.key, AUGMENT_CRITIC), state.critic_updates))
        real = augment.augment(real, real_key, program.algorithm.augment)
        fake = augment.augment(fake, fake_key, program.algorithm.augment)
    net = state.critic
    if program.algorithm.clip_when == "before":
        net = _clip(net, state.clip, program)
    if program.algorithm.keras_exact:
        return _keras_critic_update(state, net, real, fake, keys, program)

    def loss_fn(params):
        scores_real, new_stats = _critic_scores(critic, params, net.stats, real, keys[2],
                                                real_labels)
        scores_fake, new_stats = _critic_scores(critic, params, new_stats, fake, keys[3],
                                                fake_labels_)
        loss = objective.critic(scores_real, scores_fake)
        aux = {"wasserstein_estimate": jnp.mean(scores_real) - jnp.mean(scores_fake)}
        if config_lib.LOSSES[program.algorithm.loss].penalised:
            mix_key = jax.random.fold_in(stream(state.key, PENALTY), state.critic_updates)
            penalty = _penalty(critic, params, real, fake, mix_key)
            loss = loss + program.algorithm.gp_weight * penalty
            aux["gradient_penalty"] = penalty
        return loss, (new_stats, aux)

    (loss, (stats, aux)), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
    net = net.update(grads, optim.optimizer(program.optim, state.lr_critic), stats)
    return _after_critic_update(state, net, program), {"critic_loss": loss, **aux}


def _after_critic_update(state: TrainState, net: NetState, program: Program) -> TrainState:
    """The state with the updated critic `net` (clipped, under clip_when "after") and the update
    counted."""
    if program.algorithm.clip_when == "after":
        net = _clip(net, state.clip, program)
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


def _keras_critic_update(state, net, real, fake, keys, program):
    """The seed's critic step: `train_on_batch(real, -1)`, then `train_on_batch(fake, +1)`, each
    a full optimizer update, then the clip. The losses are those train_on_batch returns (before
    each update); the seed prints 1 - their mean."""
    _, critic = models.build(program.nets)
    tx = optim.optimizer(program.optim, state.lr_critic)
    objective, halves = losses.OBJECTIVES[program.algorithm.loss], []
    for images, dropout_key, term in ((real, keys[2], objective.real),
                                      (fake, keys[3], objective.fake)):
        def loss_fn(p, images=images, dropout_key=dropout_key, term=term):
            scores, new_stats = _critic_scores(critic, p, net.stats, images, dropout_key)
            return term(scores), new_stats

        (half, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(net.params)
        net = net.update(grads, tx, stats)
        halves.append(half)
    loss = halves[0] + halves[1]
    return _after_critic_update(state, net, program), {
        "critic_loss": loss, "wasserstein_estimate": -loss, "seed_d_loss": 1.0 - 0.5 * loss}


def _critic_step_with(state: TrainState, data: jax.Array, keys: jax.Array,
                      program: Program) -> tuple[TrainState, Metrics]:
    fake, gen_stats = _fake_batch(state, keys[1], program)
    if program.algorithm.fake_batches == "train-update":
        state = state.replace(gen=state.gen.replace(stats=gen_stats))
    return _critic_update(state, data, keys, fake, program)


def _critic_step(state: TrainState, data: jax.Array, program: Program
                 ) -> tuple[TrainState, Metrics]:
    return _critic_step_with(state, data, draws.critic_keys(state, state.critic_updates), program)


def critic_unroll(program: Program) -> int:
    """The critic scan's unroll factor: the program's, else full on CPU and none elsewhere."""
    if program.algorithm.critic_unroll:
        return program.algorithm.critic_unroll
    return program.algorithm.n_critic if platform.on_cpu() else 1


def _critic_steps(state: TrainState, data: jax.Array, program: Program,
                  count: int | None = None) -> tuple[TrainState, Metrics]:
    """`count` (default n_critic) critic updates under `lax.scan`; metrics stacked along a
    leading axis.

    The generator does not change during these updates, so unless its running statistics must
    follow each fake batch ("train-update"), all fake batches are made up front in one vmapped
    call (BatchNorm statistics stay per batch): the same numbers as making each inside its
    update, with fewer and larger kernels.
    """
    count = count or program.algorithm.n_critic
    updates = state.critic_updates + jnp.arange(count)
    keys = jax.vmap(lambda update: draws.critic_keys(state, update))(updates)
    unroll = min(critic_unroll(program), count)
    # a Drawn `data` holds one batch per update: each update takes its own slice of it
    drawn = data if isinstance(data, draws.Drawn) else None

    def real(batch):
        return data if drawn is None else batch

    if program.algorithm.fake_batches == "train-update":
        return jax.lax.scan(lambda carry, xs: _critic_step_with(carry, real(xs[1]), xs[0], program),
                            state, (keys, drawn), unroll=unroll)
    fakes = jax.vmap(lambda key: _fake_batch(state, key, program)[0])(keys[:, 1])

    def body(carry, inputs):
        update_keys, fake, batch = inputs
        return _critic_update(carry, real(batch), update_keys, fake, program)

    return jax.lax.scan(body, state, (keys, fakes, drawn), unroll=unroll)


def _generator_step(state: TrainState, program: Program) -> tuple[TrainState, Metrics]:
    generator, critic = models.build(program.nets)
    noise_key, dropout_key = jax.random.split(
        jax.random.fold_in(stream(state.key, GENERATOR), state.step))
    # The seed's combined.train_on_batch(noise, ...) reuses the loop's noise.
    if program.algorithm.keras_exact:
        noise_key = draws.critic_keys(state, state.critic_updates - 1)[1]
    z = draws.latents(noise_key, program)
    labels = draws.fake_labels(noise_key, program.algorithm.batch_size, program)

    def loss_fn(params):
        fake, updated = generator.apply({"params": params, "batch_stats": state.gen.stats}, z,
                                        train=True, labels=labels, mutable=["batch_stats"])
        # the critic sees the generator's images as it saw them in its updates; the gradient
        # flows back through the augmentation
        fake = augment.augment(fake, jax.random.fold_in(stream(state.key, AUGMENT_GENERATOR),
                                                        state.step), program.algorithm.augment)
        scores, _ = _critic_scores(critic, state.critic.params, state.critic.stats, fake,
                                   dropout_key, labels)
        return losses.OBJECTIVES[program.algorithm.loss].generator(scores), updated["batch_stats"]

    (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.gen.params)
    gen = state.gen.update(grads, optim.optimizer(program.optim, state.lr_generator), stats)
    state = _average(state.replace(gen=gen), program)
    state = state.replace(step=state.step + 1)
    metrics = {"generator_loss": loss}
    if program.algorithm.keras_exact:
        metrics["seed_g_loss"] = 1.0 - loss
    return state, metrics


def ema_decay(step: jax.Array, program: Program) -> jax.Array:
    """The average's decay at generator update `step` (0-based): averaging.ema, lowered at the start
    to (1 + step) / (10 + step) (TensorFlow's ExponentialMovingAverage with num_updates), so the
    random initial generator is forgotten within the first few hundred updates."""
    step = step.astype(jnp.float32)
    return jnp.minimum(program.averaging.ema, (1.0 + step) / (10.0 + step))


def _average(state: TrainState, program: Program) -> TrainState:
    """Moves the averaged generator towards the just-updated one (no-op with ema 0)."""
    if not program.averaging.ema:
        return state
    rate = 1.0 - ema_decay(state.step, program)
    return state.replace(ema=optax.incremental_update(state.gen.variables, state.ema, rate))


def _last_critic_metrics(result: tuple[TrainState, Metrics]) -> tuple[TrainState, Metrics]:
    state, metrics = result
    return state, {k: v[-1] for k, v in metrics.items()}


def _train_step(state: TrainState, data: jax.Array, program: Program) -> tuple[TrainState, Metrics]:
    """One generator iteration. Reports the last critic update's loss: the best-trained critic's
    Wasserstein estimate, the quantity the WGAN paper plots."""
    if program.algorithm.critic_schedule == "official":
        state, critic_metrics = jax.lax.cond(
            draws.critic_count(state.step, program) == draws.OFFICIAL_LONG,
            lambda s: _last_critic_metrics(_critic_steps(s, data, program, draws.OFFICIAL_LONG)),
            lambda s: _last_critic_metrics(_critic_steps(s, data, program)), state)
    else:
        state, critic_metrics = _last_critic_metrics(_critic_steps(state, data, program))
    state, generator_metrics = _generator_step(state, program)
    return state, {**critic_metrics, **generator_metrics}


#: One critic update (draws its own batch, noise and dropout keys from the state).
critic_step = program_jit(_critic_step)
#: n_critic critic updates under lax.scan, equal to n_critic calls of `critic_step`.
critic_steps = program_jit(_critic_steps)
#: One generator update.
generator_step = program_jit(_generator_step)
#: One generator iteration: `critic_steps` then `generator_step`. The training programs
#: (wgan_jax.train.programs) are built from it.
train_step = program_jit(_train_step)
