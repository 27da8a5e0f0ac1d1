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
import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax.config import Config

_kernel_init = nn.initializers.glorot_uniform()


# Nearest 2x upsampling then a 4-tap 'SAME' filter (padding 1 before, 2 after) is, per output
# phase, a 3-tap filter on the low-resolution input (padding 1 each side):
#   even outputs 2p:  W0 X[p-1] + (W1 + W2) X[p] + W3 X[p+1]
#   odd outputs 2p+1:            (W0 + W1) X[p] + (W2 + W3) X[p+1]
# _PHASE_TAPS[phase, offset, tap] holds those sums.
_PHASE_TAPS = np.array([[[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]],
                        [[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]], np.float32)


class UpsampleConv(nn.Module):
    """Conv(features, 4x4, SAME)(UpSampling2D(2)(x)), computed at the input's resolution.

    Same parameters (a 4x4 kernel and a bias) and the same function as the two layers it
    replaces, but the 2x2 output phases come from one 3x3 convolution with 4x the output channels
    followed by a depth-to-space: 36 taps per low-resolution pixel instead of 64, and no 4x larger
    intermediate. tests/test_models.py checks it against the literal upsample-then-conv.
    """

    features: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        batch, height, width, in_channels = x.shape
        kernel = self.param("kernel", _kernel_init, (4, 4, in_channels, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        taps = jnp.asarray(_PHASE_TAPS, kernel.dtype)
        # (3, 3, in, 2, 2, out): offsets (dy, dx), then output phases (a, b).
        phased = jnp.einsum("ayk,bxl,klio->yxiabo", taps, taps, kernel)
        phased = phased.reshape(3, 3, in_channels, 4 * self.features)
        dtype = self.dtype or x.dtype
        y = jax.lax.conv_general_dilated(x.astype(dtype), phased.astype(dtype), (1, 1),
                                         ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y.reshape(batch, height, width, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(batch, 2 * height, 2 * width, self.features) + bias.astype(dtype)


class Generator(nn.Module):
    """z (B, latent) -> images (B, H, W, C) in [-1, 1]."""

    image_shape: tuple[int, int, int] = (28, 28, 1)
    channels: tuple[int, ...] = (128, 64)
    bn_momentum: float = 0.8
    bn_eps: float = 1e-3
    dtype: jnp.dtype | None = None  # compute dtype (see the module docstring)

    @nn.compact
    def __call__(self, z: jnp.ndarray, train: bool) -> jnp.ndarray:
        height, width, out_channels = self.image_shape
        base_h, base_w = height // 4, width // 4
        norm = dict(use_running_average=not train, momentum=self.bn_momentum, epsilon=self.bn_eps,
                    dtype=self.dtype)
        x = nn.Dense(self.channels[0] * base_h * base_w, kernel_init=_kernel_init, dtype=self.dtype)(z)
        x = nn.relu(x).reshape(z.shape[0], base_h, base_w, self.channels[0])
        for width_ in self.channels:
            x = UpsampleConv(width_, dtype=self.dtype)(x)
            x = nn.relu(nn.BatchNorm(**norm)(x))
        x = nn.Conv(out_channels, (4, 4), padding="SAME", kernel_init=_kernel_init,
                    dtype=self.dtype)(x)
        return _float32_out(jnp.tanh(x), self.dtype)


class Critic(nn.Module):
    """images (B, H, W, C) -> scores (B, 1), linear: higher means 'more real'."""

    channels: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.25
    bn_momentum: float = 0.8
    bn_eps: float = 1e-3
    norm: str = "batch"  # "batch", "layer" (per sample over H, W, C) or "none"
    dtype: jnp.dtype | None = None  # compute dtype (see the module docstring)

    @nn.compact
    def __call__(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
        batch_norm = dict(use_running_average=not train, momentum=self.bn_momentum,
                          epsilon=self.bn_eps, dtype=self.dtype)
        normalise = {
            "batch": lambda: nn.BatchNorm(**batch_norm),
            "layer": lambda: nn.LayerNorm(epsilon=self.bn_eps, reduction_axes=(1, 2, 3),
                                          dtype=self.dtype),
            "none": lambda: (lambda y: y)}[self.norm]
        strides = (2, 2, 2, 1)
        for i, (width, stride) in enumerate(zip(self.channels, strides)):
            x = nn.Conv(width, (3, 3), strides=stride, padding="SAME", kernel_init=_kernel_init,
                        dtype=self.dtype)(x)
            if i == 1:
                # The seed's ZeroPadding2D(((0, 1), (0, 1))): 7x7 -> 8x8 on MNIST.
                x = jnp.pad(x, ((0, 0), (0, 1), (0, 1), (0, 0)))
            if i > 0:
                x = normalise()(x)
            x = nn.leaky_relu(x, 0.2)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        scores = nn.Dense(1, kernel_init=_kernel_init, dtype=self.dtype)(x.reshape(x.shape[0], -1))
        return _float32_out(scores, self.dtype)


def _float32_out(y: jnp.ndarray, dtype: jnp.dtype | None) -> jnp.ndarray:
    """A reduced-precision network's output back in float32; else unchanged."""
    return y if dtype is None else y.astype(jnp.float32)


def build(config: Config) -> tuple[Generator, Critic]:
    """The two networks a config describes."""
    common = dict(bn_momentum=config.bn_momentum, bn_eps=config.bn_eps,
                  dtype=None if config.compute_dtype == "float32" else jnp.dtype(config.compute_dtype))
    return (Generator(config.image_shape, config.gen_channels, **common),
            Critic(config.critic_channels, config.dropout, **common, norm=config.critic_norm))


def flops_per_iteration(config: Config) -> float:
    """Multiply-adds x 2 of one generator iteration (forward and backward counted as 3 forwards).

    Convolutions and dense layers only; used to estimate run time before a run starts.
    """
    height, width, out_channels = config.image_shape
    g0, g1 = config.gen_channels
    h4, w4 = height // 4, width // 4
    gen = 2 * (config.latent_dim * g0 * h4 * w4
               + (2 * h4) * (2 * w4) * 16 * g0 * g0
               + height * width * 16 * g0 * g1
               + height * width * 16 * g1 * out_channels)
    critic, h, w, c_in = 0, height, width, out_channels
    for i, (c_out, stride) in enumerate(zip(config.critic_channels, (2, 2, 2, 1))):
        h, w = -(-h // stride), -(-w // stride)
        critic += 2 * h * w * 9 * c_in * c_out
        if i == 1:
            h, w = h + 1, w + 1
        c_in = c_out
    critic += 2 * h * w * c_in
    batch = config.batch_size
    # Critic step: G forward, critic forward+backward on two batches. Generator step: G and
    # critic forward+backward.
    critic_step = batch * (gen + 3 * 2 * critic)
    generator_step = batch * 3 * (gen + critic)
    return config.n_critic * critic_step + generator_step
