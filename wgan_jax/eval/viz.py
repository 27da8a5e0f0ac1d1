"""Pictures of a run: sample grids and loss curves (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from wgan_jax.eval import records as records_lib  # noqa: E402


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] as uint8 pixels, the inverse of the training data's scaling."""
    return np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).round().astype(np.uint8)


def grid(images: np.ndarray, rows: int = 5, cols: int = 5, gap: int = 2) -> np.ndarray:
    """Tiles images (N, H, W, C) in [-1, 1] into one uint8 picture with `gap` white pixels."""
    tiles = to_uint8(np.asarray(images)[: rows * cols])
    count, height, width, channels = tiles.shape
    canvas = np.full((rows * (height + gap) + gap, cols * (width + gap) + gap, channels), 255, np.uint8)
    for i in range(count):
        r, c = divmod(i, cols)
        y, x = gap + r * (height + gap), gap + c * (width + gap)
        canvas[y:y + height, x:x + width] = tiles[i]
    return canvas


def save_grid(images: np.ndarray, path: str | Path, scale: int = 2, rows: int = 5,
              cols: int = 5) -> None:
    """Writes a rows x cols grid as a PNG, each pixel drawn as scale x scale (MNIST is tiny)."""
    save_picture(grid(images, rows, cols).repeat(scale, axis=0).repeat(scale, axis=1), path)


def save_image(image: np.ndarray, path: str | Path) -> None:
    """One image (H, W, C) in [-1, 1] as a PNG at its own size."""
    save_picture(to_uint8(image), path)


def save_picture(picture: np.ndarray, path: str | Path) -> None:
    """A uint8 picture (H, W, C) as a PNG (grey for one channel)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if picture.shape[-1] == 1:
        matplotlib.image.imsave(path, picture[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        matplotlib.image.imsave(path, picture)


def plot_losses(records: list[dict], path: str | Path) -> None:
    """Critic loss and the Wasserstein estimate (= -critic loss) against generator iterations."""
    records = records_lib.of_kind(records, records_lib.TRAIN)
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


def save_class_grid(images: np.ndarray, probs: np.ndarray, path: str | Path, per_class: int = 10,
                    scale: int = 2) -> None:
    """A row per predicted class holding its `per_class` most confident samples (blank cells where
    a class has fewer): shows at a glance which classes the generator draws, and how well."""
    classes = probs.shape[1]
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    blank = -np.ones_like(images[0])
    rows = []
    for c in range(classes):
        members = np.flatnonzero(predicted == c)
        members = members[np.argsort(-confidence[members], kind="stable")][:per_class]
        rows += [images[i] for i in members] + [blank] * (per_class - len(members))
    picture = grid(np.stack(rows), classes, per_class)
    save_picture(picture.repeat(scale, axis=0).repeat(scale, axis=1), path)


def median_filter(values: np.ndarray, window: int) -> np.ndarray:
    """Running median over an odd `window`, the window shrinking at the ends (no padding values):
    the WGAN paper's plots of the Wasserstein estimate are median-filtered like this."""
    values = np.asarray(values, np.float64)
    half = window // 2
    return np.array([np.median(values[max(0, i - half):i + half + 1]) for i in range(len(values))])


def smoothing_window(count: int) -> int:
    """The median filter's window for `count` logged values: about a twentieth of them, odd."""
    return max(1, count // 20) | 1


def plot_training(records: list[dict], path: str | Path) -> None:
    """The Wasserstein estimate (raw, faint, and median-filtered) and the Fréchet distance of the
    evaluation records, over generator iterations, on one figure with two y axes."""
    logs = [r for r in records_lib.of_kind(records, records_lib.TRAIN)
            if "wasserstein_estimate" in r]
    evals = [r for r in records_lib.of_kind(records, records_lib.EVAL)
             if records_lib.quality_key(r)]
    fig, left = plt.subplots(figsize=(7, 4))
    if logs:
        its = [r["iteration"] for r in logs]
        w = np.array([r["wasserstein_estimate"] for r in logs])
        left.plot(its, w, color="tab:blue", alpha=0.25, linewidth=0.8)
        left.plot(its, median_filter(w, smoothing_window(len(w))), color="tab:blue",
                  label="Wasserstein estimate (median-filtered)")
    left.set_xlabel("generator iteration")
    left.set_ylabel("Wasserstein estimate", color="tab:blue")
    left.grid(alpha=0.3)
    if evals:
        key = records_lib.quality_key(evals[0])
        right = left.twinx()
        right.plot([r["iteration"] for r in evals], [r[key] for r in evals], "o-",
                   color="tab:red", label=key)
        right.set_ylabel(f"{key} (lower is better)", color="tab:red")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_coverage(shares: list[float], path: str | Path) -> None:
    """Bar chart of the share of samples predicted as each class, against the uniform share."""
    fig, axis = plt.subplots(figsize=(6, 3))
    axis.bar(range(len(shares)), shares, color="tab:gray")
    axis.axhline(1 / len(shares), color="tab:red", linestyle="--", label="uniform")
    axis.set_xticks(range(len(shares)))
    axis.set_xlabel("predicted class")
    axis.set_ylabel("share of samples")
    axis.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_compare(histories: list[list[dict]], logs: list[list[dict]], labels: list[str],
                 path: str | Path) -> None:
    """Several runs overlaid: the Fréchet distance (left) and the median-filtered critic score
    gap mean D(real) - mean D(fake) (right; the Wasserstein estimate for the WGAN losses), each
    run's divided by its largest magnitude, since losses put it on scales 1e5 apart."""
    fig, (quality, estimate) = plt.subplots(1, 2, figsize=(11, 4))
    for history, log, label in zip(histories, logs, labels):
        if history:
            key = records_lib.quality_key(history[0])
            quality.plot([r["iteration"] for r in history], [r[key] for r in history], "o-",
                         label=label)
            quality.set_ylabel(f"{key} (lower is better)")
        log = [r for r in records_lib.of_kind(log, records_lib.TRAIN)
               if "wasserstein_estimate" in r]
        if log:
            w = median_filter([r["wasserstein_estimate"] for r in log],
                              smoothing_window(len(log)))
            scale = float(np.max(np.abs(w))) or 1.0
            estimate.plot([r["iteration"] for r in log], w / scale, label=f"{label} (/ {scale:.2g})")
    estimate.set_ylabel("critic score gap (median-filtered, scaled per run)")
    for axis in (quality, estimate):
        axis.set_xlabel("generator iteration")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def side_by_side(pictures: list[str | Path], labels: list[str], path: str | Path) -> None:
    """Saved sample grids in one row, each titled with its run's label."""
    fig, axes = plt.subplots(1, len(pictures), figsize=(3.2 * len(pictures), 3.5), squeeze=False)
    for axis, picture, label in zip(axes[0], pictures, labels):
        axis.imshow(matplotlib.image.imread(picture), cmap="gray")
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
