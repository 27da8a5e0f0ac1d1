"""Pictures of a run: sample grids and loss curves (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def grid(images: np.ndarray, rows: int = 5, cols: int = 5, gap: int = 2) -> np.ndarray:
    """Tiles images (N, H, W, C) in [-1, 1] into one uint8 picture with `gap` white pixels."""
    images = np.asarray(images, np.float32)[: rows * cols]
    count, height, width, channels = images.shape
    tiles = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    canvas = np.full((rows * (height + gap) + gap, cols * (width + gap) + gap, channels), 255, np.uint8)
    for i in range(count):
        r, c = divmod(i, cols)
        y, x = gap + r * (height + gap), gap + c * (width + gap)
        canvas[y:y + height, x:x + width] = tiles[i]
    return canvas


def save_grid(images: np.ndarray, path: str | Path, scale: int = 2) -> None:
    """Writes a 5x5 grid as a PNG, each pixel drawn as scale x scale (MNIST is tiny)."""
    picture = grid(images).repeat(scale, axis=0).repeat(scale, axis=1)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if picture.shape[-1] == 1:
        matplotlib.image.imsave(path, picture[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        matplotlib.image.imsave(path, picture)


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics.jsonl file."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def plot_losses(records: list[dict], path: str | Path) -> None:
    """Critic loss and the Wasserstein estimate (= -critic loss) against generator iterations."""
    iterations = [r["iteration"] for r in records]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    top.plot(iterations, [r["wasserstein_estimate"] for r in records], color="tab:blue")
    top.set_ylabel("Wasserstein estimate")
    top.set_title("-(critic loss) = mean D(real) - mean D(fake)")
    bottom.plot(iterations, [r["critic_loss"] for r in records], label="critic", color="tab:red")
    bottom.plot(iterations, [r["generator_loss"] for r in records], label="generator",
                color="tab:green", alpha=0.7)
    bottom.set_ylabel("loss")
    bottom.set_xlabel("generator iteration")
    bottom.legend()
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
