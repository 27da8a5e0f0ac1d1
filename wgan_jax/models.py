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
        x = nn.Dense(self.channels[0] * base_h * base_w, kernel_init=_kernel_init, dtype=self.dtype)(z)
        x = nn.relu(x).reshape(z.shape[0], base_h, base_w, self.channels[0])
        for width_ in self.channels:
            x = UpsampleConv(width_, dtype=self.dtype)(x)
            x = nn.relu(nn.BatchNorm(**norm)(x))
        x = nn.Conv(out_channels, (4, 4), padding="SAME", kernel_init=_kernel_init,
                    dtype=self.dtype)(x)
        return _float32_out(jnp.tanh(x), self.dtype)


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


def _normaliser(norm: str, batch_norm: dict, epsilon: float, dtype):
    """A fresh normalisation layer of kind `norm` ("batch", "layer" or "none")."""
    if norm == "batch":
        return nn.BatchNorm(**batch_norm)
    if norm == "layer":
        return nn.LayerNorm(epsilon=epsilon, reduction_axes=(1, 2, 3), dtype=dtype)
    return lambda y: y


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
            x = nn.Conv(width, (3, 3), strides=stride, padding="SAME", kernel_init=_kernel_init,
                        dtype=self.dtype)(x)
            if any(pad):
                x = jnp.pad(x, ((0, 0), (0, pad[0]), (0, pad[1]), (0, 0)))
            if i > 0:
                x = _normaliser(self.norm, batch_norm, self.bn_eps, self.dtype)(x)
            x = nn.leaky_relu(x, 0.2)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        features = x.reshape(x.shape[0], -1)
        scores = nn.Dense(1, kernel_init=_kernel_init, dtype=self.dtype)(features)
        return _float32_out(projected(self, scores, features, labels), self.dtype)


# The DCGAN networks' initialisation in the authors' code: weights N(0, 0.02), BatchNorm scale
# N(1, 0.02), BatchNorm shift 0.
_dcgan_init = nn.initializers.normal(0.02)


def _dcgan_scale_init(key, shape, dtype=jnp.float32):
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


# PyTorch's ConvTranspose2d(kernel 4, stride 2, padding 1) puts input pixel i's tap k at output
# 2i - 1 + k, so output phase a of pixel i (output 2i + a) reads input i + dy through tap k:
#   a = 0:  dy = -1 via k = 3,  dy = 0 via k = 1
#   a = 1:  dy =  0 via k = 2,  dy = +1 via k = 0
# _TRANSPOSED_TAPS[a, dy + 1, k] holds those pairs.
_TRANSPOSED_TAPS = np.zeros((2, 3, 4), np.float32)
_TRANSPOSED_TAPS[0, 0, 3] = _TRANSPOSED_TAPS[0, 1, 1] = 1
_TRANSPOSED_TAPS[1, 1, 2] = _TRANSPOSED_TAPS[1, 2, 0] = 1


class ConvTranspose(nn.Module):
    """PyTorch's ConvTranspose2d with a 4x4 kernel and no bias, as the DCGAN generator uses it:
    stride 1 without padding (1x1 noise -> 4x4, a dense layer) or stride 2 with padding 1 (x2).

    The kernel is kept as Flax's transposed kernel, (4, 4, features, in); the stride-2 case is
    computed at the input's resolution, as one 3x3 convolution giving the four output phases
    (`_TRANSPOSED_TAPS`) and a depth-to-space, which XLA runs several times faster than
    lax.conv_transpose on CPU (benchmarks/NOTES.md), and GPUs too (jax#23783).
    tests/test_models.py checks it against ConvTranspose2d's definition written out in NumPy.
    """

    features: int
    stride: int
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        batch, height, width, in_channels = x.shape
        kernel = self.param("kernel", _dcgan_init, (4, 4, self.features, in_channels))
        dtype = self.dtype or x.dtype
        x, kernel = x.astype(dtype), kernel.astype(dtype)
        if self.stride == 1:  # a 1x1 input: each output pixel is its own tap
            return jnp.einsum("bhwc,yxoc->byxo", x, kernel)
        taps = jnp.asarray(_TRANSPOSED_TAPS, dtype)
        phased = jnp.einsum("ayk,bxl,kloc->yxcabo", taps, taps, kernel)
        phased = phased.reshape(3, 3, in_channels, 4 * self.features)
        y = jax.lax.conv_general_dilated(x, phased, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = y.reshape(batch, height, width, 2, 2, self.features).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(batch, 2 * height, 2 * width, self.features)


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
                    scale_init=_dcgan_scale_init, dtype=self.dtype)
        x = ConvTranspose(width, 1, self.dtype)(z.reshape(z.shape[0], 1, 1, -1))
        x = nn.relu(nn.BatchNorm(**norm)(x))
        for _ in range(levels - 1):
            width //= 2
            x = nn.relu(nn.BatchNorm(**norm)(ConvTranspose(width, 2, self.dtype)(x)))
        x = ConvTranspose(out_channels, 2, self.dtype)(x)
        return _float32_out(jnp.tanh(x), self.dtype)


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
                          epsilon=self.bn_eps, scale_init=_dcgan_scale_init, dtype=self.dtype)
        conv = dict(kernel_size=(4, 4), use_bias=False, kernel_init=_dcgan_init, dtype=self.dtype)
        x = nn.leaky_relu(nn.Conv(self.ndf, strides=2, padding=((1, 1), (1, 1)), **conv)(x), 0.2)
        width = self.ndf
        while x.shape[1] > 4:
            width *= 2
            x = nn.Conv(width, strides=2, padding=((1, 1), (1, 1)), **conv)(x)
            x = nn.leaky_relu(_normaliser(self.norm, batch_norm, self.bn_eps, self.dtype)(x), 0.2)
        scores = nn.Conv(1, padding="VALID", **conv)(x).reshape(x.shape[0], 1)
        features = x.reshape(x.shape[0], -1)
        return _float32_out(projected(self, scores, features, labels), self.dtype)


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


def _float32_out(y: jnp.ndarray, dtype: jnp.dtype | None) -> jnp.ndarray:
    """A reduced-precision network's output back in float32; else unchanged."""
    return y if dtype is None else y.astype(jnp.float32)


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


def _seed_flops(config: Config) -> tuple[int, int]:
    """Multiply-adds of one image through the seed generator and critic."""
    height, width, out_channels = config.image_shape
    factor = 2 ** len(config.gen_channels)
    h, w = height // factor, width // factor
    gen, c_in = config.latent_dim * config.gen_channels[0] * h * w, config.gen_channels[0]
    for c_out in config.gen_channels:  # an UpsampleConv: a 4x4 conv at the doubled size
        h, w = 2 * h, 2 * w
        gen, c_in = gen + h * w * 16 * c_in * c_out, c_out
    gen += height * width * 16 * c_in * out_channels
    critic, h, w, c_in = 0, height, width, out_channels
    for c_out, (stride, pad) in zip(config.critic_channels,
                                    critic_strides(height, width, len(config.critic_channels))):
        h, w = -(-h // stride), -(-w // stride)
        critic += h * w * 9 * c_in * c_out
        h, w, c_in = h + pad[0], w + pad[1], c_out
    return gen, critic + h * w * c_in


def _dcgan_flops(config: Config) -> tuple[int, int]:
    """Multiply-adds of one image through the DCGAN generator and critic."""
    size, _, channels = config.image_shape
    levels = size.bit_length() - 3
    width = (config.ngf // 2) * 2 ** levels
    gen, side = config.latent_dim * width * 16, 4
    for _ in range(levels - 1):  # a stride-2 4x4 transposed conv: 16 taps per input pixel
        gen, side, width = gen + side * side * 16 * width * (width // 2), 2 * side, width // 2
    gen += side * side * 16 * width * channels
    critic, side, width = (size // 2) ** 2 * 16 * channels * config.ndf, size // 2, config.ndf
    while side > 4:
        side //= 2
        critic, width = critic + side * side * 16 * width * 2 * width, 2 * width
    return gen, critic + 16 * width


def forward_macs(config: Config) -> tuple[int, int]:
    """Multiply-adds of one image through the generator and through the critic."""
    return (_dcgan_flops if config.arch == "dcgan" else _seed_flops)(config)


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
