"""Images from a trained generator: a run's checkpoint or a shipped one.

    python -m wgan_jax.cli.sample WORKDIR [--step N] [--run I] --n 64 --out samples.png
    python -m wgan_jax.cli.sample --pretrained mnist --n 1000 --format npz --out digits.npz
    python -m wgan_jax.cli.sample --pretrained mnist --interpolate 8 --out walk.png

(also installed as `wgan-jax-sample`). A run's generator is its averaged one when the run kept an
average, as its sample grids and evaluations are. The latent vectors come from `--seed` alone, so
the same seed gives the same images.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax import terminal
from wgan_jax.ckpt.reading import generator_variables, read_run
from wgan_jax.config import Config, Program
from wgan_jax.errors import UserError, write_failed
from wgan_jax.eval import batches, viz


FORMATS = ("grid", "png-dir", "npz")
# The file extensions a grid is written as (Pillow through matplotlib).
GRID_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_OUT = {"grid": "samples.png", "png-dir": "samples", "npz": "samples.npz"}
MAX_IMAGES = 100_000  # 78 MB of uint8 MNIST; a typo's extra zeros should not fill the disk
INTERPOLATION_STEPS = 10  # images per interpolation row, end points included
GENERATE_BATCH = 1000  # images per generator call
PROGRESS_FROM = 5000  # images from which drawing shows a progress bar (seconds on a CPU)


def from_run(workdir: str | Path, step: int | str | None = None, run: int | None = None
             ) -> tuple[Program, dict]:
    """The config and generator variables of a run's checkpoint (`step`: an iteration, "best",
    else the latest); in a folder of batched runs, run `run`'s."""
    config, state, _ = read_run(Path(workdir), step, run)
    return config.program(), generator_variables(config, state)


def latents(config: Config, count: int, seed: int) -> jax.Array:
    """`count` latent vectors N(0, 1), a function of `seed` alone."""
    return jax.random.normal(jax.random.PRNGKey(seed), (count, config.nets.latent_dim))


def slerp(z0: jax.Array, z1: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between latent vectors z0 and z1 (D,) at fractions t (T,): the
    path keeps near the shell where N(0, I) samples lie, where a straight line cuts inside it.
    Falls back to the straight line when the two are (nearly) parallel."""
    cos = jnp.dot(z0, z1) / (jnp.linalg.norm(z0) * jnp.linalg.norm(z1))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    t = t[:, None]
    spherical = (jnp.sin((1 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / jnp.sin(omega)
    return jnp.where(jnp.sin(omega) > 1e-6, spherical, (1 - t) * z0 + t * z1)


def interpolations(config: Config, rows: int, seed: int, count: int = INTERPOLATION_STEPS
                   ) -> jax.Array:
    """`rows` interpolations of `count` latent vectors each, between random end points, as one
    (rows * count, latent) array, row by row."""
    ends = latents(config, 2 * rows, seed)
    t = jnp.linspace(0.0, 1.0, count)
    return jnp.concatenate([slerp(ends[2 * r], ends[2 * r + 1], t) for r in range(rows)])


def draw(variables: dict, config: Config, z: jax.Array, labels: np.ndarray | None = None
         ) -> np.ndarray:
    """Images in [-1, 1] for latent vectors z (and a conditional generator's labels), in
    batches of GENERATE_BATCH (bounded memory); a progress bar with ETA past PROGRESS_FROM."""
    if len(z) < PROGRESS_FROM:
        return np.asarray(batches.generate(variables, config, z, labels, GENERATE_BATCH))
    with terminal.Phases(terminal.console()) as phases:
        advance = phases.track(f"generating {len(z)} images", len(z))
        return np.asarray(batches.generate(variables, config, z, labels, GENERATE_BATCH, advance))


def parse_label(text: str | None, config: Config) -> int | str | None:
    """--label as a class index, "all", or None; one-line errors for the wrong generator or a
    class out of range."""
    if text is None:
        return None
    if not config.nets.conditional:
        raise UserError(f"--label {text}: this generator is not conditional (train one with "
                        f"--conditional)")
    classes = config.nets.num_classes
    if text == "all":
        return text
    try:
        label = int(text)
    except ValueError:
        raise UserError(f"--label must be a class 0..{classes - 1} or all, got {text!r}") from None
    if not 0 <= label < classes:
        raise UserError(f"--label {label} is out of range: this generator draws classes "
                        f"0..{classes - 1}")
    return label


def layout(config: Config, n: int, label: int | str | None) -> tuple[np.ndarray | None, int, int]:
    """The labels of n images (None for an unconditional generator) and the grid's rows and
    columns: a row per class for "all", the classes in turn when no label is given."""
    if label == "all":
        cols = max(1, n // config.nets.num_classes)
        return np.repeat(np.arange(config.nets.num_classes), cols), config.nets.num_classes, cols
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    if not config.nets.conditional:
        return None, rows, cols
    labels = np.full(n, label) if label is not None else np.arange(n) % config.nets.num_classes
    return labels, rows, cols


def write(images: np.ndarray, out: Path, fmt: str, rows: int, cols: int,
          labels: np.ndarray | None = None) -> None:
    """Writes images (N, H, W, C) in [-1, 1] as a grid PNG, a folder of PNGs or an npz (with
    the labels a conditional generator drew them for)."""
    try:
        if fmt == "grid":
            viz.save_grid(images, out, rows=rows, cols=cols)
        elif fmt == "png-dir":
            out.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                viz.save_image(image, out / f"{i:06d}.png")
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            extra = {} if labels is None else {"labels": np.asarray(labels, np.int32)}
            np.savez_compressed(out, images=viz.to_uint8(images), **extra)
    except OSError as err:
        raise write_failed(str(out), err) from None


def implied_format(out: str) -> str | None:
    """The format an output path implies: .npz an array file, a picture extension a grid, an
    existing folder, a trailing slash or no extension at all a folder of PNGs; None for any
    other extension."""
    path = Path(out)
    if out.endswith(("/", os.sep)) or path.is_dir() or not path.suffix:
        return "png-dir"
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    return "grid" if suffix in GRID_EXTENSIONS else None


def output(fmt: str | None, out: str | None) -> tuple[str, Path]:
    """The format and path to write: --format and --out, each completing the other, or a
    one-line error where they disagree or the extension says nothing."""
    if out is None:
        fmt = fmt or "grid"
        return fmt, Path(DEFAULT_OUT[fmt])
    implied = implied_format(out)
    if implied is None and fmt in (None, "grid", "npz"):
        wanted = {None: f"{'/'.join(GRID_EXTENSIONS)} (a grid), .npz, or a folder",
                  "grid": "/".join(GRID_EXTENSIONS), "npz": ".npz"}[fmt]
        raise UserError(f"--out {out}: cannot write {fmt or 'anything'} as "
                        f"{Path(out).suffix!r}; use {wanted}")
    if fmt is not None and implied is not None and fmt != implied:
        names = {"grid": "a grid picture", "npz": "an npz file", "png-dir": "a folder"}
        raise UserError(f"--format {fmt} does not fit --out {out}, which names {names[implied]}")
    return fmt or implied, Path(out)


if __name__ == "__main__":  # the command moved with the package layout (docs/architecture.md)
    sys.exit("error: the command is python -m wgan_jax.cli.sample now")
