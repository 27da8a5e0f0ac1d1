"""A run's metrics.jsonl records: reading them, telling training records from evaluation ones,
and the table of evaluation metrics that reports, comparisons and summaries are made from.

A record is one JSON object per line with an integer "iteration" and a "kind": "train" (the
means of the step's scalars since the last log) or "eval" (an evaluation of the generator).
Files written before records carried a kind are read too: a record with a Fréchet distance is
an evaluation.
"""

from __future__ import annotations

import json
from pathlib import Path

TRAIN, EVAL = "train", "eval"

# Every metric an evaluation can report: its meaning in one line and which way is better. fd and
# kid are suffixed in records by the classifier whose features they use (fd_mnist); a new metric
# is one entry here.
METRICS = {
    "fid": ("FID: Fréchet distance of Inception-v3 pool features (the TF-FID network); the "
            "field's standard number", "lower"),
    "fd": ("Fréchet distance between Gaussians fitted to the shipped classifier's 128-d "
           "features (not FID: this project's classifier)", "lower"),
    "kid": ("kernel (MMD^2, cubic kernel) distance in the same features; unbiased, can dip "
            "below 0", "lower"),
    "classifier_score": ("exp(E KL(p(y|x) || p(y))): up to 10 for confident, balanced classes",
                         "higher"),
    "coverage_kl": ("KL of the predicted-class histogram from uniform: 0 balanced, 2.30 one "
                    "class", "lower"),
    "precision": ("share of samples inside the real data's 3-NN manifold (quality)", "higher"),
    "conditional_accuracy": ("a conditional generator's samples the shipped classifier assigns "
                             "to the class asked for", "higher"),
    "recall": ("share of real images inside the samples' 3-NN manifold (diversity)", "higher"),
}


def key_of(record: dict, name: str) -> str | None:
    """The record's key for metric `name` of METRICS, if it holds it (fd -> fd_mnist)."""
    if name in ("fd", "kid"):
        return next((k for k in record if k.startswith(name + "_") and not k.endswith("_raw")),
                    None)
    return name if name in record else None


def quality_key(record: dict) -> str | None:
    """The key of an evaluation record's headline distance: the classifier's Fréchet distance
    (fd_mnist, fd_fashion_mnist) where there is one, else FID; None for a training record."""
    return key_of(record, "fd") or key_of(record, "fid")


def headline(record: dict) -> dict:
    """The distances a run is summed up by (FID and the classifier's Fréchet distance, where
    the record has them), for one-line reports."""
    keys = [key_of(record, "fid"), key_of(record, "fd")]
    return {key: record[key] for key in keys if key}


def kind(record: dict) -> str:
    """TRAIN or EVAL; older files' records have no kind, and are told apart by their keys."""
    return record.get("kind") or (EVAL if quality_key(record) else TRAIN)


def of_kind(records: list[dict], wanted: str) -> list[dict]:
    return [r for r in records if kind(r) == wanted]


def read(path: str | Path) -> tuple[list[dict], int]:
    """The complete records of a metrics.jsonl file, and how many lines were not one: a line
    cut off by a crash or a power loss mid-write, or otherwise damaged, is skipped."""
    records, damaged = [], 0
    with open(path, errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                damaged += 1
                continue
            if isinstance(record, dict) and isinstance(record.get("iteration"), int):
                records.append(record)
            else:
                damaged += 1
    return records, damaged
