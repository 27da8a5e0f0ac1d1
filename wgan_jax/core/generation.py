"""Drawing images from a generator: its variables (the averaged generator's where the run keeps
one), balanced labels for a conditional one, and the compiled `generate`, `draw` and
`variables_of`."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from wgan_jax.config import Config
from wgan_jax.core import models
from wgan_jax.core.compiled import config_jit
from wgan_jax.core.state import BN_STATS, TrainState, stream


# Latent vectors whose batch statistics become the averaged generator's BatchNorm statistics
# under ema_stats "recomputed".
RECOMPUTE_SAMPLES = 1024


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


#: Images in [-1, 1] from latent vectors z (B, latent_dim) (and, conditional, labels (B,)),
#: BatchNorm in inference mode; the averaged generator's when config.ema is on, unless
#: averaged=False.
generate = config_jit(_generate, ("config", "averaged"))
#: Images in [-1, 1] from generator variables {"params", "batch_stats"} (`generator_variables`,
#: or a shipped generator's, wgan_jax.pretrained), latent vectors z (B, latent_dim) and, for a
#: conditional generator, labels (B,).
draw = config_jit(_draw)
#: `generator_variables`, compiled (the recomputed statistics are a generator pass).
variables_of = config_jit(generator_variables, ("config", "averaged"))
