"""A config to and from JSON (a run's config.json, old flat ones included) and `--set` values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from wgan_jax.config.legacy import legacy_data
from wgan_jax.config.schema import Config
from wgan_jax.errors import UserError


# Keys a run's config.json holds beside the config's own fields (the loop's record of where and
# how it ran); `load_file` drops them, so that file starts a new run with the same config.
RUN_RECORD_KEYS = ("dataset_source", "dataset_size", "heldout", "heldout_size", "backend",
                   "processes", "machine_devices", "mesh_devices", "run", "batched_runs")


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
    fields = {**legacy_data(fields), **{k: v for k, v in legacy_data(overrides).items()
                                         if v is not None}}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}).validate()
