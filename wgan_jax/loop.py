"""The host loop: dispatch one generator iteration of every run at a time, read metrics back only
at log points, write files.

Data flows one way: files -> device array -> the compiled programs (wgan_jax.programs) ->
metrics -> writers (wgan_jax.writers). What an iteration produces for the host (metrics, sample
images, evaluation outputs) is read back only after the next iteration has been dispatched, so
the device never waits for the host: each read is queued as a deferred call. Checkpoints are the
other host synchronisation, every `checkpoint_every` iterations. SIGINT and SIGTERM finish the
iteration in flight, save a checkpoint and a sample grid, and raise `Interrupted`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import jax
import numpy as np
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from wgan_jax import data, distributed, fid, programs, records, seeds
from wgan_jax.checkpoint import Best, Checkpoints
from wgan_jax.workdirs import check_workdir
from wgan_jax.lock import WorkdirLock
from wgan_jax.config import Config
from wgan_jax.errors import UserError, WriteFailed
from wgan_jax.evaluate import Evaluator
from wgan_jax.events import require
from wgan_jax.state import TrainState, abstract, iteration, nonfinite_parts, select
from wgan_jax.writers import Writer, events_folder, write_summary

SAMPLE_COUNT = 25  # a 5x5 grid, like the seed's sample_images
_COLUMNS = (TextColumn("[bold]WGAN"), BarColumn(), MofNCompleteColumn(), TextColumn("iterations"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("W estimate {task.fields[w]}"))


class TrainingDiverged(UserError):
    """A logged quantity or a parameter became NaN or infinite."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped the run after saving a checkpoint."""

    def __init__(self, signum: int, iteration: int, workdir: Path):
        self.signum, self.iteration, self.workdir = signum, iteration, workdir
        super().__init__(f"stopped by {signal.Signals(signum).name} at iteration {iteration}; "
                         f"checkpoint saved in {workdir / 'checkpoints'}; resume with: "
                         f"python train.py --workdir {workdir} --resume")


def due(every: int, iteration: int) -> bool:
    """Whether an interval of `every` iterations (0: never) ends at `iteration`."""
    return every > 0 and iteration % every == 0


def prepare(config: Config) -> tuple[Config, data.Splits]:
    """Loads the data's splits and returns the config completed with the images' shape."""
    splits = data.load_splits(config.data, config.data_options())
    dataset = splits.train
    config = dataclasses.replace(config, image_shape=tuple(dataset.images.shape[1:]),
                                 num_classes=_classes(config, dataset)).validate()
    if config.batch_size > len(dataset.images):
        raise UserError(f"batch size {config.batch_size} is larger than the dataset "
                        f"({len(dataset.images)} images)")
    return config, splits


def _classes(config: Config, dataset: data.Dataset) -> int:
    """The number of classes a conditional run's labels take (0 when unconditional)."""
    if not config.conditional:
        return 0
    if dataset.labels is None:
        raise UserError(f"--conditional needs labelled images (MNIST, Fashion-MNIST, a folder of "
                        f"sub-folders); {config.data} has no labels")
    count = len(dataset.classes) if dataset.classes else int(dataset.labels.max()) + 1
    if count < 2:
        raise UserError(f"--conditional needs at least two classes; {config.data} has {count}")
    return count


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop reads between iterations (main thread only)."""

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
    losses.png into `workdir`; with `resume`, continues from its latest checkpoint (or
    `resume_from`). Returns the last log record (with the last evaluation's numbers, if any);
    with `seeds` > 1, each run writes into workdir/run-<i>/ and this returns the summary (also
    in summary.json and summary.md). In a multi-process run every process calls this, and only
    process 0 writes (checkpoints are written by orbax for all)."""
    writes = jax.process_index() == 0
    console = console if console is not None and writes else Console(stderr=True, quiet=not writes)
    workdir = Path(workdir)
    if config.tensorboard:
        require()
    check_workdir(workdir, resume)
    lock = hold_workdir(workdir, writes)
    try:
        return _run(config, workdir, console, resume, resume_from)
    finally:
        lock.release()


def hold_workdir(workdir: Path, writes: bool) -> WorkdirLock:
    """The workdir's lock, taken by the process that writes; every process is refused (one
    line, exit 2) when another run holds it."""
    lock, refusal = WorkdirLock(workdir), None
    if writes:
        try:
            lock.acquire()
        except UserError as err:
            refusal = err
    if distributed.any_process(refusal is not None):
        raise refusal or UserError(f"workdir {workdir} is in use by another training run")
    return lock


def _run(config: Config, workdir: Path, console: Console, resume: bool,
         resume_from: int | None) -> dict:
    distributed.barrier("wgan_jax: workdir checked")  # before process 0 writes into it
    mesh = programs.device_mesh(config)
    config, splits = prepare(config)
    checkpoints = Checkpoints(workdir, config.keep_checkpoints)
    try:
        trainer = _Trainer(config, workdir, console, splits, checkpoints, mesh)
        result = trainer.train(trainer.start(resume, resume_from))
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


class _Trainer:
    """The host side of one training run of R runs: its programs, writers, evaluators, and the
    reads queued behind the iteration in flight."""

    def __init__(self, config: Config, workdir: Path, console: Console, splits: data.Splits,
                 checkpoints: Checkpoints, mesh: jax.sharding.Mesh):
        self.config, self.workdir, self.console, self.splits = config, workdir, console, splits
        self.dataset = splits.train
        self.checkpoints, self.identity = checkpoints, splits.train.identity()
        self.step_config = config.step()  # what the programs compile: one compilation across resumes
        self.runs = seeds.run_configs(config)
        self.programs = programs.build(self.step_config, programs.batching(config), mesh)
        self.writes = jax.process_index() == 0
        self.pending: list[Callable[[], None]] = []  # reads of the iteration in flight
        self.writers: list[Writer] = []
        self.evaluators: list[Evaluator] = []
        self.best: Best | None = None
        self.start_at = 0  # the iteration training starts from (a resumed checkpoint's)
        self.clock = time.perf_counter()

    def start(self, resume: bool, resume_from: int | None) -> TrainState:
        """The states to train: restored from a checkpoint or fresh, placed on the mesh; opens
        the outputs."""
        if resume:
            saved = self.checkpoints.metadata(resume_from)["dataset"]
            if saved != self.identity:
                raise UserError(f"--resume: the checkpoint was trained on {saved['source']} "
                                f"{saved['shape']} (sha256 {saved['sha256'][:12]}), not on "
                                f"{self.identity['source']} {self.identity['shape']} (sha256 "
                                f"{self.identity['sha256'][:12]})")
            target = abstract(seeds.init_states, self.step_config, self.programs.states_sharding)
            states = self.checkpoints.restore(target, resume_from)
        else:
            states = self.programs.place_states(seeds.init_states(self.step_config))
        self.start_at = iteration(states)
        if self.start_at >= self.config.iterations:
            raise UserError(f"--resume: the checkpoint is at iteration {self.start_at}; pass "
                            f"--iterations above {self.start_at} to train further")
        moved = self.checkpoints.set_aside_after(self.start_at) if resume else []
        if moved:
            self.console.print(f"Resuming from iteration {self.start_at}: moved the newer "
                               f"checkpoint(s) {', '.join(map(str, moved))} to "
                               f"{self.workdir / 'set_aside_checkpoints'}")
        self._open_outputs()
        return states

    def _open_outputs(self) -> None:
        """The evaluators, a writer per run (its records up to start_at kept) and the best
        checkpoint."""
        config, several = self.config, len(self.runs) > 1
        if config.eval_every:
            self.evaluators = self._evaluators()
        heldout = self.splits.heldout
        layout = {"mesh_devices": [str(d) for d in self.programs.mesh.devices.flat],
                  "heldout": self.splits.heldout_note,
                  "heldout_size": 0 if heldout is None else len(heldout.images)}
        for i, run in enumerate(self.runs):
            folder = self.workdir / f"run-{i}" if several else self.workdir
            record = {**layout, "run": i, "batched_runs": len(self.runs)} if several else layout
            events = events_folder(self.workdir, i, len(self.runs)) if config.tensorboard else None
            writer = Writer(folder, run, self.dataset, self.start_at, self.writes, record, events)
            if writer.damaged:
                self.console.print(f"{folder / 'metrics.jsonl'}: dropped {writer.damaged} damaged "
                                   f"line(s) (a write cut off by a crash?); kept the "
                                   f"{len(writer.records)} complete records up to iteration "
                                   f"{self.start_at}")
            self.writers.append(writer)
        self.best = Best(self.workdir, [w.records for w in self.writers],
                         bool(self.evaluators) and jax.process_count() == 1)

    def _evaluators(self) -> list[Evaluator]:
        """An evaluator per run, or none (saying why) where there is nothing to score with."""
        if self.splits.heldout is None:
            self.console.print(f"No held-out split ({self.splits.heldout_note}): evaluation off.")
            return []
        evaluators = [Evaluator(run, heldout=self.splits.heldout) for run in self.runs]
        if not evaluators[0].active:
            self.console.print(f"Evaluation off: no shipped classifier knows {self.config.data}, "
                               f"and FID is {_fid_off(self.config)}.")
            return []
        if not evaluators[0].fid:
            self.console.print(f"FID {_fid_off(self.config)} during training; python -m "
                               f"wgan_jax.evaluate {self.workdir} computes it afterwards.")
        return evaluators

    def train(self, states: TrainState) -> dict:
        """Trains from `states` to config.iterations; returns what `run` returns."""
        config, at, unlogged, stopping = self.config, self.start_at, [], False
        images = self.programs.place_data((self.dataset.images, self.dataset.labels)
                                          if config.conditional else self.dataset.images)
        fixed_z = self.programs.place_noise(seeds.sample_noise(config, SAMPLE_COUNT))
        try:
            with Progress(*_COLUMNS, console=self.console) as self.progress, _StopRequest() as stop:
                self.task = self.progress.add_task("train", total=config.iterations,
                                                   completed=at, w="-")
                while at < config.iterations:
                    states, metrics = self.programs.train(states, images)
                    self._read_back()  # the previous iteration's, while this one runs
                    at, stopping = at + 1, _stopping(stop, at + 1, config)
                    # every iteration, not only at logs: a run that fails between two logs
                    # leaves a bar that says where it stopped
                    self.progress.update(self.task, completed=at)
                    unlogged.append(metrics)
                    last = at == config.iterations or stopping  # a stop logs its partial interval
                    if due(config.log_every, at) or last:
                        self.pending.append(functools.partial(self._log, at, unlogged))
                        unlogged = []
                    if due(config.sample_every, at) or stopping:
                        self.pending.append(functools.partial(
                            self._samples, f"iter_{at:06d}", at, self.programs.generate(states, fixed_z)))
                    if self.evaluators and not stopping and (due(config.eval_every, at) or last):
                        self.pending.append(self._evaluation(states, at))
                    if due(config.checkpoint_every, at) or last:
                        self._save(states, at)
                    if stopping:
                        break
                self._read_back()
            if stopping:
                raise Interrupted(stop.signum or signal.SIGTERM, at, self.workdir)
            self._samples("final", at, self.programs.generate(states, fixed_z))
        except BaseException:
            self._close(quietly=True)
            raise
        self._close()
        return self._result()

    def _read_back(self) -> None:
        """Runs the queued reads of the previous iteration."""
        for read in self.pending:
            read()
        self.pending.clear()

    def _log(self, at: int, metrics: list[dict]) -> None:
        """One record per run: each metric's mean over the iterations since the last log."""
        host = jax.device_get(metrics)  # [{name: (R,)}] per iteration
        several = len(self.runs) > 1
        for i, (run, writer) in enumerate(zip(self.runs, self.writers)):
            record = {"iteration": at, "kind": records.TRAIN}
            for name in sorted(host[0]):
                values = np.array([m[name][i] for m in host])
                if not np.all(np.isfinite(values)):
                    which = f" in run {i} (seed {run.seed}, clip {run.clip:g}, lr {run.lr:g})" \
                        if several else ""
                    raise TrainingDiverged(f"{name} became non-finite{which} by iteration {at}"
                                           f"{_last_good(self.checkpoints)}; lower --lr or check "
                                           f"the data")
                record[name] = float(values.mean())
            record["seconds"] = round(time.perf_counter() - self.clock, 3)
            writer.log(record)
            if self.config.keras_exact and not several and self.writes:  # the seed's own line
                print("%d [D loss: %f] [G loss: %f]" % (at - 1, record["seed_d_loss"],
                                                        record["seed_g_loss"]), flush=True)
        estimate = np.mean([w.records[-1]["wasserstein_estimate"] for w in self.writers])
        self.progress.update(self.task, completed=at, w=f"{estimate:.3g}")

    def _samples(self, name: str, at: int, images: jax.Array) -> None:
        grids = np.asarray(images)
        for writer, grid in zip(self.writers, grids):
            writer.samples(grid, name, at)

    def _evaluation(self, states: TrainState, at: int) -> Callable[[], None]:
        """Dispatches every run's evaluation; returns the read that scores and records them."""
        outputs = [evaluator.dispatch(select(states, i), self.step_config)
                   for i, evaluator in enumerate(self.evaluators)]
        candidate = self.best.candidate(states)

        def finish() -> None:
            if self.writes:  # the host-side metrics; only process 0 keeps records
                for evaluator, writer, output in zip(self.evaluators, self.writers, outputs):
                    writer.log({"iteration": at, "kind": records.EVAL, **evaluator.finish(output),
                                "seconds": round(time.perf_counter() - self.clock, 3)})
            self.best.offer(candidate, at, [w.records for w in self.writers], self.config,
                                self.identity)
        return finish

    def _save(self, states: TrainState, at: int) -> None:
        bad = nonfinite_parts(states)
        if bad:
            raise TrainingDiverged(f"non-finite values in {', '.join(bad)} at iteration {at}"
                                   f"{_last_good(self.checkpoints)}; lower --lr")
        self.checkpoints.save(states, at, self.config, self.identity)

    def _close(self, quietly: bool = False) -> None:
        """Closes the best checkpoint and the writers; `quietly` while an error is in flight,
        which says what went wrong."""
        for close in (self.best.close, *(writer.close for writer in self.writers)):
            if quietly:
                with contextlib.suppress(Exception):
                    close()
            else:
                close()

    def _result(self) -> dict:
        """Prints the run's timing and final numbers; returns the last record, or the summary
        of several runs."""
        elapsed, done = time.perf_counter() - self.clock, self.config.iterations - self.start_at
        several = len(self.runs) > 1
        timing = (f"done: {done} iterations{f' of {len(self.runs)} runs' if several else ''} in "
                  f"{elapsed:.1f} s ({1000 * elapsed / done:.1f} ms/iteration incl. compilation "
                  f"and evaluation)")
        if not several:
            last = self.writers[0].final()
            quality = "".join(f", {k} {v:.4g}" for k, v in records.headline(last).items())
            self.console.print(f"{timing}, final Wasserstein estimate "
                               f"{last.get('wasserstein_estimate', math.nan):.4g}{quality}, "
                               f"outputs in {self.workdir}")
            return last
        summary = seeds.summary(self.config, [writer.final() for writer in self.writers])
        if self.writes:
            write_summary(self.workdir, summary)
        self.console.print(f"{timing}, outputs in {self.workdir}/run-*, summary in "
                           f"{self.workdir / 'summary.md'}")
        for name, stat in summary["stats"].items():
            if name == "wasserstein_estimate" or name in records.headline(summary["stats"]):
                self.console.print(f"  final {name}: {stat['mean']:.4g} +- {stat['std']:.3g} "
                                   f"(min {stat['min']:.4g}, max {stat['max']:.4g})")
        return summary


def _fid_off(config: Config) -> str:
    """Why FID is not computed during training, in words."""
    if config.eval_fid == "off":
        return "off (eval_fid off)"
    if not fid.available():
        return f"not installed ({fid.INSTALL})"
    return "off on a CPU by default (minutes per evaluation; --set eval_fid=on)"


def _stopping(stop: _StopRequest, iteration: int, config: Config) -> bool:
    """Whether to stop after this iteration. The processes of a multi-process run must agree, so
    there a signal is honoured at the next log point, where they all exchange their flags."""
    if jax.process_count() == 1:
        return stop.signum is not None
    return due(config.log_every, iteration) and distributed.any_process(stop.signum is not None)


def _last_good(checkpoints: Checkpoints) -> str:
    latest = checkpoints.latest()
    if latest is None:
        return " (no checkpoint was saved)"
    return f"; the last good checkpoint (iteration {latest}) is kept in {checkpoints.directory}"
