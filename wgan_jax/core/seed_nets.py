"""The seed's generator and critic (Keras-GAN wgan.py) as Flax linen modules.

Kernels use Glorot-uniform initialisation and zero biases, as Keras does; BatchNorm uses Keras'
momentum semantics (Flax shares them) and epsilon. Convolutions use 'SAME' padding, which in XLA
pads the extra row/column at the end, as TensorFlow does.

`dtype` is the compute dtype (activations, matmuls, convolutions); None (the default) computes
in the dtype of the inputs and parameters, float32 in training (float64 in the float64 tests).
With bfloat16, parameters, BatchNorm statistics and reductions stay float32 (Flax's param_dtype
and float32 reductions) and both networks return float32, so losses, gradients and optimizer
states are float32 in that path too.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from wgan_jax.config import Nets
from wgan_jax.core.layers import (UpsampleConv, float32_out, kernel_init, normaliser, projected,
                                  with_label)


class Generator(nn.Module):
    """The seed's generator, z (B, latent) -> images (B, H, W, C) in [-1, 1]: a dense layer to
    (H, W) / 2^len(channels), then per width an UpsampleConv (x2) with BatchNorm and ReLU, then a
    4x4 convolution to C channels and tanh. The seed: channels (128, 64), 7x7 -> 28x28."""

    image_shape: tuple[int, int, int] = (28, 28, 1)
    channels: tuple[int, ...] = (128, 64)
    bn_momentum: float = 0.8
    bn_eps: float = 1e-3
    dtype: jnp.dtype | None = None  # compute dtype (see the module docstring)
    num_classes: int = 0  # > 0: conditional on a class label (`with_label`)

    @nn.compact
    def __call__(self, z: jnp.ndarray, train: bool, labels: jnp.ndarray | None = None) -> jnp.ndarray:
        z = with_label(z, labels, self.num_classes)
        height, width, out_channels = self.image_shape
        factor = 2 ** len(self.channels)
        base_h, base_w = height // factor, width // factor
        norm = dict(use_running_average=not train, momentum=self.bn_momentum, epsilon=self.bn_eps,
                    dtype=self.dtype)
        x = nn.Dense(self.channels[0] * base_h * base_w, kernel_init=kernel_init, dtype=self.dtype)(z)
        x = nn.relu(x).reshape(z.shape[0], base_h, base_w, self.channels[0])
        for width_ in self.channels:
            x = UpsampleConv(width_, dtype=self.dtype)(x)
            x = nn.relu(nn.BatchNorm(**norm)(x))
        x = nn.Conv(out_channels, (4, 4), padding="SAME", kernel_init=kernel_init,
                    dtype=self.dtype)(x)
        return float32_out(jnp.tanh(x), self.dtype)


def critic_strides(height: int, width: int, blocks: int) -> list[tuple[int, tuple[int, int]]]:
    """Each seed critic block's stride and the zero padding (bottom, right) after its
    convolution: a block halves the size while the larger side is above 4, and an odd side that
    the next block halves is padded by one, as the seed's ZeroPadding2D does on MNIST (28 -> 14
    -> 7, padded to 8 -> 4 -> 4: strides 2, 2, 2, 1, the padding after the second block)."""
    plan, sizes = [], [height, width]
    for i in range(blocks):
        stride = 2 if max(sizes) > 4 else 1
        sizes = [-(-s // stride) for s in sizes]
        next_halves = i + 1 < blocks and max(sizes) > 4
        pad = tuple(s % 2 if next_halves else 0 for s in sizes)
        sizes = [s + p for s, p in zip(sizes, pad)]
        plan.append((stride, pad))
    return plan


class Critic(nn.Module):
    """The seed's critic, images (B, H, W, C) -> scores (B, 1), linear: higher means 'more real'.
    Per width a 3x3 convolution (strides from the image size: `critic_strides`), normalisation
    after the first, LeakyReLU 0.2 and dropout; then a dense layer to one score."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.25
    bn_momentum: float = 0.8
    bn_eps: float = 1e-3
    norm: str = "batch"  # "batch", "layer" (per sample over H, W, C) or "none"
    dtype: jnp.dtype | None = None  # compute dtype (see the module docstring)
    num_classes: int = 0  # > 0: conditional, with a projection term (`projected`)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool, labels: jnp.ndarray | None = None) -> jnp.ndarray:
        batch_norm = dict(use_running_average=not train, momentum=self.bn_momentum,
                          epsilon=self.bn_eps, dtype=self.dtype)
        plan = critic_strides(x.shape[1], x.shape[2], len(self.channels))
        for i, (width, (stride, pad)) in enumerate(zip(self.channels, plan)):
            x = nn.Conv(width, (3, 3), strides=stride, padding="SAME", kernel_init=kernel_init,
                        dtype=self.dtype)(x)
            if any(pad):
                x = jnp.pad(x, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)))
            if i > 0:
                x = normaliser(self.norm, batch_norm, self.bn_eps, self.dtype)(x)
            x = nn.leaky_relu(x, 0.2)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        features = x.reshape(x.shape[0], -1)
        scores = nn.Dense(1, kernel_init=kernel_init, dtype=self.dtype)(features)
        return float32_out(projected(self, scores, features, labels), self.dtype)


def seed_flops(nets: Nets) -> tuple[int, int]:
    """Multiply-adds of one image through the seed generator and critic."""
    height, width, out_channels = nets.image_shape
    factor = 2 ** len(nets.gen_channels)
    h, w = height // factor, width // factor
    gen, c_in = nets.latent_dim * nets.gen_channels[0] * h * w, nets.gen_channels[0]
    for c_out in nets.gen_channels:  # an UpsampleConv: a 4x4 conv at the doubled size
        h, w = 2 * h, 2 * w
        gen, c_in = gen + h * w * 16 * c_in * c_out, c_out
    gen += height * width * 16 * c_in * out_channels
    critic, h, w, c_in = 0, height, width, out_channels
    for c_out, (stride, pad) in zip(nets.critic_channels,
                                    critic_strides(height, width, len(nets.critic_channels))):
        h, w = -(-h // stride), -(-w // stride)
        critic += h * w * 9 * c_in * c_out
        h, w, c_in = h + pad[0], w + pad[1], c_out
    return gen, critic + h * w * c_in
