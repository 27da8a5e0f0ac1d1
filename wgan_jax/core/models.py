"""The networks a config describes (`build`: the seed's, wgan_jax.core.seed_nets, or the WGAN
authors' DCGAN ones, wgan_jax.core.dcgan_nets) and their cost in FLOPs."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from wgan_jax.config import Config
from wgan_jax.core.dcgan_nets import DCGANCritic, DCGANGenerator, dcgan_flops
from wgan_jax.core.seed_nets import Critic, Generator, seed_flops


def build(config: Config) -> tuple[nn.Module, nn.Module]:
    """The two networks a config describes."""
    common = dict(bn_momentum=config.bn_momentum, bn_eps=config.bn_eps,
                  dtype=None if config.compute_dtype == "float32" else jnp.dtype(config.compute_dtype),
                  num_classes=config.num_classes if config.conditional else 0)
    if config.arch == "dcgan":
        return (DCGANGenerator(config.image_shape, config.ngf, **common),
                DCGANCritic(config.ndf, **common, norm=config.critic_norm))
    return (Generator(config.image_shape, config.gen_channels, **common),
            Critic(config.critic_channels, config.dropout, **common, norm=config.critic_norm))


def forward_macs(config: Config) -> tuple[int, int]:
    """Multiply-adds of one image through the generator and through the critic."""
    return (dcgan_flops if config.arch == "dcgan" else seed_flops)(config)


def flops_per_iteration(config: Config, critic_updates: float | None = None) -> float:
    """Multiply-adds x 2 of one generator iteration (forward and backward counted as 3 forwards)
    with `critic_updates` critic updates (default: n_critic).

    Convolutions and dense layers only; used to estimate run time before a run starts.
    """
    gen, critic = (2 * macs for macs in forward_macs(config))
    batch = config.batch_size
    # Critic step: G forward, critic forward+backward on two batches. Generator step: G and
    # critic forward+backward.
    critic_step = batch * (gen + 3 * 2 * critic)
    generator_step = batch * 3 * (gen + critic)
    return (critic_updates or config.n_critic) * critic_step + generator_step
