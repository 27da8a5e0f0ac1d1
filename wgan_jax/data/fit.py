"""Fitting pictures to what the networks take: one channel count, transparency composited onto a
background, and one square size (the shorter side resized, antialiased, then a centre crop, as
the WGAN authors' code does with torchvision's Resize and CenterCrop)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageColor

from wgan_jax.errors import UserError

# Pillow modes that hold no colour: their pictures default to one channel.
GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
# Grey modes wider than 8 bits.
WIDE_GREY = ("I", "I;16", "I;16B", "I;16L", "F")


def background_rgb(name: str) -> tuple[int, int, int]:
    """A colour name or #rrggbb as an RGB triple; a one-line error for anything else."""
    try:
        return ImageColor.getrgb(name)[:3]
    except ValueError:
        raise UserError(f"--background {name!r}: not a colour (a name such as white or black, or "
                        f"#rrggbb)") from None


def flatten(picture: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """The picture in mode "L" (channels 1) or "RGB" (channels 3), any transparency composited
    onto `background`."""
    if picture.mode in WIDE_GREY:  # 16-bit PNG grey (0..65535) or float grey (0..255): 8 bits
        values = np.asarray(picture, np.float64) / (1.0 if picture.mode == "F" else 257.0)
        picture = Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), "L")
    if picture.mode == "P" and "transparency" in picture.info:
        picture = picture.convert("RGBA")
    if picture.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = picture.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        picture = Image.alpha_composite(canvas, rgba)
    return picture.convert("L" if channels == 1 else "RGB")


def resize_crop(picture: Image.Image, size: int) -> Image.Image:
    """The shorter side resized to `size` (Lanczos: antialiased when shrinking), then the centre
    `size` x `size` square."""
    width, height = picture.size
    if (width, height) == (size, size):
        return picture
    scale = size / min(width, height)
    new = (max(size, round(width * scale)), max(size, round(height * scale)))
    picture = picture.resize(new, Image.Resampling.LANCZOS)
    left, top = (new[0] - size) // 2, (new[1] - size) // 2
    return picture.crop((left, top, left + size, top + size))


def fit(picture: Image.Image, size: int, channels: int,
        background: tuple[int, int, int]) -> np.ndarray:
    """The picture as a uint8 array (size, size, channels); size 0 keeps its own size."""
    picture = flatten(picture, channels, background)
    if size:
        picture = resize_crop(picture, size)
    array = np.asarray(picture, np.uint8)
    return array[..., None] if array.ndim == 2 else array


def fit_array(images: np.ndarray, size: int, channels: int,
              background: tuple[int, int, int]) -> np.ndarray:
    """uint8 images (N, H, W, C) fitted like pictures read from files; unchanged when they
    already have that size and channel count."""
    _, height, width, have = images.shape
    channels = channels or (1 if have == 1 else 3)
    if (size == 0 or height == width == size) and have == channels:
        return images
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[have]
    return np.stack([fit(Image.fromarray(image[..., 0] if have == 1 else image, mode), size,
                         channels, background) for image in images])
