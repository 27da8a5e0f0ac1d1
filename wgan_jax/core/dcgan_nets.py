"""The WGAN authors' DCGAN generator and critic (martinarjovsky/WassersteinGAN, models/dcgan.py)
as Flax linen modules, at any power-of-two size from 16 px, with their initialisation."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from wgan_jax.config import Nets
from wgan_jax.core.layers import (ConvTranspose, dcgan_init, dcgan_scale_init, float32_out,
                                  normaliser, projected, with_label)


class DCGANGenerator(nn.Module):
    """The WGAN authors' DCGAN_G (models/dcgan.py, no extra layers), z (B, latent) -> images
    (B, S, S, C) in [-1, 1]: a 4x4 transposed convolution from the 1x1 noise to ngf/2 * S/4
    channels, then per level a stride-2 4x4 transposed convolution halving the width and
    doubling the size, each with BatchNorm and ReLU, until S/2; then one to C channels and tanh."""

    image_shape: tuple[int, int, int] = (64, 64, 3)
    ngf: int = 64
    bn_momentum: float = 0.9
    bn_eps: float = 1e-5
    dtype: jnp.dtype | None = None
    num_classes: int = 0  # > 0: conditional on a class label (`with_label`)

    @nn.compact
    def __call__(self, z: jnp.ndarray, train: bool, labels: jnp.ndarray | None = None) -> jnp.ndarray:
        z = with_label(z, labels, self.num_classes)
        size, _, out_channels = self.image_shape
        levels = size.bit_length() - 3  # doublings from 4 to size
        width = (self.ngf // 2) * 2 ** levels
        norm = dict(use_running_average=not train, momentum=self.bn_momentum, epsilon=self.bn_eps,
                    scale_init=dcgan_scale_init, dtype=self.dtype)
        x = ConvTranspose(width, 1, self.dtype)(z.reshape(z.shape[0], 1, 1, -1))
        x = nn.relu(nn.BatchNorm(**norm)(x))
        for _ in range(levels - 1):
            width //= 2
            x = nn.relu(nn.BatchNorm(**norm)(ConvTranspose(width, 2, self.dtype)(x)))
        x = ConvTranspose(out_channels, 2, self.dtype)(x)
        return float32_out(jnp.tanh(x), self.dtype)


class DCGANCritic(nn.Module):
    """The WGAN authors' DCGAN_D (no extra layers), images (B, S, S, C) -> scores (B, 1): a
    stride-2 4x4 convolution to ndf channels and LeakyReLU 0.2 (no normalisation), then per level
    one doubling the width and halving the size, with normalisation and LeakyReLU, until 4x4; then
    a 4x4 valid convolution to one score. No biases, as there."""

    ndf: int = 64
    bn_momentum: float = 0.9
    bn_eps: float = 1e-5
    norm: str = "batch"  # "batch" (DCGAN_D), "layer" or "none" (DCGAN_D_nobn)
    dtype: jnp.dtype | None = None
    num_classes: int = 0  # > 0: conditional, with a projection term (`projected`)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool, labels: jnp.ndarray | None = None) -> jnp.ndarray:
        batch_norm = dict(use_running_average=not train, momentum=self.bn_momentum,
                          epsilon=self.bn_eps, scale_init=dcgan_scale_init, dtype=self.dtype)
        conv = dict(kernel_size=(4, 4), use_bias=False, kernel_init=dcgan_init, dtype=self.dtype)
        x = nn.leaky_relu(nn.Conv(self.ndf, strides=2, padding=((1, 1), (1, 1)), **conv)(x), 0.2)
        width = self.ndf
        while x.shape[1] > 4:
            width *= 2
            x = nn.Conv(width, strides=2, padding=((1, 1), (1, 1)), **conv)(x)
            x = nn.leaky_relu(normaliser(self.norm, batch_norm, self.bn_eps, self.dtype)(x), 0.2)
        scores = nn.Conv(1, padding="VALID", **conv)(x).reshape(x.shape[0], 1)
        features = x.reshape(x.shape[0], -1)
        return float32_out(projected(self, scores, features, labels), self.dtype)


def dcgan_flops(nets: Nets) -> tuple[int, int]:
    """Multiply-adds of one image through the DCGAN generator and critic."""
    size, _, channels = nets.image_shape
    levels = size.bit_length() - 3
    width = (nets.ngf // 2) * 2 ** levels
    gen, side = nets.latent_dim * width * 16, 4
    for _ in range(levels - 1):  # a stride-2 4x4 transposed conv: 16 taps per input pixel
        gen, side, width = gen + side * side * 16 * width * (width // 2), 2 * side, width // 2
    gen += side * side * 16 * width * channels
    critic, side, width = (size // 2) ** 2 * 16 * channels * nets.ndf, size // 2, nets.ndf
    while side > 4:
        side //= 2
        critic, width = critic + side * side * 16 * width * 2 * width, 2 * width
    return gen, critic + 16 * width
