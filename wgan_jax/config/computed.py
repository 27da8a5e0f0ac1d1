"""The sections of what a run computes: `Runs` (seeds, clip bounds, learning rates: the state
carries them) and the four the compiled programs take (`Program`): `Algorithm`, `Optim`,
`Averaging` and `Nets`. Each validates its own fields; a resume keeps all five. Defaults are the
seed recipe (Keras-GAN wgan.py)."""

from __future__ import annotations

import dataclasses

from wgan_jax.config.knobs import (check_choices, knob, positive_finite, positive_int,
                                   unit_interval)
from wgan_jax.config.rules import LOSSES, augment_policy
from wgan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Runs:
    """How many runs and each one's seed, clip bound and learning rates: numbers the training
    state carries (as arrays, so batched runs can differ), never compiled in."""

    seed: int = knob(0, "root of every random stream in the run (init, batches, noise, dropout, "
                        "sample noise)")
    seeds: int = knob(
        1, "independent runs trained together in one compiled program (seeds seed, seed+1, ...), "
        "each writing workdir/run-<i>/, with summary.md giving mean and spread; on the command "
        "line a --clip or --lr list sets it to the list's length")
    clip: float = knob(
        0.01, "critic parameters are clipped to [-clip, clip] around every critic update (the "
        "Lipschitz bound; loss wgan only); on the command line a comma-separated list gives each "
        "of --seeds runs its own (run_clips)", metavar="C")
    lr: float = knob(
        5e-5, "learning rate of both networks, unless lr_critic or lr_generator is set; on the "
        "command line a comma-separated list gives each of --seeds runs its own (run_lrs)",
        metavar="LR")
    lr_critic: float | None = knob(
        None, "the critic's own learning rate (the two time-scale update rule, Heusel et al. "
        "2017); unset: lr", metavar="LR")
    lr_generator: float | None = knob(None, "the generator's own learning rate; unset: lr",
                                      metavar="LR")
    run_clips: tuple[float, ...] = knob(
        (), "per-run clip bounds, one per seed (empty: every run uses clip)", flag="--clip")
    run_lrs: tuple[float, ...] = knob(
        (), "per-run learning rates, one per seed (empty: every run uses lr)", flag="--lr")

    def critic_lr(self) -> float:
        """The critic's learning rate: lr_critic, else lr."""
        return self.lr if self.lr_critic is None else self.lr_critic

    def generator_lr(self) -> float:
        """The generator's learning rate: lr_generator, else lr."""
        return self.lr if self.lr_generator is None else self.lr_generator

    def validate(self) -> None:
        positive_int(self, "seeds")
        for name in ("clip", "lr", "lr_critic", "lr_generator"):
            if getattr(self, name) is not None:
                positive_finite(name, getattr(self, name))
        for name in ("run_clips", "run_lrs"):
            values = getattr(self, name)
            if values and len(values) != self.seeds:
                raise UserError(f"{len(values)} {name[4:]} given for {self.seeds} seeds; give one "
                                f"per seed (or one value for all)")
            for value in values:
                positive_finite(name[4:-1], value)


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """What the networks are trained to do: the loss, the critic schedule, how the critic is
    kept Lipschitz, the augmentation."""

    batch_size: int = knob(32, "images per batch, for the real batch, the fake batch and the "
                               "generator's batch alike")
    n_critic: int = knob(5, "critic updates per generator update (the paper's n_critic)")
    loss: str = knob(
        "wgan", "wgan: Wasserstein loss with weight clipping (the seed); dcgan: sigmoid + binary "
        "cross-entropy, non-saturating generator loss, no clipping; wgan-gp: Wasserstein loss "
        "plus a gradient penalty, no clipping (Gulrajani et al. 2017). Each brings its published "
        "optimizer unless that is set too", choices=tuple(LOSSES))
    clip_when: str = knob(
        "after", "after: clip after each critic update (paper, seed); before: at the start of "
        "each critic step, so the generator trains on the last, unclipped critic (the official "
        "code)", choices=("after", "before"))
    clip_batch_stats: bool = knob(False, "clip the critic's BatchNorm moving mean and variance "
                                         "too (Keras' per-layer get_weights clip)")
    gp_weight: float = knob(10.0, "weight of loss wgan-gp's gradient penalty "
                                  "(||grad D(x_hat)|| - 1)^2")
    critic_schedule: str = knob(
        "constant", "constant: n_critic critic updates every iteration; official: 100 for the "
        "first 25 generator iterations and every 500th, else n_critic (the official code's "
        "schedule)", choices=("constant", "official"))
    augment: str = knob(
        "off", "differentiable augmentation of every batch the critic sees, real and generated "
        "(DiffAugment): off, or a comma-separated subset of color, translation, cutout; for small "
        "picture folders", metavar="POLICY")
    fake_batches: str = knob(
        "train", "how the generator makes the critic's fake batches: train (batch statistics, "
        "running averages untouched), inference (running averages: Keras' generator.predict) or "
        "train-update (batch statistics, running averages updated: PyTorch's train-mode "
        "forward)", choices=("train", "inference", "train-update"))
    keras_exact: bool = knob(
        False, "the seed's Keras mechanics: two optimizer updates per critic step (train_on_batch "
        "on the real batch, then the fake one), the generator update reusing the last critic "
        "step's noise, each log record printed as the seed prints it (1 - loss)")
    # XLA:CPU runs the unrolled body much faster (benchmarks/NOTES.md); unrolling keeps the scan's
    # semantics and numbers.
    critic_unroll: int = knob(0, "unroll factor of the critic scan; 0: per backend (full unroll "
                                 "on CPU, 1 elsewhere)")

    def validate(self) -> None:
        positive_int(self, "batch_size", "n_critic")
        check_choices(self)
        positive_finite("gp_weight", self.gp_weight)
        if self.critic_unroll < 0:
            raise UserError(f"critic_unroll must be >= 0 (0 = pick per backend), got "
                            f"{self.critic_unroll}")
        try:
            augment_policy(self.augment)
        except ValueError as err:
            raise UserError(f"augment: {err}") from None
        if self.keras_exact and LOSSES[self.loss].penalised:
            raise UserError("keras_exact splits the real and fake updates; the gradient penalty "
                            "needs both in one update")
        if self.augment != "off" and self.keras_exact:
            raise UserError("augment is not part of the seed's recipe (keras_exact); leave it off")


@dataclasses.dataclass(frozen=True)
class Optim:
    """The optimizer of both networks (the learning rates are the runs section's)."""

    optimizer: str = knob("rmsprop", "rmsprop (WGAN) or adam (DCGAN, WGAN-GP), for both "
                                     "networks", choices=("rmsprop", "adam"))
    rmsprop_decay: float = knob(0.9, "RMSprop decay of the squared-gradient average (Keras' rho, "
                                     "PyTorch's alpha)")
    rmsprop_eps: float = knob(1e-7, "RMSprop epsilon (Keras 2's value); where it goes matters: "
                                    "see rmsprop_eps_in_sqrt")
    # False puts eps outside the square root (Keras 2, PyTorch; Keras 3 puts it inside). optax's
    # default (True) floors the denominator at sqrt(eps), which swamps a clipped critic's tiny
    # gradients: the seed recipe then learns nothing in 4000 iterations (docs/algorithm.md).
    rmsprop_eps_in_sqrt: bool = knob(
        False, "put RMSprop's eps inside the square root (optax's default, Keras 3) instead of "
        "outside (Keras 2, PyTorch): it floors the denominator at sqrt(eps), which swamps a "
        "clipped critic's tiny gradients")
    adam_b1: float = knob(0.5, "Adam's beta1 (DCGAN: 0.5; WGAN-GP: 0.0)")
    adam_b2: float = knob(0.999, "Adam's beta2 (DCGAN: 0.999; WGAN-GP: 0.9)")

    def validate(self) -> None:
        check_choices(self)
        positive_finite("rmsprop_eps", self.rmsprop_eps)
        unit_interval(self, "rmsprop_decay", "adam_b1", "adam_b2")


@dataclasses.dataclass(frozen=True)
class Averaging:
    """A moving average of the generator (Yazici et al. 2019), which samples and evaluations
    draw from."""

    ema: float = knob(
        0.0, "decay of an exponential moving average of the generator's parameters and "
        "BatchNorm statistics, updated after every generator update; samples, evaluations and "
        "checkpoints' averaged generator draw from it, the critic never sees it; the first "
        "updates use min(ema, (1 + t) / (10 + t)); 0: off", metavar="DECAY")
    ema_stats: str = knob(
        "averaged", "where the averaged generator's BatchNorm statistics come from: averaged (the "
        "moving average of the running statistics) or recomputed (the batch statistics of the "
        "averaged weights on fixed latent vectors, when images are drawn)",
        choices=("averaged", "recomputed"))

    def validate(self) -> None:
        check_choices(self)
        unit_interval(self, "ema", off="ema")
