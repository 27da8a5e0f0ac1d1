"""Drawing images from a generator: its variables (the averaged generator's where the run keeps
one), balanced labels for a conditional one, and the compiled `generate`, `draw` and
`variables_of`."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from wgan_jax.config import Config, Program
from wgan_jax.core import models
from wgan_jax.core.compiled import program_jit
from wgan_jax.core.state import BN_STATS, TrainState, stream


# Latent vectors whose batch statistics become the averaged generator's BatchNorm statistics
# under ema_stats "recomputed".
RECOMPUTE_SAMPLES = 1024


def generator_variables(state: TrainState, program: Config | Program, averaged: bool = True
                        ) -> dict:
    """The variables images are drawn with: the averaged generator's when averaging.ema is on and
    `averaged`, else the trained generator's. Under ema_stats "recomputed" the averaged weights
    get the batch statistics of RECOMPUTE_SAMPLES latent vectors from the run's own fixed
    stream, so the same weights always get the same statistics."""
    if not (program.averaging.ema and averaged):
        return state.gen.variables
    if program.averaging.ema_stats == "averaged":
        return state.ema
    # Momentum 0 makes the "running" statistics after one training-mode pass the batch's own.
    generator, _ = models.build(dataclasses.replace(program.nets, bn_momentum=0.0))
    z = jax.random.normal(stream(state.key, BN_STATS), (RECOMPUTE_SAMPLES, program.nets.latent_dim))
    _, updated = generator.apply(state.ema, z, train=True, labels=balanced_labels(
        RECOMPUTE_SAMPLES, program), mutable=["batch_stats"])
    return {"params": state.ema["params"], "batch_stats": updated["batch_stats"]}


def balanced_labels(count: int, program: Config | Program) -> jax.Array | None:
    """0, 1, ..., num_classes - 1, 0, 1, ... (`count` of them) for a conditional run: the labels
    of its sample grids and evaluations; None when unconditional."""
    return jnp.arange(count) % program.nets.num_classes if program.nets.conditional else None


def _draw(variables: dict, z: jax.Array, program: Config | Program, labels: jax.Array | None = None
          ) -> jax.Array:
    generator, _ = models.build(program.nets)
    return generator.apply(variables, z, train=False, labels=labels)


def _generate(state: TrainState, z: jax.Array, program: Config | Program, averaged: bool = True,
              labels: jax.Array | None = None) -> jax.Array:
    return _draw(generator_variables(state, program, averaged), z, program, labels)


#: Images in [-1, 1] from latent vectors z (B, latent_dim) (and, conditional, labels (B,)),
#: BatchNorm in inference mode; the averaged generator's when program.averaging.ema is on, unless
#: averaged=False.
generate = program_jit(_generate, ("program", "averaged"))
#: Images in [-1, 1] from generator variables {"params", "batch_stats"} (`generator_variables`,
#: or a shipped generator's, wgan_jax.pretrained), latent vectors z (B, latent_dim) and, for a
#: conditional generator, labels (B,).
draw = program_jit(_draw)
#: `generator_variables`, compiled (the recomputed statistics are a generator pass).
variables_of = program_jit(generator_variables, ("program", "averaged"))
