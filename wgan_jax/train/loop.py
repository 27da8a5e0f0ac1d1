"""The host loop: dispatch one generator iteration of every run at a time, read metrics back only
at log points, write files.

Data flows one way: files -> device array (or, streamed, each iteration's batches: wgan_jax.train.feed)
-> the compiled programs (wgan_jax.train.programs) -> metrics -> writers (wgan_jax.train.writers). What an iteration produces for the host (metrics, sample
images, evaluation outputs) is read back only after the next iteration has been dispatched, so
the device never waits for the host: each read is queued as a deferred call. Checkpoints are the
other host synchronisation, every `checkpoint_every` iterations. SIGINT and SIGTERM finish the
iteration in flight, save a checkpoint and a sample grid, and raise `Interrupted`.
"""

from __future__ import annotations

import contextlib
import functools
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

from wgan_jax import data, terminal
from wgan_jax.ckpt import Checkpoints
from wgan_jax.config import Config
from wgan_jax.core.runs import sample_noise
from wgan_jax.core.state import TrainState, nonfinite_parts, select
from wgan_jax.errors import UserError, WriteFailed
from wgan_jax.eval import records
from wgan_jax.train import distributed, feed, programs, start
from wgan_jax.train.events import require
from wgan_jax.train.outputs import Outputs
from wgan_jax.train.workdirs import check_workdir


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
        resume: bool = False, resume_from: int | None = None,
        notice: Callable[[Config], str | None] | None = None) -> dict:
    """Trains as `config` says and writes config.json, metrics.jsonl, samples/, checkpoints/ and
    losses.png into `workdir`; with `resume`, continues from its latest checkpoint (or
    `resume_from`). Returns the last log record (with the last evaluation's numbers, if any);
    with `seeds` > 1, each run writes into workdir/run-<i>/ and this returns the summary (also
    in summary.json and summary.md). In a multi-process run every process calls this, and only
    process 0 writes (checkpoints are written by orbax for all). `notice`, given the config
    completed by the data (its image shape), says what to tell the user before compiling
    (train.py's CPU estimate)."""
    writes = jax.process_index() == 0
    console = console if console is not None and writes else terminal.console(quiet=not writes)
    workdir = Path(workdir)
    if config.outputs.tensorboard:
        require()
    check_workdir(workdir, resume)
    lock = start.hold_workdir(workdir, writes)
    try:
        return _run(config, workdir, console, resume, resume_from, notice)
    finally:
        lock.release()


def _run(config: Config, workdir: Path, console: Console, resume: bool,
         resume_from: int | None, notice: Callable[[Config], str | None] | None) -> dict:
    distributed.barrier("wgan_jax: workdir checked")  # before process 0 writes into it
    mesh = programs.device_mesh(config)
    config, splits = start.prepare(config)
    where = start.place(config, splits.train)
    for told in (where.line, notice(config) if notice is not None else None):
        if told:
            console.print(told)
    checkpoints = Checkpoints(workdir, config.outputs.keep_checkpoints)
    try:
        built = programs.build(config, programs.batching(config), mesh,
                               streamed=where.mode == "stream")
        states = start.initial_states(checkpoints, built, config, splits.train.identity(),
                                resume, resume_from)
        start_at = start.start_at(states, checkpoints, config, console, resume)
        result = _Trainer(config, workdir, console, splits, checkpoints, built,
                          start_at).train(states)
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
    """The host side of one training run of R runs: its programs, its outputs, and the reads
    queued behind the iteration in flight."""

    def __init__(self, config: Config, workdir: Path, console: Console, splits: data.Splits,
                 checkpoints: Checkpoints, built: programs.Programs, start_at: int):
        self.config, self.workdir, self.checkpoints = config, workdir, checkpoints
        self.programs, self.start_at = built, start_at
        self.feed = feed.feed(config, built, splits.train, start_at)
        self.program = config.program()
        self.identity = splits.train.identity()
        self.outputs = Outputs(config, workdir, console, splits, start_at,
                               [str(d) for d in built.mesh.devices.flat])
        self.pending: list[Callable[[], None]] = []  # reads of the iteration in flight
        self.progress = Progress(*_COLUMNS, console=console)
        self.task = self.progress.add_task("train", total=config.training.iterations, completed=start_at,
                                           w="-")
        self.clock = time.perf_counter()

    def train(self, states: TrainState) -> dict:
        """Trains from `states` to config.training.iterations; returns what `run` returns."""
        config, at, unlogged, stopping = self.config, self.start_at, [], False
        fixed_z = self.programs.place_noise(sample_noise(config, SAMPLE_COUNT))
        try:
            with self.progress, _StopRequest() as stop:
                while at < config.training.iterations:
                    states, metrics = self.programs.iteration(states, self.feed(at), at)
                    self._read_back()  # the previous iteration's, while this one runs
                    at, stopping = at + 1, _stopping(stop, at + 1, config)
                    # every iteration, not only at logs: a run that fails between two logs
                    # leaves a bar that says where it stopped
                    self.progress.update(self.task, completed=at)
                    unlogged.append(metrics)
                    last = at == config.training.iterations or stopping  # a stop logs its partial interval
                    if due(config.outputs.log_every, at) or last:
                        self.pending.append(functools.partial(self._log, at, unlogged))
                        unlogged = []
                    if due(config.outputs.sample_every, at) or stopping:
                        self.pending.append(functools.partial(
                            self._samples, f"iter_{at:06d}", at, self.programs.generate(states, fixed_z)))
                    if self.outputs.evaluators and not stopping and (due(config.outputs.eval_every, at) or last):
                        self.pending.append(self._evaluation(states, at))
                    if due(config.outputs.checkpoint_every, at) or last:
                        self._save(states, at)
                    if stopping:
                        break
                self._read_back()
            if stopping:
                raise Interrupted(stop.signum or signal.SIGTERM, at, self.workdir)
            self._samples("final", at, self.programs.generate(states, fixed_z))
        except BaseException:
            self.outputs.close(quietly=True)
            raise
        self.outputs.close()
        return self.outputs.result(config.training.iterations - self.start_at,
                                   time.perf_counter() - self.clock)

    def _read_back(self) -> None:
        """Runs the queued reads of the previous iteration."""
        for read in self.pending:
            read()
        self.pending.clear()

    def _log(self, at: int, metrics: list[dict]) -> None:
        """One record per run: each metric's mean over the iterations since the last log."""
        host = jax.device_get(metrics)  # [{name: (R,)}] per iteration
        runs, several = self.outputs.runs, self.outputs.several
        for i, (run, writer) in enumerate(zip(runs, self.outputs.writers)):
            record = {"iteration": at, "kind": records.TRAIN}
            for name in sorted(host[0]):
                values = np.array([m[name][i] for m in host])
                if not np.all(np.isfinite(values)):
                    which = f" in run {i} (seed {run.runs.seed}, clip {run.runs.clip:g}, lr {run.runs.lr:g})" \
                        if several else ""
                    raise TrainingDiverged(f"{name} became non-finite{which} by iteration {at}"
                                           f"{_last_good(self.checkpoints)}; lower --lr or check "
                                           f"the data")
                record[name] = float(values.mean())
            record["seconds"] = round(time.perf_counter() - self.clock, 3)
            writer.log(record)
            if self.config.algorithm.keras_exact and not several and self.outputs.writes:  # the seed's line
                print("%d [D loss: %f] [G loss: %f]" % (at - 1, record["seed_d_loss"],
                                                        record["seed_g_loss"]), flush=True)
        estimate = np.mean([run[-1]["wasserstein_estimate"] for run in self.outputs.records()])
        self.progress.update(self.task, completed=at, w=f"{estimate:.3g}")

    def _samples(self, name: str, at: int, images: jax.Array) -> None:
        self.outputs.samples(name, at, np.asarray(images))

    def _evaluation(self, states: TrainState, at: int) -> Callable[[], None]:
        """Dispatches every run's evaluation; returns the read that scores and records them."""
        outputs = [evaluator.dispatch(select(states, i), self.program)
                   for i, evaluator in enumerate(self.outputs.evaluators)]
        candidate = self.outputs.best.candidate(states)

        def finish() -> None:
            self.outputs.evaluated(at, outputs, time.perf_counter() - self.clock)
            self.outputs.best.offer(candidate, at, self.outputs.records(), self.config,
                                    self.identity)
        return finish

    def _save(self, states: TrainState, at: int) -> None:
        bad = nonfinite_parts(states)
        if bad:
            raise TrainingDiverged(f"non-finite values in {', '.join(bad)} at iteration {at}"
                                   f"{_last_good(self.checkpoints)}; lower --lr")
        self.checkpoints.save(states, at, self.config, self.identity)


def _stopping(stop: _StopRequest, iteration: int, config: Config) -> bool:
    """Whether to stop after this iteration. The processes of a multi-process run must agree, so
    there a signal is honoured at the next log point, where they all exchange their flags."""
    if jax.process_count() == 1:
        return stop.signum is not None
    return due(config.outputs.log_every, iteration) and distributed.any_process(stop.signum is not None)


def _last_good(checkpoints: Checkpoints) -> str:
    latest = checkpoints.latest()
    if latest is None:
        return " (no checkpoint was saved)"
    return f"; the last good checkpoint (iteration {latest}) is kept in {checkpoints.directory}"
