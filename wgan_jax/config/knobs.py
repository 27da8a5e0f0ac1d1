"""A config field's description (`knob`), the sections fields belong to, and the checks every
section uses on its own fields."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from wgan_jax.errors import UserError


# The config's sections in train.py --help's order, each with what it holds. The first five are
# what a run computes (a resume keeps them); algorithm, optim, averaging and nets are also the
# compiled programs' key (Config.program()); training, data and outputs only the host reads.
SECTIONS = {
    "runs": "how many runs, and each one's random seed, clip bound and learning rates (numbers "
            "the training state carries, so a new one compiles nothing new)",
    "algorithm": "what the networks are trained to do, and how the critic is kept Lipschitz",
    "optim": "the optimizer of both networks",
    "averaging": "a moving average of the generator (Yazici et al. 2019)",
    "nets": "the generator and the critic",
    "training": "how long a run trains, on which devices, from which networks",
    "data": "where the training images come from and how they are fitted",
    "outputs": "what a run writes, and how often",
}


def knob(default: Any, help: str, choices: tuple | None = None, flag: str | None = "",
         metavar: str | None = None, key: str | None = None) -> Any:
    """A config field with its one-line meaning (train.py's --help), the values it may take, its
    train.py flag ("" for --<key>, another flag that sets it, or None for a field the data
    fills in) and its key: the name that reaches it from a flat dict (from_preset overrides,
    --set, a config.json written before the sections), unique across sections; default the
    field's own name."""
    return dataclasses.field(default=default, metadata=dict(
        help=help, choices=choices, flag=flag, metavar=metavar, key=key))


def key_of(field: dataclasses.Field) -> str:
    """The field's flat name (`knob`'s key)."""
    return field.metadata["key"] or field.name


def check_choices(section: Any) -> None:
    """Every field of `section` with choices holds one of them."""
    for f in dataclasses.fields(section):
        value = getattr(section, f.name)
        if f.metadata["choices"] and value not in f.metadata["choices"]:
            raise UserError(f"{key_of(f)} must be one of {', '.join(f.metadata['choices'])}; "
                            f"got {value!r}")


def positive_int(section: Any, *names: str) -> None:
    for name in names:
        value = getattr(section, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")


def positive_finite(name: str, value: Any) -> None:
    if not (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0):
        raise UserError(f"{name} must be a positive finite number, got {value!r}")


def unit_interval(section: Any, *names: str, off: str = "") -> None:
    """Each named field is in [0, 1); `off` names a field whose 0 means off."""
    for name in names:
        value = getattr(section, name)
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                and 0.0 <= value < 1.0):
            raise UserError(f"{name} must be in [0, 1){' (0 = off)' if name == off else ''}, got "
                            f"{value!r}")
