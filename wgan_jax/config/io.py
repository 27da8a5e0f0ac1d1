"""A config to and from JSON (a run's config.json in sections, and the flat ones written before
them) and `--set` values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from wgan_jax.config.knobs import SECTIONS
from wgan_jax.config.legacy import legacy_data
from wgan_jax.config.schema import FIELDS, Config
from wgan_jax.errors import UserError


# Keys a run's config.json holds beside the config's own fields (the loop's record of where and
# how it ran); `load_file` drops them, so that file starts a new run with the same config.
RUN_RECORD_KEYS = ("dataset_source", "dataset_size", "heldout", "heldout_size", "backend",
                   "processes", "machine_devices", "mesh_devices", "run", "batched_runs")


def parse_assignment(text: str) -> tuple[str, Any]:
    """'key=value' or 'section.field=value' (a --set flag) as the field's flat key and a value
    of the field's type: JSON for numbers, booleans, null and lists; '32,16' for a tuple;
    anything else for a string."""
    name, sep, raw = text.partition("=")
    section, _, name = name.strip().rpartition(".")
    if not sep or not name:
        raise UserError(f"--set {text!r}: expected key=value or section.field=value")
    if section:
        if section not in SECTIONS:
            raise UserError(f"--set {text!r}: unknown section {section!r} (sections: "
                            f"{', '.join(SECTIONS)})")
        key = _section_key(section, name)
        if key is None:
            where = FIELDS[name][0] if name in FIELDS else None
            hint = f"; {name} is in section {where}" if where else ""
            raise UserError(f"--set {text!r}: section {section} has no field {name!r}{hint}")
        name = key
    elif name not in FIELDS:
        raise UserError(f"--set {text!r}: unknown config field {name!r}")
    try:
        return name, parse_value(name, raw)
    except UserError as err:
        raise UserError(f"--set {text!r}: {err}") from None


def _section_key(section: str, name: str) -> str | None:
    """The flat key of field `name` (its own name or its key) of `section`; None if it has none."""
    for key, (where, field) in FIELDS.items():
        if where == section and name in (field.name, key):
            return key
    return None


def parse_value(key: str, raw: str) -> Any:
    """The text `raw` as a value of the field with flat name `key` (what --set and train.py's
    generated flags read): JSON for numbers, booleans and null; '32,16' or a JSON list for a
    tuple; anything else for a string. Raises UserError saying what the field takes."""
    default = FIELDS[key][1].default
    value = _json_or_text(raw)
    if isinstance(default, tuple):
        items = value if isinstance(value, list) else [_json_or_text(v) for v in raw.split(",")]
        kind = type(default[0]) if default else float  # run_clips, run_lrs: numbers
        return tuple(_typed(key, kind, v) for v in items)
    if isinstance(default, str):
        return raw
    if default is None:  # lr_critic, lr_generator: a number, or null for "as lr"
        return None if value is None else _typed(key, float, value)
    return _typed(key, type(default), value)


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
    """The config of a JSON file (a run's config.json, or any subset of fields, in sections or
    flat)."""
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
    """A JSON-ready dict in sections (tuples become lists)."""
    return {k: _listed(v) for k, v in dataclasses.asdict(config).items()}


def _listed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _listed(v) for k, v in value.items()}
    return list(value) if isinstance(value, tuple) else value


def flat(fields: dict[str, Any]) -> dict[str, Any]:
    """A config dict (in sections, flat as config.json was before them, or a mix) by flat keys,
    with the data fields of older flat files in today's terms."""
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in SECTIONS and isinstance(value, dict):
            for field, item in value.items():
                out[_section_key(name, field) or f"{name}.{field}"] = item
        else:
            out[name] = value
    return legacy_data(out)


def from_dict(fields: dict[str, Any], **overrides: Any) -> Config:
    """Inverse of `to_dict` (flat dicts too), with `overrides` (flat names; None values ignored)
    applied, validated."""
    fields = {**flat(fields), **{k: v for k, v in legacy_data(overrides).items() if v is not None}}
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise UserError(f"unknown config field(s): {', '.join(unknown)}")
    return Config().replace(**{k: tuple(v) if isinstance(v, list) else v
                               for k, v in fields.items()}).validate()
