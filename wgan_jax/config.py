"""One typed, validated configuration object and the named presets built from it.

`Config` is frozen and hashable: the jitted steps take it as a static argument, so a run compiles
once for its config and any change of hyper-parameter is a deliberate recompilation.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from wgan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that decides what a run computes. Defaults are the seed recipe (Keras-GAN wgan.py)."""

    # Name of the preset this config started from; recorded so config.json says where it came from.
    preset: str = "seed"

    # --- schedule
    # Generator iterations; each is n_critic critic updates followed by one generator update.
    iterations: int = 4000
    # Images per batch, for the real batch, the fake batch and the generator's batch alike.
    batch_size: int = 32
    # Critic updates per generator update (the paper's n_critic).
    n_critic: int = 5

    # --- algorithm
    # Critic parameters are clipped to [-clip, clip] after every critic update (the Lipschitz bound).
    clip: float = 0.01
    # RMSprop learning rate, for both networks.
    lr: float = 5e-5
    # RMSprop decay of the squared-gradient average (Keras calls it rho; PyTorch alpha).
    rmsprop_decay: float = 0.9
    # RMSprop epsilon; Keras' value. It matters: see rmsprop_eps_in_sqrt.
    rmsprop_eps: float = 1e-7
    # False puts eps outside the square root (Keras, PyTorch). optax's default (True) floors the
    # denominator at sqrt(eps), which swamps a clipped critic's tiny gradients: the seed recipe
    # then learns nothing in 4000 iterations (REFERENCE.md section 1).
    rmsprop_eps_in_sqrt: bool = False

    # --- networks (the seed's architecture; widths can shrink for the CPU preset)
    # Length of the generator's N(0, 1) input vector.
    latent_dim: int = 100
    # Channels of the generator's two upsampling conv blocks (the seed: 128, 64).
    gen_channels: tuple[int, ...] = (128, 64)
    # Channels of the critic's four conv blocks (the seed: 16, 32, 64, 128).
    critic_channels: tuple[int, ...] = (16, 32, 64, 128)
    # Dropout rate after each critic conv block.
    dropout: float = 0.25
    # BatchNorm momentum in Keras/Flax convention (running = m * running + (1 - m) * batch).
    bn_momentum: float = 0.8
    # BatchNorm epsilon (Keras' default, which the seed uses).
    bn_eps: float = 1e-3
    # (height, width, channels) of the training images; filled in from the dataset when loaded.
    image_shape: tuple[int, int, int] = (28, 28, 1)

    # --- data
    # "mnist" is the bundled copy; any other name is a tensorflow-datasets image dataset.
    dataset: str = "mnist"
    # A folder holding the four standard IDX files; overrides `dataset` when set.
    data_dir: str | None = None

    # --- run
    # Root of every random stream in the run (init, batches, noise, dropout, sample noise).
    seed: int = 0
    # Save a 5x5 sample grid every this many generator iterations.
    sample_every: int = 50
    # Read metrics back from the device and log them every this many generator iterations; the
    # only host synchronisation in the loop.
    log_every: int = 50
    # Save a checkpoint (whole state, config, dataset identity) every this many generator
    # iterations, and at the end; a run stopped by SIGINT/SIGTERM saves one too.
    checkpoint_every: int = 500
    # How many checkpoints to keep (the newest).
    keep_checkpoints: int = 3
    # Generator iterations per compiled dispatch (an outer lax.scan when > 1). 1 measured fastest
    # on both CPU (XLA:CPU runs a scan of scans ~11x slower) and an H100 (3.48 vs 3.75 ms per
    # iteration at 50 per dispatch; benchmarks/NOTES.md). Log and sample points fall on chunk ends.
    iters_per_dispatch: int = 1
    # Unroll factor of the critic scan; 0 picks per backend (full unroll on CPU, 1 elsewhere).
    # Unrolling keeps the scan's semantics and numbers; XLA:CPU runs the unrolled body ~5x faster.
    critic_unroll: int = 0

    def validate(self) -> "Config":
        """Returns self, or raises UserError naming the first bad field."""
        _positive_int(self, "iterations", "batch_size", "latent_dim", "sample_every", "log_every",
                      "checkpoint_every", "keep_checkpoints")
        if self.n_critic < 1:
            raise UserError(f"n_critic must be at least 1, got {self.n_critic}")
        for name in ("clip", "lr", "rmsprop_eps", "bn_eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise UserError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("rmsprop_decay", "bn_momentum"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if len(self.gen_channels) != 2 or min(self.gen_channels) < 1:
            raise UserError(f"gen_channels must be two positive widths, got {self.gen_channels}")
        if len(self.critic_channels) != 4 or min(self.critic_channels) < 1:
            raise UserError(f"critic_channels must be four positive widths, got {self.critic_channels}")
        height, width, channels = self.image_shape
        if height % 4 or width % 4 or height < 8 or width < 8 or channels < 1:
            raise UserError(
                f"images must be at least 8x8 with sides divisible by 4 (the generator upsamples "
                f"twice by 2), got {self.image_shape}")
        if self.iters_per_dispatch < 1:
            raise UserError(f"iters_per_dispatch must be at least 1, got {self.iters_per_dispatch}")
        if self.critic_unroll < 0:
            raise UserError(f"critic_unroll must be >= 0 (0 = pick per backend), got {self.critic_unroll}")
        if not self.dataset:
            raise UserError("dataset must be a name, e.g. mnist")
        return self


def _positive_int(config: Config, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")


# Each preset is a set of overrides of the defaults; the first line says what it is for.
PRESETS: dict[str, dict[str, Any]] = {
    # The seed program's recipe, exactly: Keras-GAN wgan.py's networks and hyper-parameters.
    "seed": {},
    # Draws recognisable digits in under 10 minutes on a 2-core CPU (measured: README, "Quick
    # preset"): a quarter-width generator (the generator is ~99% of the FLOPs) and twice the seed's
    # batch-32 learning rate, chosen from benchmarks/quick_sweep.py's candidates.
    "quick": dict(gen_channels=(32, 16), lr=2e-4, iterations=2000, sample_every=200, log_every=25),
}


def from_preset(name: str, **overrides: Any) -> Config:
    """The named preset with `overrides` applied (None values are ignored), validated."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    fields = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config(preset=name, **fields).validate()


def to_dict(config: Config) -> dict[str, Any]:
    """A JSON-ready dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def from_dict(fields: dict[str, Any]) -> Config:
    """Inverse of `to_dict`, validated."""
    known = {f.name: f for f in dataclasses.fields(Config)}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}).validate()
