"""Fields of configs written by older versions, in today's terms."""

from __future__ import annotations

from typing import Any


def legacy_data(fields: dict[str, Any]) -> dict[str, Any]:
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
