"""`Config`: a whole run's configuration in sections, validated on entry; `Program`, the sections
the compiled programs read; `from_preset`, which builds a config from a named preset and
overrides."""

from __future__ import annotations

import dataclasses
from typing import Any

from wgan_jax.config.computed import Algorithm, Averaging, Optim, Runs
from wgan_jax.config.host import Data, Outputs, Training
from wgan_jax.config.knobs import SECTIONS, key_of, knob
from wgan_jax.config.legacy import legacy_data
from wgan_jax.config.nets import Nets
from wgan_jax.config.presets import ARCH_DEFAULTS, PRESETS
from wgan_jax.config.rules import ARCHS, LOSSES
from wgan_jax.errors import UserError


def _section(kind: type) -> Any:
    return dataclasses.field(default_factory=kind)


# The sections the compiled programs read, and those a resume keeps (the programs' and what the
# state carries); the rest (training, data, outputs) only the host reads.
COMPILED = ("algorithm", "optim", "averaging", "nets")
KEPT = ("runs", *COMPILED)


def _replaced(whole: Any, flat: dict[str, Any]) -> Any:
    """`whole` (a Config or a Program) with the fields named by flat keys (FIELDS) replaced."""
    changes: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for key, value in flat.items():
        if key not in FIELDS:
            raise UserError(f"unknown config field {key!r}")
        section, field = FIELDS[key]
        if section is None:
            top[field.name] = value
        elif not hasattr(whole, section):
            raise ValueError(f"{key} is in section {section}, which a {type(whole).__name__} "
                             f"does not hold")
        else:
            changes.setdefault(section, {})[field.name] = value
    sections = {name: dataclasses.replace(getattr(whole, name), **fields)
                for name, fields in changes.items()}
    return dataclasses.replace(whole, **top, **sections)


@dataclasses.dataclass(frozen=True)
class Program:
    """The compiled programs' static key: the sections they read. Configs that differ only in
    the runs section (seeds, clip bounds, learning rates: the state carries them) or in what the
    host reads share one compilation, and a program that read any of those would fail as it is
    traced rather than bake in a stale value."""

    algorithm: Algorithm
    optim: Optim
    averaging: Averaging
    nets: Nets

    def replace(self, **flat: Any) -> "Program":
        """This program with fields replaced by their flat names (e.g. n_critic=1)."""
        return _replaced(self, flat)


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole run's configuration, in the sections of wgan_jax.config.knobs.SECTIONS, each
    validating its own fields; `validate` adds the rules between sections."""

    preset: str = knob(
        "seed", "the preset this config started from: seed (Keras-GAN wgan.py), quick (digits in "
        "under 10 minutes on a 2-core CPU), paper, official, keras-exact (parity with the WGAN "
        "paper's Algorithm 1, the authors' PyTorch code, the seed's Keras program)",
        choices=tuple(PRESETS))
    runs: Runs = _section(Runs)
    algorithm: Algorithm = _section(Algorithm)
    optim: Optim = _section(Optim)
    averaging: Averaging = _section(Averaging)
    nets: Nets = _section(Nets)
    training: Training = _section(Training)
    data: Data = _section(Data)
    outputs: Outputs = _section(Outputs)

    def program(self) -> Program:
        """The sections the compiled programs take as their static argument."""
        return Program(**{name: getattr(self, name) for name in COMPILED})

    def replace(self, **flat: Any) -> "Config":
        """This config with fields replaced by their flat names (e.g. lr=1e-4, iterations=9);
        not validated."""
        return _replaced(self, flat)

    def validate(self, shape_known: bool = True) -> "Config":
        """Returns self, or raises UserError naming the first bad field. With `shape_known`
        False (a preset before its data is loaded: nets.image_shape is still the default) the
        networks are checked against the images only where data.image_size fixes their size."""
        if self.preset not in PRESETS:
            raise UserError(f"preset must be one of {', '.join(PRESETS)}; got {self.preset!r}")
        for name in SECTIONS:
            getattr(self, name).validate()
        rules, nets = LOSSES[self.algorithm.loss], self.nets
        if rules.penalised and nets.critic_norm == "batch":
            raise UserError(f"{self.algorithm.loss} needs a critic without BatchNorm (critic_norm "
                            f"layer or none): the penalty is per sample, and BatchNorm mixes "
                            f"samples")
        if nets.conditional and (self.algorithm.keras_exact or rules.penalised):
            keras = ", keras_exact" if self.algorithm.keras_exact else ""
            raise UserError(f"conditional runs take the wgan or dcgan loss without keras_exact "
                            f"(got loss {self.algorithm.loss}{keras})")
        size = self.data.image_size
        if size:
            nets.check_images(size, size, self.data.channels or nets.image_shape[2])
        elif shape_known:
            nets.check_images(*nets.image_shape)
        return self


def _flat_fields() -> dict[str, tuple[str | None, dataclasses.Field]]:
    fields: dict[str, tuple[str | None, dataclasses.Field]] = {}
    top = [(None, f) for f in dataclasses.fields(Config) if f.name not in SECTIONS]
    kinds = {f.name: f.default_factory for f in dataclasses.fields(Config) if f.name in SECTIONS}
    for section, field in top + [(s, f) for s in SECTIONS for f in dataclasses.fields(kinds[s])]:
        if key_of(field) in fields:
            raise TypeError(f"config key {key_of(field)} is defined twice")
        fields[key_of(field)] = (section, field)
    return fields


# Every field by its flat name (knobs.key_of): what from_preset, --set, the flags and old flat
# config.json files name; (None, field) for the top-level preset.
FIELDS = _flat_fields()


def resume_differences(saved: Config, requested: Config) -> list[str]:
    """'section.field: saved -> requested' for each field a resume keeps (the preset, the runs
    section and the compiled ones) that differs."""
    changed = [f"preset: {saved.preset!r} -> {requested.preset!r}"] \
        if saved.preset != requested.preset else []
    for name in KEPT:
        old, new = getattr(saved, name), getattr(requested, name)
        for field in dataclasses.fields(old):
            was, now = getattr(old, field.name), getattr(new, field.name)
            if was != now:
                changed.append(f"{name}.{field.name}: {was!r} -> {now!r}")
    return changed


def from_preset(name: str, **overrides: Any) -> Config:
    """The named preset with `overrides` (flat names; None values are ignored) applied,
    validated. A `loss` or `arch` override brings that loss's optimizer (its rules' defaults)
    or that architecture's BatchNorm (ARCH_DEFAULTS) unless they are set too."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    explicit = {k: v for k, v in legacy_data(overrides).items() if v is not None}
    loss = explicit.get("loss", PRESETS[name].get("loss", "wgan"))
    if loss not in LOSSES:
        raise UserError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    arch = explicit.get("arch", PRESETS[name].get("arch", "seed"))
    if arch not in ARCH_DEFAULTS:
        raise UserError(f"arch must be one of {', '.join(ARCHS)}; got {arch!r}")
    fields = {**PRESETS[name], **ARCH_DEFAULTS[arch], **dict(LOSSES[loss].defaults), **explicit}
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config(preset=name).replace(**fields).validate(shape_known="image_shape" in fields)
