"""Differentiable augmentation for the critic (DiffAugment, Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"): the same random colour, translation and cutout
transforms applied to every batch the critic sees, real and generated, in the critic's update and
in the generator's, inside the jitted step. A critic trained on a few hundred or thousand
pictures otherwise memorises them; augmenting only the real ones would teach the generator the
augmentations. Every transform is built from elementwise arithmetic and gathers, so gradients
flow through it to the generator.

Images are in [-1, 1], (B, H, W, C). Each image draws its own parameters (`draw`); `apply`
transforms with given parameters, so tests can check each transform against NumPy. The
parameters follow DiffAugment's reference code: brightness + U(-0.5, 0.5), saturation x U(0, 2)
around the pixel's channel mean, contrast x U(0.5, 1.5) around the image's mean; translation by
up to 1/8 of each side, zero-filled; cutout of a square of half the side, at a random centre.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from wgan_jax.config import augment_policy


TRANSLATION_RATIO, CUTOUT_RATIO = 0.125, 0.5


def draw(key: jax.Array, shape: tuple[int, ...]) -> dict[str, jax.Array]:
    """Per-image random parameters for images of `shape` (B, H, W, C)."""
    count, height, width = shape[:3]
    keys = jax.random.split(key, 6)
    shift = (int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5))
    cut = (int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5))
    return {
        "brightness": jax.random.uniform(keys[0], (count,)) - 0.5,
        "saturation": jax.random.uniform(keys[1], (count,)) * 2.0,
        "contrast": jax.random.uniform(keys[2], (count,)) + 0.5,
        "shift": jnp.stack([jax.random.randint(keys[3], (count,), -shift[0], shift[0] + 1),
                            jax.random.randint(jax.random.fold_in(keys[3], 1), (count,),
                                               -shift[1], shift[1] + 1)], axis=1),
        "cutout": jnp.stack([jax.random.randint(keys[4], (count,), 0, height + 1 - cut[0] % 2),
                             jax.random.randint(keys[5], (count,), 0, width + 1 - cut[1] % 2)],
                            axis=1),
    }


def _color(x: jax.Array, p: dict) -> jax.Array:
    per_image = (slice(None), None, None, None)
    x = x + p["brightness"][per_image]
    mean = x.mean(axis=3, keepdims=True)
    x = (x - mean) * p["saturation"][per_image] + mean
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return (x - mean) * p["contrast"][per_image] + mean


def _translation(x: jax.Array, p: dict) -> jax.Array:
    """Each image moved by its (dy, dx), the uncovered border zero."""
    height, width = x.shape[1:3]
    pad_h, pad_w = int(height * TRANSLATION_RATIO + 0.5), int(width * TRANSLATION_RATIO + 0.5)
    padded = jnp.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))

    def one(image, shift):
        return jax.lax.dynamic_slice(image, (pad_h - shift[0], pad_w - shift[1], 0),
                                     (height, width, x.shape[3]))
    return jax.vmap(one)(padded, p["shift"])


def _cutout(x: jax.Array, p: dict) -> jax.Array:
    """Each image zeroed in a square of CUTOUT_RATIO of its sides around its centre."""
    height, width = x.shape[1:3]
    cut_h, cut_w = int(height * CUTOUT_RATIO + 0.5), int(width * CUTOUT_RATIO + 0.5)
    rows = jnp.arange(height)[None, :] - (p["cutout"][:, :1] - cut_h // 2)
    cols = jnp.arange(width)[None, :] - (p["cutout"][:, 1:] - cut_w // 2)
    inside = ((rows >= 0) & (rows < cut_h))[:, :, None] & ((cols >= 0) & (cols < cut_w))[:, None, :]
    return x * (~inside)[..., None].astype(x.dtype)


_APPLY = {"color": _color, "translation": _translation, "cutout": _cutout}


def apply(images: jax.Array, params: dict, policy: str) -> jax.Array:
    """`images` through the policy's transforms with the given per-image parameters."""
    for name in augment_policy(policy):
        images = _APPLY[name](images, params)
    return images


def augment(images: jax.Array, key: jax.Array, policy: str) -> jax.Array:
    """`images` through the policy's transforms, parameters drawn per image from `key`; the
    images themselves under policy "off"."""
    if policy == "off":
        return images
    return apply(images, draw(key, images.shape), policy)
