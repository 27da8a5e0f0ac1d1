"""The host loop: dispatch chunks of iterations, read metrics back only at log points, write files.

Data flows one way: files -> device array -> `steps.train_chunk` -> metrics -> writers. Metrics
and samples of a chunk are read back only after the next chunk has been dispatched, so the device
never waits for the host.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import jax
import numpy as np
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from wgan_jax import config as config_lib
from wgan_jax import data, steps, viz
from wgan_jax.config import Config
from wgan_jax.errors import UserError
from wgan_jax.state import SAMPLES, init_state, stream

METRIC_NAMES = ("critic_loss", "generator_loss", "wasserstein_estimate")
SAMPLE_COUNT = 25  # a 5x5 grid, like the seed's sample_images


class TrainingDiverged(UserError):
    """A logged quantity became NaN or infinite."""


def dispatch_length(config: Config) -> int:
    """Generator iterations per dispatch: the config's, else 1 on CPU and 50 elsewhere."""
    if config.iters_per_dispatch:
        return config.iters_per_dispatch
    return 1 if jax.default_backend() == "cpu" else 50


def chunk_lengths(total: int, longest: int, *every: int) -> list[int]:
    """Chunk lengths covering `total` iterations, none over `longest`, such that every multiple of
    each `every` (and `total` itself) is a chunk end."""
    stops = sorted({m for e in every for m in range(e, total, e)} | {total})
    lengths, done = [], 0
    for stop in stops:
        while stop - done > longest:
            lengths.append(longest)
            done += longest
        lengths.append(stop - done)
        done = stop
    return lengths


def prepare(config: Config) -> tuple[Config, data.Dataset]:
    """Loads the training data and returns the config completed with its image shape."""
    dataset = data.load(config.dataset, config.data_dir)
    config = dataclasses.replace(config, image_shape=tuple(dataset.images.shape[1:])).validate()
    if config.batch_size > len(dataset.images):
        raise UserError(f"batch size {config.batch_size} is larger than the dataset "
                        f"({len(dataset.images)} images)")
    return config, dataset


class _Writer:
    """Everything a run writes into its workdir."""

    def __init__(self, workdir: Path, config: Config, dataset: data.Dataset):
        self.workdir = workdir
        try:
            (workdir / "samples").mkdir(parents=True, exist_ok=True)
            record = {**config_lib.to_dict(config), "dataset_source": dataset.name,
                      "dataset_size": int(len(dataset.images)), "backend": jax.default_backend(),
                      "devices": [str(d) for d in jax.devices()]}
            (workdir / "config.json").write_text(json.dumps(record, indent=2) + "\n")
            self.metrics_file = open(workdir / "metrics.jsonl", "w")
        except OSError as err:
            raise UserError(f"cannot write to workdir {workdir}: {err.strerror or err}") from None
        self.records: list[dict] = []

    def log(self, record: dict) -> None:
        self.records.append(record)
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()

    def samples(self, images: np.ndarray, name: str) -> None:
        viz.save_grid(images, self.workdir / "samples" / f"{name}.png")

    def close(self) -> None:
        self.metrics_file.close()
        if self.records:
            viz.plot_losses(self.records, self.workdir / "losses.png")


def run(config: Config, workdir: str | Path, console: Console | None = None) -> dict:
    """Trains as `config` says and writes config.json, metrics.jsonl, samples/ and losses.png into
    `workdir`. Returns the last log record."""
    console = console or Console(stderr=True)
    workdir = Path(workdir)
    config, dataset = prepare(config)
    writer = _Writer(workdir, config, dataset)
    start = time.perf_counter()
    key = jax.random.PRNGKey(config.seed)
    state = init_state(config, key)
    images = jax.device_put(dataset.images)
    fixed_z = jax.random.normal(stream(key, SAMPLES), (SAMPLE_COUNT, config.latent_dim))
    lengths = chunk_lengths(config.iterations, dispatch_length(config), config.log_every,
                            config.sample_every)

    columns = (TextColumn("[bold]WGAN"), BarColumn(), MofNCompleteColumn(), TextColumn("iterations"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("W estimate {task.fields[w]}"))
    pending: list[tuple] = []  # this chunk's reads, done once the next chunk is in flight
    unlogged: list[dict] = []  # device metrics since the last log point
    iteration, last = 0, {}

    def read_back(progress, task) -> None:
        nonlocal last
        for kind, at, payload in pending:
            if kind == "samples":
                writer.samples(np.asarray(payload), f"iter_{at:06d}")
                continue
            host = jax.device_get(payload)
            record = {"iteration": at}
            for name in METRIC_NAMES:
                values = np.concatenate([np.atleast_1d(m[name]) for m in host])
                if not np.all(np.isfinite(values)):
                    raise TrainingDiverged(f"{name} became non-finite by iteration {at}; lower "
                                           f"--lr or check the data")
                record[name] = float(values.mean())
            record["seconds"] = round(time.perf_counter() - start, 3)
            writer.log(record)
            last = record
            progress.update(task, completed=at, w=f"{record['wasserstein_estimate']:.3g}")
        pending.clear()

    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("train", total=config.iterations, w="-")
            for length in lengths:
                state, metrics = steps.train_chunk(state, images, config, length)
                read_back(progress, task)  # the previous chunk's, while this one runs
                iteration += length
                unlogged.append(metrics)
                if iteration % config.log_every == 0 or iteration == config.iterations:
                    pending.append(("log", iteration, list(unlogged)))
                    unlogged.clear()
                if iteration % config.sample_every == 0:
                    pending.append(("samples", iteration, steps.generate(state, fixed_z, config)))
            read_back(progress, task)
        writer.samples(np.asarray(steps.generate(state, fixed_z, config)), "final")
    finally:
        writer.close()
    elapsed = time.perf_counter() - start
    console.print(
        f"done: {config.iterations} iterations in {elapsed:.1f} s "
        f"({1000 * elapsed / config.iterations:.1f} ms/iteration incl. compilation), "
        f"final Wasserstein estimate {last.get('wasserstein_estimate', math.nan):.4g}, "
        f"outputs in {workdir}")
    return last
