"""The networks a nets section describes (`build`: the seed's, wgan_jax.core.seed_nets, or the
authors' DCGAN ones, wgan_jax.core.dcgan_nets) and their cost in FLOPs."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from wgan_jax.config import Config, Nets, Program
from wgan_jax.core.dcgan_nets import DCGANCritic, DCGANGenerator, dcgan_flops
from wgan_jax.core.seed_nets import Critic, Generator, seed_flops


def build(nets: Nets) -> tuple[nn.Module, nn.Module]:
    """The generator and the critic `nets` describes."""
    common = dict(bn_momentum=nets.bn_momentum, bn_eps=nets.bn_eps,
                  dtype=None if nets.compute_dtype == "float32" else jnp.dtype(nets.compute_dtype),
                  num_classes=nets.num_classes if nets.conditional else 0)
    if nets.arch == "dcgan":
        return (DCGANGenerator(nets.image_shape, nets.ngf, **common),
                DCGANCritic(nets.ndf, **common, norm=nets.critic_norm))
    return (Generator(nets.image_shape, nets.gen_channels, **common),
            Critic(nets.critic_channels, nets.dropout, **common, norm=nets.critic_norm))


def forward_macs(nets: Nets) -> tuple[int, int]:
    """Multiply-adds of one image through the generator and through the critic."""
    return (dcgan_flops if nets.arch == "dcgan" else seed_flops)(nets)


def flops_per_iteration(config: Config | Program, critic_updates: float | None = None) -> float:
    """Multiply-adds x 2 of one generator iteration (forward and backward counted as 3 forwards)
    with `critic_updates` critic updates (default: n_critic).

    Convolutions and dense layers only; used to estimate run time before a run starts.
    """
    gen, critic = (2 * macs for macs in forward_macs(config.nets))
    batch = config.algorithm.batch_size
    # Critic step: G forward, critic forward+backward on two batches. Generator step: G and
    # critic forward+backward.
    critic_step = batch * (gen + 3 * 2 * critic)
    generator_step = batch * 3 * (gen + critic)
    return (critic_updates or config.algorithm.n_critic) * critic_step + generator_step
