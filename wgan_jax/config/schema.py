"""`Config`: a whole run's fields, validated on entry, and `from_preset`, which builds one from a
named preset and overrides."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from wgan_jax.config.fields import RunConfig, StepConfig
from wgan_jax.config.legacy import legacy_data
from wgan_jax.config.presets import ARCH_DEFAULTS, PRESETS
from wgan_jax.config.rules import ARCHS, LOSSES, augment_policy
from wgan_jax.data.base import Options
from wgan_jax.data.fit import background_rgb
from wgan_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Config(RunConfig, StepConfig):
    """A whole run's configuration: its StepConfig fields and its RunConfig fields, validated on
    entry. Every field belongs to exactly one of the two (tests/config/test_config.py)."""

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


def from_preset(name: str, **overrides: Any) -> Config:
    """The named preset with `overrides` applied (None values are ignored), validated. A `loss`
    or `arch` override brings that loss's optimizer (its Objective's defaults) or that
    architecture's BatchNorm (ARCH_DEFAULTS) unless they are set too."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    explicit = legacy_data(overrides)
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
