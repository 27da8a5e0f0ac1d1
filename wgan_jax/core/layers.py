"""The layers both network families share: the seed's upsampling convolution, PyTorch's
transposed convolution, the normalisations, and the conditioning (a label embedding joined to
the noise; the critic's projection), with the initialisation and float32 output they use."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


kernel_init = nn.initializers.glorot_uniform()


# Nearest 2x upsampling then a 4-tap 'SAME' filter (padding 1 before, 2 after) is, per output
# phase, a 3-tap filter on the low-resolution input (padding 1 each side):
#   even outputs 2p:  W0 X[p-1] + (W1 + W2) X[p] + W3 X[p+1]
#   odd outputs 2p+1:            (W0 + W1) X[p] + (W2 + W3) X[p+1]
# PHASE_TAPS[phase, offset, tap] holds those sums.
PHASE_TAPS = np.array([[[1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 1]],
                        [[0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]]], np.float32)


class UpsampleConv(nn.Module):
    """Conv(features, 4x4, SAME)(UpSampling2D(2)(x)), computed at the input's resolution.

    Same parameters (a 4x4 kernel and a bias) and the same function as the two layers it
    replaces, but the 2x2 output phases come from one 3x3 convolution with 4x the output channels
    followed by a depth-to-space: 36 taps per low-resolution pixel instead of 64, and no 4x larger
    intermediate. tests/core/test_models.py checks it against the literal upsample-then-conv.
    """

    features: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        batch, height, width, in_channels = x.shape
        kernel = self.param("kernel", kernel_init, (4, 4, in_channels, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        taps = jnp.asarray(PHASE_TAPS, kernel.dtype)
        # (3, 3, in, 2, 2, out): offsets (dy, dx), then output phases (a, b).
        phased = jnp.einsum("ayk,bxl,klio->yxiabo", taps, taps, kernel)
        phased = phased.reshape(3, 3, in_channels, 4 * self.features)
        dtype = self.dtype or x.dtype
        y = jax.lax.conv_general_dilated(x.astype(dtype), phased.astype(dtype), (1, 1),
                                         ((1, 1), (1, 1)), dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y.reshape(batch, height, width, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(batch, 2 * height, 2 * width, self.features) + bias.astype(dtype)


def normaliser(norm: str, batch_norm: dict, epsilon: float, dtype):
    """A fresh normalisation layer of kind `norm` ("batch", "layer" or "none")."""
    if norm == "batch":
        return nn.BatchNorm(**batch_norm)
    if norm == "layer":
        return nn.LayerNorm(epsilon=epsilon, reduction_axes=(1, 2, 3), dtype=dtype)
    return lambda y: y


# The DCGAN networks' initialisation in the authors' code: weights N(0, 0.02), BatchNorm scale
# N(1, 0.02), BatchNorm shift 0.
dcgan_init = nn.initializers.normal(0.02)


def dcgan_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


# PyTorch's ConvTranspose2d(kernel 4, stride 2, padding 1) puts input pixel i's tap k at output
# 2i - 1 + k, so output phase a of pixel i (output 2i + a) reads input i + dy through tap k:
#   a = 0:  dy = -1 via k = 3,  dy = 0 via k = 1
#   a = 1:  dy =  0 via k = 2,  dy = +1 via k = 0
# TRANSPOSED_TAPS[a, dy + 1, k] holds those pairs.
TRANSPOSED_TAPS = np.zeros((2, 3, 4), np.float32)
TRANSPOSED_TAPS[0, 0, 3] = TRANSPOSED_TAPS[0, 1, 1] = 1
TRANSPOSED_TAPS[1, 1, 2] = TRANSPOSED_TAPS[1, 2, 0] = 1


class ConvTranspose(nn.Module):
    """PyTorch's ConvTranspose2d with a 4x4 kernel and no bias, as the DCGAN generator uses it:
    stride 1 without padding (1x1 noise -> 4x4, a dense layer) or stride 2 with padding 1 (x2).

    The kernel is kept as Flax's transposed kernel, (4, 4, features, in); the stride-2 case is
    computed at the input's resolution, as one 3x3 convolution giving the four output phases
    (`TRANSPOSED_TAPS`) and a depth-to-space, which XLA runs several times faster than
    lax.conv_transpose on CPU (benchmarks/NOTES.md), and GPUs too (jax#23783).
    tests/core/test_models.py checks it against ConvTranspose2d's definition written out in NumPy.
    """

    features: int
    stride: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        batch, height, width, in_channels = x.shape
        kernel = self.param("kernel", dcgan_init, (4, 4, self.features, in_channels))
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        if self.stride == 1:  # a 1x1 input: each output pixel is its own tap
            return jnp.einsum("bhwc,yxoc->byxo", x, kernel)
        taps = jnp.asarray(TRANSPOSED_TAPS, dtype)
        phased = jnp.einsum("ayk,bxl,kloc->yxcabo", taps, taps, kernel)
        phased = phased.reshape(3, 3, in_channels, 4 * self.features)
        y = jax.lax.conv_general_dilated(x, phased, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y.reshape(batch, height, width, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(batch, 2 * height, 2 * width, self.features)


def with_label(z: jnp.ndarray, labels: jnp.ndarray | None, num_classes: int) -> jnp.ndarray:
    """A conditional generator's input: the noise joined to a learned embedding of the label,
    as long as the noise (cGAN, Mirza and Osindero 2014); the noise itself when unconditional.
    The embedding starts N(0, 1), as loud as the noise beside it (PyTorch's nn.Embedding
    default): flax's default, 0.1 here, left the label a hundredth of the first layer's input
    variance, and RMSprop's steps of about lr did not grow it (docs/quality.md)."""
    if not num_classes:
        return z
    embedding = nn.Embed(num_classes, z.shape[-1], name="label_embedding",
                         embedding_init=nn.initializers.normal(stddev=1.0))(labels)
    return jnp.concatenate([z, embedding.astype(z.dtype)], axis=-1)


def projected(critic: nn.Module, scores: jnp.ndarray, features: jnp.ndarray,
              labels: jnp.ndarray | None) -> jnp.ndarray:
    """A conditional critic's scores: the unconditional score plus the projection term
    <embed(y) - mean_c embed(c), features(x)> of Miyato and Koyama (2018), its embedding starting
    at zero (the critic starts unconditional) and clipped with every other critic weight.
    Unconditional: the scores unchanged. The features are sown as intermediates (tests read them).

    Centred because of the clip: uncentred, every class's embedding also learned the real-vs-fake
    direction the unconditional score already holds, which filled the clip range (a run's
    embedding: mean over classes 0.089 of the bound 0.1, correlation 0.97 with the score's
    kernel, class-specific spread 0.015) and left the label almost no say (docs/quality.md)."""
    if not critic.num_classes:
        return scores
    critic.sow("intermediates", "features", features)
    embed = nn.Embed(critic.num_classes, features.shape[-1], name="projection",
                     embedding_init=nn.initializers.zeros_init())
    embedding = embed(labels) - jnp.mean(embed(jnp.arange(critic.num_classes)), axis=0)
    return scores + jnp.sum(embedding.astype(features.dtype) * features, axis=-1, keepdims=True)


def float32_out(y: jnp.ndarray, dtype: jnp.dtype | None) -> jnp.ndarray:
    """A reduced-precision network's output back in float32; else unchanged."""
    return y if dtype is None else y.astype(jnp.float32)
