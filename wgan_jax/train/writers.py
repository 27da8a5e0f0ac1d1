"""Everything a run writes besides its checkpoints: config.json, metrics.jsonl, sample grids,
losses.png and TensorBoard events (`Writer`, one per run), and the summary of several runs. Only process 0 of a multi-process run writes; the others keep the
records, which every process needs to agree on what happened.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from wgan_jax import config as config_lib, data
from wgan_jax.config import Config
from wgan_jax.errors import UserError, write_failed
from wgan_jax.eval import records as records_lib, viz
from wgan_jax.train.events import EventWriter
from wgan_jax.train.summary import summary_markdown


class Writer:
    """Everything one run writes into its folder except checkpoints. Only process 0 of a
    multi-process run writes (`active` False elsewhere): the others keep the records only."""

    def __init__(self, workdir: Path, config: Config, dataset: data.Dataset, start: int,
                 active: bool = True, run: dict | None = None, events: Path | None = None):
        self.workdir, self.active, self.events = workdir, active, None
        metrics_path = workdir / "metrics.jsonl"
        # On resume keep the complete records up to the checkpoint; later ones are recomputed
        # exactly. `damaged` counts lines that were no record (a write cut off by a crash).
        self.records, self.damaged = [], 0
        if start and metrics_path.exists():
            records, self.damaged = records_lib.read(metrics_path)
            self.records = [r for r in records if r["iteration"] <= start]
        if not active:
            return
        try:
            (workdir / "samples").mkdir(parents=True, exist_ok=True)
            record = {**config_lib.to_dict(config), **(run or {}), "dataset_source": dataset.name,
                      "dataset_size": int(len(dataset.images)), "backend": jax.default_backend(),
                      "processes": jax.process_count(),
                      "machine_devices": [str(d) for d in jax.devices()]}
            (workdir / "config.json").write_text(json.dumps(record, indent=2) + "\n")
            self.metrics_file = open(metrics_path, "w")
        except OSError as err:
            raise UserError(f"cannot write to workdir {workdir}: {err.strerror or err}") from None
        for r in self.records:
            self.metrics_file.write(json.dumps(r) + "\n")
        self.metrics_file.flush()
        if events is not None:
            self.events = EventWriter(events, start)

    def log(self, record: dict) -> None:
        self.records.append(record)
        if self.active:
            try:
                self.metrics_file.write(json.dumps(record) + "\n")
                self.metrics_file.flush()
            except OSError as err:
                raise write_failed(self.workdir / "metrics.jsonl", err) from None
        if self.events:
            self.events.record(record)

    def samples(self, images: np.ndarray, name: str, step: int) -> None:
        path = self.workdir / "samples" / f"{name}.png"
        if self.active:
            try:
                viz.save_grid(images, path)
            except OSError as err:
                raise write_failed(path, err) from None
        if self.events:
            self.events.image(viz.grid(images), step)

    def final(self) -> dict:
        """The run's last log record merged with its last evaluation record."""
        logged = records_lib.of_kind(self.records, records_lib.TRAIN)
        evaluated = records_lib.of_kind(self.records, records_lib.EVAL)
        return {**(evaluated[-1] if evaluated else {}), **(logged[-1] if logged else {})}

    def close(self) -> None:
        if not self.active:
            return
        try:
            if self.events:
                self.events.close()
            self.metrics_file.close()
            if self.records:
                viz.plot_losses(self.records, self.workdir / "losses.png")
        except OSError as err:
            raise write_failed(f"{self.workdir / 'metrics.jsonl'} or losses.png", err) from None


def events_folder(workdir: Path, run: int, runs: int) -> Path:
    """WORKDIR/tensorboard, with a folder per run for several runs (TensorBoard overlays them)."""
    return workdir / "tensorboard" / (f"run-{run}" if runs > 1 else "")


def write_summary(workdir: Path, summary: dict) -> None:
    """summary.json and summary.md of several runs (summary)."""
    try:
        (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (workdir / "summary.md").write_text(summary_markdown(summary))
    except OSError as err:
        raise write_failed(workdir / "summary.json", err) from None
