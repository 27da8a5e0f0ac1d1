"""The host loop: dispatch chunks of iterations, read metrics back only at log points, write files.

Data flows one way: files -> device array -> `steps.train_chunk` -> metrics -> writers. Metrics
and samples of a chunk are read back only after the next chunk has been dispatched, so the device
never waits for the host. Checkpoints are the other host synchronisation, every
`checkpoint_every` iterations. SIGINT and SIGTERM finish the chunk in flight, save a checkpoint and
a sample grid, and raise `Interrupted`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import signal
import socket
import threading
import time
from pathlib import Path

import jax
import numpy as np
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from wgan_jax import config as config_lib
from wgan_jax import classifier, data, distributed, seeds, steps, viz
from wgan_jax.checkpoint import Checkpoints, config_differences, dataset_identity
from wgan_jax.evaluate import quality_key
from wgan_jax.events import EventWriter, require
from wgan_jax.config import Config
from wgan_jax.errors import UserError, WriteFailed, write_failed
from wgan_jax.evaluate import Evaluator
from wgan_jax.state import SAMPLES, init_state, stream
from wgan_jax.state import iteration as iteration_of

SAMPLE_COUNT = 25  # a 5x5 grid, like the seed's sample_images


class TrainingDiverged(UserError):
    """A logged quantity or a parameter became NaN or infinite."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run after saving a checkpoint."""

    def __init__(self, signum: int, iteration: int, workdir: Path):
        self.signum, self.iteration, self.workdir = signum, iteration, workdir
        super().__init__(f"stopped by {signal.Signals(signum).name} at iteration {iteration}; "
                         f"checkpoint saved in {workdir / 'checkpoints'}; resume with: "
                         f"python train.py --workdir {workdir} --resume")


def chunk_lengths(total: int, longest: int, *every: int, start: int = 0) -> list[int]:
    """Chunk lengths covering iterations start..total, none over `longest`, such that every
    multiple of each `every` (and `total` itself) is a chunk end."""
    stops = sorted({m for e in every for m in range(e, total, e) if m > start} | {total})
    lengths, done = [], start
    for stop in stops:
        while stop - done > longest:
            lengths.append(longest)
            done += longest
        lengths.append(stop - done)
        done = stop
    return lengths


def check_workdir(workdir: Path, resume: bool) -> None:
    """Refuses, before any data loading or compilation, a workdir the run cannot use."""
    if workdir.exists() and not workdir.is_dir():
        raise UserError(f"workdir {workdir} exists and is not a folder")
    # A run killed before its first checkpoint leaves nothing to resume or to protect.
    holds_run = any(step.name.isdigit() for step in (workdir / "checkpoints").glob("*"))
    if resume and not holds_run:
        raise UserError(f"--resume: no checkpoints in {workdir}; run without --resume to start")
    if not resume and holds_run:
        raise UserError(f"workdir {workdir} already holds a run; pass --resume to continue it or "
                        f"choose another --workdir")
    writable_folder(workdir, "workdir")


def writable_folder(folder: Path, name: str) -> None:
    """Creates `folder` if needed and proves it writable, or raises a UserError naming it. The
    probe file is per host and process (several may share the folder); asking JAX for the
    process index would start its backend before a multi-process run is joined."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{socket.gethostname()}-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to {name} {folder}: {err.strerror or err}") from None


def resumed_config(workdir: Path, step: int | None = None, **overrides) -> Config:
    """The config of the workdir's checkpoint `step` (default: the newest intact one) with
    `overrides` (None values ignored) applied; only config.RESUMABLE fields may change."""
    manager = Checkpoints(workdir)
    try:
        saved = config_lib.from_dict(manager.metadata(step)["config"])
    finally:
        manager.close()
    requested = dataclasses.replace(
        saved, **{k: v for k, v in overrides.items() if v is not None}).validate()
    changed = config_differences(saved, requested)
    if changed:
        raise UserError(f"--resume: the checkpoint was trained with a different config "
                        f"({'; '.join(changed)}); only run length and output intervals may change")
    return requested


def prepare(config: Config) -> tuple[Config, data.Dataset]:
    """Loads the training data and returns the config completed with its image shape."""
    dataset = data.load(config.dataset, config.data_dir)
    config = dataclasses.replace(config, image_shape=tuple(dataset.images.shape[1:])).validate()
    if config.batch_size > len(dataset.images):
        raise UserError(f"batch size {config.batch_size} is larger than the dataset "
                        f"({len(dataset.images)} images)")
    return config, dataset


class _Writer:
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
            records, self.damaged = viz.read_records(metrics_path)
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
        logged = [r for r in self.records if "critic_loss" in r]
        evaluated = [r for r in self.records if "critic_loss" not in r]
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


class _Best:
    """Keeps the checkpoint whose evaluation scored the lowest Fréchet distance so far (the mean
    over batched runs) in workdir/best_checkpoint/. The state of an evaluation point is donated
    to the next chunk before its score is back, so `candidate` keeps a device copy until `offer`
    gets the score. Off without evaluation, and with several processes (only process 0 scores,
    and a save needs them all)."""

    def __init__(self, workdir: Path, writers: list[_Writer], active: bool):
        self.checkpoints = Checkpoints(workdir, best=True) if active else None
        self.best = min(self._scores(writers).values(), default=math.inf)

    @staticmethod
    def _scores(writers: list[_Writer]) -> dict[int, float]:
        """Mean Fréchet distance over the runs, per evaluated iteration, from the records."""
        by_iteration: dict[int, list[float]] = {}
        for writer in writers:
            for record in writer.records:
                key = quality_key(record)  # the averaged generator's, where there is one
                if key:
                    by_iteration.setdefault(record["iteration"], []).append(record[key])
        return {at: float(np.mean(v)) for at, v in by_iteration.items() if len(v) == len(writers)}

    def candidate(self, state):
        return jax.tree_util.tree_map(jax.numpy.copy, state) if self.checkpoints else None

    def offer(self, state, at: int, writers: list[_Writer], config: Config, identity: dict) -> None:
        score = self._scores(writers).get(at, math.inf)
        if self.checkpoints and score < self.best:
            self.best = score
            self.checkpoints.save(state, config, identity, {"fd": score, "iteration": at})

    def close(self) -> None:
        if self.checkpoints:
            self.checkpoints.close()


@jax.jit
def _finite(state) -> dict[str, jax.Array]:
    """Per part of the state: are all its floating-point values finite?"""
    parts = ("gen_params", "critic_params", "gen_stats", "critic_stats", "ema_params", "ema_stats",
             "gen_opt", "critic_opt")
    return {name: jax.numpy.all(jax.numpy.array(
        [jax.numpy.all(jax.numpy.isfinite(x)) for x in jax.tree_util.tree_leaves(getattr(state, name))
         if jax.numpy.issubdtype(x.dtype, jax.numpy.floating)])) for name in parts}


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop reads between chunks (main thread only)."""

    def __init__(self):
        self.signum: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._request)
        return self

    def _request(self, signum, frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run(config: Config, workdir: str | Path, console: Console | None = None,
        resume: bool = False, resume_from: int | None = None) -> dict:
    """Trains as `config` says and writes config.json, metrics.jsonl, samples/, checkpoints/ and
    losses.png into `workdir`; with `resume`, continues from its latest checkpoint. Returns the
    last log record (with the last evaluation's numbers, if any); with `seeds` > 1, each run writes into workdir/run-<i>/ and this returns
    the summary (also in summary.json and summary.md). In a multi-process run every process
    calls this, and only process 0 writes (checkpoints are written by orbax for all)."""
    writes = jax.process_index() == 0
    console = console if console is not None and writes else Console(stderr=True, quiet=not writes)
    workdir = Path(workdir)
    if config.tensorboard:
        require()
    check_workdir(workdir, resume)
    distributed.barrier("wgan_jax: workdir checked")  # before process 0 writes into it
    if config.seeds > 1:
        mesh = seeds.run_mesh(config)
    else:
        mesh = distributed.device_mesh(config.devices or None)
        distributed.check_batch(config, mesh)
    config, dataset = prepare(config)
    identity = dataset_identity(dataset)
    checkpoints = Checkpoints(workdir, config.keep_checkpoints)
    try:
        result = _train(config, workdir, console, resume, dataset, identity, checkpoints, mesh,
                        resume_from)
    except WriteFailed as err:
        with contextlib.suppress(Exception):  # the failure is known; closing must not mask it
            checkpoints.close()
        last = checkpoints.complete()
        kept = f"the last complete checkpoint (iteration {last}) is kept in " \
               f"{checkpoints.directory}; free space and resume with: python train.py " \
               f"--workdir {workdir} --resume" if last else "no checkpoint was completed"
        raise WriteFailed(f"{err}; {kept}") from None
    except BaseException:
        with contextlib.suppress(Exception):
            checkpoints.close()
        raise
    checkpoints.close()
    return result


def _train(config: Config, workdir: Path, console: Console, resume: bool, dataset: data.Dataset,
           identity: dict, checkpoints: Checkpoints, mesh: jax.sharding.Mesh,
           resume_from: int | None = None) -> dict | list:
    batched = config.seeds > 1  # a leading run axis on every leaf of the state (wgan_jax.seeds)
    program = config.program()  # what the compiled functions see: one compilation across resumes
    runs = seeds.run_configs(config) if batched else [config]
    # Several devices: data parallel (the same steps, the batch split over them, the state
    # replicated), or with batched runs, whole runs per device. One device: the state committed
    # to it, as a restored one is, so a fresh run and its resumes share one compilation.
    parallel = mesh.devices.size > 1
    if parallel:
        placement = seeds.sharding(mesh) if batched else distributed.replicated(mesh)
    else:
        placement = jax.sharding.SingleDeviceSharding(mesh.devices.flat[0])
    if resume:
        saved = checkpoints.metadata(resume_from)["dataset"]
        if saved != identity:
            raise UserError(f"--resume: the checkpoint was trained on {saved['source']} "
                            f"{saved['shape']} (sha256 {saved['sha256'][:12]}), not on "
                            f"{identity['source']} {identity['shape']} (sha256 {identity['sha256'][:12]})")
        state = checkpoints.restore(config, resume_from, sharding=placement)
    else:
        state = seeds.init_states(program) if batched else init_state(program, jax.random.PRNGKey(config.seed))
    start = iteration_of(state)
    if start >= config.iterations:
        raise UserError(f"--resume: the checkpoint is at iteration {start}; pass --iterations "
                        f"above {start} to train further")
    moved = checkpoints.set_aside_after(start) if resume else []
    if moved:
        console.print(f"Resuming from iteration {start}: moved the newer checkpoint(s) "
                      f"{', '.join(map(str, moved))} to {workdir / 'set_aside_checkpoints'}")
    evaluators = []
    if config.eval_every and classifier.available(config.dataset):
        evaluators = [Evaluator(run) for run in runs]
    elif config.eval_every:
        console.print(f"No evaluation classifier for {config.dataset}: sample-quality metrics off.")
    writes = jax.process_index() == 0
    layout = {"mesh_devices": [str(d) for d in mesh.devices.flat]}  # the devices this run uses
    writers = [_Writer(workdir / f"run-{i}" if batched else workdir, run, dataset, start, writes,
                       {**layout, "run": i, "batched_runs": config.seeds} if batched else layout,
                       _events_folder(workdir, i, batched) if config.tensorboard else None)
               for i, run in enumerate(runs)]
    for writer in writers:
        if writer.damaged:
            console.print(f"{writer.workdir / 'metrics.jsonl'}: dropped {writer.damaged} damaged "
                          f"line(s) (a write cut off by a crash?); kept the "
                          f"{len(writer.records)} complete records up to iteration {start}")
    best = _Best(workdir, writers, bool(evaluators) and jax.process_count() == 1)
    clock = time.perf_counter()
    images = jax.device_put(dataset.images)
    chunk, generate, mesh_scope = steps.train_chunk, steps.generate, contextlib.nullcontext()
    if batched:
        chunk = functools.partial(seeds.train_chunk, mesh=mesh)
        generate = functools.partial(seeds.generate, mesh=mesh)
        fixed_z = seeds.sample_noise(config, SAMPLE_COUNT)
    else:
        fixed_z = jax.random.normal(stream(jax.random.PRNGKey(config.seed), SAMPLES),
                                    (SAMPLE_COUNT, config.latent_dim))
    state = jax.device_put(state, placement)
    if parallel:
        images, mesh_scope = distributed.replicate(images, mesh), jax.set_mesh(mesh)
        if not batched:
            chunk = distributed.train_chunk(mesh)
    every = (config.log_every, config.sample_every, config.checkpoint_every, config.eval_every)
    lengths = chunk_lengths(config.iterations, config.iters_per_dispatch, *filter(None, every),
                            start=start)

    columns = (TextColumn("[bold]WGAN"), BarColumn(), MofNCompleteColumn(), TextColumn("iterations"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
               TextColumn("W estimate {task.fields[w]}"))
    pending: list[tuple] = []  # this chunk's reads, done once the next chunk is in flight
    unlogged: list[dict] = []  # device metrics since the last log point
    iteration = start

    def of_run(tree, i: int):
        return jax.tree_util.tree_map(lambda x: x[i], tree) if batched else tree

    def read_back(progress, task) -> None:
        for kind, at, payload in pending:
            if kind == "samples":
                grids = np.asarray(payload)
                for i, writer in enumerate(writers):
                    writer.samples(of_run(grids, i), f"iter_{at:06d}", at)
                continue
            if kind == "eval":
                outputs, candidate = payload
                if writes:  # the host-side metrics; only process 0 keeps records
                    for evaluator, writer, output in zip(evaluators, writers, outputs):
                        writer.log({"iteration": at, **evaluator.finish(output),
                                    "seconds": round(time.perf_counter() - clock, 3)})
                best.offer(candidate, at, writers, config, identity)
                continue
            host = jax.device_get(payload)
            for i, (run, writer) in enumerate(zip(runs, writers)):
                record = {"iteration": at}
                for name in sorted(host[0]):
                    values = np.concatenate([np.atleast_1d(of_run(m[name], i)) for m in host])
                    if not np.all(np.isfinite(values)):
                        which = f" in run {i} (seed {run.seed}, clip {run.clip:g}, lr {run.lr:g})" \
                            if batched else ""
                        raise TrainingDiverged(f"{name} became non-finite{which} by iteration {at}"
                                               f"{_last_good(checkpoints)}; lower --lr or check the data")
                    record[name] = float(values.mean())
                record["seconds"] = round(time.perf_counter() - clock, 3)
                writer.log(record)
                if config.keras_exact and not batched and writes:  # the seed's own line, to stdout
                    print("%d [D loss: %f] [G loss: %f]" % (at - 1, record["seed_d_loss"],
                                                            record["seed_g_loss"]), flush=True)
            estimate = np.mean([w.records[-1]["wasserstein_estimate"] for w in writers])
            progress.update(task, completed=at, w=f"{estimate:.3g}")
        pending.clear()

    def save_checkpoint() -> None:
        bad = [name for name, ok in jax.device_get(_finite(state)).items() if not ok]
        if bad:
            raise TrainingDiverged(f"non-finite values in {', '.join(bad)} at iteration "
                                   f"{iteration}{_last_good(checkpoints)}; lower --lr")
        checkpoints.save(state, config, identity)

    try:
        with Progress(*columns, console=console) as progress, _StopRequest() as stop, mesh_scope:
            task = progress.add_task("train", total=config.iterations, completed=start, w="-")
            for length in lengths:
                state, metrics = chunk(state, images, program, length)
                read_back(progress, task)  # the previous chunk's, while this one runs
                iteration += length
                unlogged.append(metrics)
                stopping = _stopping(stop, iteration, config)
                if iteration % config.log_every == 0 or iteration == config.iterations \
                        or stopping:  # a stop logs its partial interval too
                    pending.append(("log", iteration, list(unlogged)))
                    unlogged.clear()
                if iteration % config.sample_every == 0 or stopping:
                    pending.append(("samples", iteration, generate(state, fixed_z, program)))
                if evaluators and not stopping and (
                        iteration % config.eval_every == 0 or iteration == config.iterations):
                    pending.append(("eval", iteration, ([
                        evaluator.dispatch(of_run(state, i), program)
                        for i, evaluator in enumerate(evaluators)], best.candidate(state))))
                if iteration % config.checkpoint_every == 0 or iteration == config.iterations \
                        or stopping:
                    save_checkpoint()
                if stopping:
                    break
            read_back(progress, task)
        if stopping:
            raise Interrupted(stop.signum or signal.SIGTERM, iteration, workdir)
        finals = np.asarray(generate(state, fixed_z, program))
        for i, writer in enumerate(writers):
            writer.samples(of_run(finals, i), "final", config.iterations)
    except BaseException:
        for close in (best.close, *(writer.close for writer in writers)):
            with contextlib.suppress(Exception):  # the error in flight says what went wrong
                close()
        raise
    best.close()
    for writer in writers:
        writer.close()
    elapsed = time.perf_counter() - clock
    done = config.iterations - start
    timing = (f"done: {done} iterations{f' of {config.seeds} runs' if batched else ''} in "
              f"{elapsed:.1f} s ({1000 * elapsed / done:.1f} ms/iteration incl. compilation and "
              f"evaluation)")
    if not batched:
        last = writers[0].final()
        quality = "".join(f", {k} {v:.4g}" for k, v in last.items() if k.startswith("fd_"))
        console.print(f"{timing}, final Wasserstein estimate "
                      f"{last.get('wasserstein_estimate', math.nan):.4g}{quality}, outputs in {workdir}")
        return last
    summary = seeds.summary(config, [writer.final() for writer in writers])
    if writes:
        try:
            (workdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            (workdir / "summary.md").write_text(seeds.summary_markdown(summary))
        except OSError as err:
            raise write_failed(workdir / "summary.json", err) from None
    console.print(f"{timing}, outputs in {workdir}/run-*, summary in {workdir / 'summary.md'}")
    for name, stat in summary["stats"].items():
        if name == "wasserstein_estimate" or name.startswith("fd_"):
            console.print(f"  final {name}: {stat['mean']:.4g} +- {stat['std']:.3g} "
                          f"(min {stat['min']:.4g}, max {stat['max']:.4g})")
    return summary


def _events_folder(workdir: Path, run: int, batched: bool) -> Path:
    """WORKDIR/tensorboard, with a folder per run for batched runs (TensorBoard overlays them)."""
    return workdir / "tensorboard" / (f"run-{run}" if batched else "")


def _stopping(stop: "_StopRequest", iteration: int, config: Config) -> bool:
    """Whether to stop after this chunk. The processes of a multi-process run must agree, so
    there a signal is honoured at the next log point, where they all exchange their flags."""
    if jax.process_count() == 1:
        return stop.signum is not None
    return iteration % config.log_every == 0 and distributed.any_process(stop.signum is not None)


def _last_good(checkpoints: Checkpoints) -> str:
    latest = checkpoints.latest()
    if latest is None:
        return " (no checkpoint was saved)"
    return f"; the last good checkpoint (iteration {latest}) is kept in {checkpoints.directory}"
