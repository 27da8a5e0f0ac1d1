"""Checkpoints of the whole training state with orbax, for exact resume.

`Checkpoints` reads and writes a workdir's checkpoints; `Best` keeps the best-scoring one.
A checkpoint holds the `TrainState` pytree (both networks' params and BatchNorm statistics, both
RMSprop states, the root PRNG key and both update counters) plus, as JSON, the resolved config and
the dataset's identity. Every random draw is a function of the root key and the counters, so
restoring them continues the run exactly. orbax writes each step into a temporary folder and
renames it when complete: a crash mid-write leaves the previous checkpoint as the latest.
Saves are asynchronous: `save` returns once the state is copied off the device, and the files are
written in a background thread while training goes on (benchmarks/NOTES.md); the next save,
`latest` and `close` wait for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from wgan_jax import config as config_lib
from wgan_jax import paths
from wgan_jax import records as records_lib
from wgan_jax.config import Config, StepConfig
from wgan_jax.errors import UserError, WriteFailed, first_line, write_failed
from wgan_jax.core.state import TrainState, abstract

paths.literal_glob_base()


# Where a run keeps the checkpoint whose evaluation scored best (lowest Fréchet distance).
BEST = "best_checkpoint"
# Where a resume moves the checkpoints newer than the one it continues from.
SET_ASIDE = "set_aside_checkpoints"


def parse_step(text: str) -> int | str:
    """A --step value: an iteration, or "best"."""
    if text == "best":
        return text
    try:
        return int(text)
    except ValueError:
        raise UserError(f"--step must be an iteration or 'best', got {text!r}") from None


def open_step(workdir: Path, step: int | str | None) -> tuple["Checkpoints", int | None]:
    """The manager holding a run's checkpoint `step` (an iteration; "best", the best-scoring one;
    None, the latest), and the step to ask it for. The caller closes the manager."""
    if step == "best":
        if not (workdir / BEST).is_dir():
            raise UserError(f"{workdir} has no best checkpoint (a run keeps one when it evaluates)")
        return Checkpoints(workdir, best=True, read_only=True), None
    if not (workdir / "checkpoints").is_dir():
        raise UserError(f"{workdir}: no checkpoints folder; is this a training workdir?")
    manager = Checkpoints(workdir, read_only=True)
    steps = manager.manager.all_steps()
    if step is not None and step not in steps:
        manager.close()
        raise UserError(f"{workdir} has no checkpoint at step {step} (it has "
                        f"{', '.join(map(str, steps)) or 'none'})")
    return manager, step


class Saved(NamedTuple):
    """What a run's checkpoint holds."""

    config: Config
    states: TrainState  # with the leading run axis
    dataset: dict[str, Any]  # the training data's identity (`data.Dataset.identity`)


def read_states(workdir: Path, step: int | str | None,
                init: Callable[[StepConfig], TrainState]) -> Saved:
    """A run's checkpoint `step` (an iteration, "best", or None: the latest), its states shaped
    as `init(config.step())` returns them (wgan_jax.seeds.init_states), on this process's first
    device."""
    manager, step = open_step(workdir, step)
    try:
        config = manager.config(step)
        target = abstract(init, config.step(),
                          jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
        return Saved(config, manager.restore(target, step), manager.metadata(step)["dataset"])
    finally:
        manager.close()


class _Damaged(Exception):
    """A checkpoint whose files cannot be read: truncated, missing or garbage."""


def _key_name(key) -> str:
    return str(getattr(key, "name", getattr(key, "key", getattr(key, "idx", key))))


def _shapes(tree) -> dict[tuple[str, ...], tuple[int, ...]]:
    """Each leaf's path (as names) and shape."""
    return {tuple(_key_name(k) for k in path): tuple(leaf.shape)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree) if hasattr(leaf, "shape")}


def _closed_loop(exc: BaseException | None) -> bool:
    return isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed"


def _quiet_closed_loop() -> None:
    """Drops one traceback: when a write of an asynchronous save fails (a full disk), orbax
    closes the event loop awaiting the save while the save's other tensorstore writes are in
    flight; each that ends later calls back into the closed loop from a tensorstore thread, and
    Python prints that callback's RuntimeError (through sys.excepthook, or as unraisable). The
    failure itself is reported in one line (WriteFailed); nothing else is hidden."""
    if getattr(sys.excepthook, "quiet_closed_loop", False):
        return
    excepthook, unraisablehook = sys.excepthook, sys.unraisablehook

    def except_hook(kind, value, traceback) -> None:
        if not _closed_loop(value):
            excepthook(kind, value, traceback)

    def unraisable_hook(unraisable) -> None:
        if not _closed_loop(unraisable.exc_value):
            unraisablehook(unraisable)

    except_hook.quiet_closed_loop = True
    sys.excepthook, sys.unraisablehook = except_hook, unraisable_hook


class Checkpoints:
    """The checkpoints of one workdir: `workdir/checkpoints/<iteration>/`, or with `best` the one
    best-scoring checkpoint, `workdir/best_checkpoint/<iteration>/`; `read_only`, a reader's
    view, which creates and clears nothing."""

    def __init__(self, workdir: str | Path, keep: int = 3, best: bool = False,
                 read_only: bool = False):
        # orbax logs every save at INFO through absl; a run's own progress bar says enough. A
        # failed background save it logs at ERROR with its traceback, and raises to the caller
        # too, where the loop reports it in one line (errors.WriteFailed).
        logging.getLogger("absl").setLevel(logging.CRITICAL)
        _quiet_closed_loop()
        self.directory = Path(workdir).absolute() / (BEST if best else "checkpoints")
        # Only the run that writes (holding the workdir's lock) may clear half-written step
        # folders: a reader (resume's config check, sample, evaluate) would delete the save a
        # running training has in flight.
        options = ocp.CheckpointManagerOptions(max_to_keep=1 if best else keep,
                                               create=not read_only, read_only=read_only,
                                               enable_async_checkpointing=True,
                                               cleanup_tmp_directories=not read_only)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def latest(self) -> int | None:
        """The newest complete checkpoint's iteration (after any save in flight ends)."""
        self._wait()
        return self.manager.latest_step()

    def complete(self) -> int | None:
        """The newest checkpoint written completely, without waiting for one in flight (after a
        failed write: orbax renames a step's folder into place only once it is whole)."""
        steps = self.manager.all_steps()
        return max(steps) if steps else None

    def _wait(self) -> None:
        """Waits for the save in flight; its failure (a full disk, say) is a WriteFailed."""
        try:
            self.manager.wait_until_finished()
        except Exception as err:  # noqa: BLE001 - orbax re-raises the writer thread's error
            raise self._failed(err) from None

    def _failed(self, err: Exception) -> WriteFailed:
        """The one-line WriteFailed for a failed save. Its sibling writes' results are never
        read once one has failed: asyncio would log each as an error when it is collected."""
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        return write_failed(f"a checkpoint in {self.directory}", err)

    def save(self, state: TrainState, step: int, config: Config, dataset: dict[str, Any],
             score: dict[str, float] | None = None) -> None:
        """Writes the state as checkpoint `step` (the loop's iteration count), with the config,
        the dataset's identity and, for a best checkpoint, the evaluation `score` that made it
        the best."""
        meta = {"config": config_lib.to_dict(config), "dataset": dataset,
                **({"score": score} if score else {})}
        try:
            self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                            meta=ocp.args.JsonSave(meta)),
                              force=True)
        except WriteFailed:
            raise
        except Exception as err:  # noqa: BLE001 - this save's, or the previous async save's
            raise self._failed(err) from None

    def config(self, step: int | None = None) -> Config:
        """The config checkpoint `step` (default: the newest intact one) was trained with."""
        fields = self.metadata(step)["config"]
        try:
            return config_lib.from_dict(fields)
        except UserError as err:
            raise UserError(f"the checkpoints in {self.directory} hold a config this version "
                            f"does not read ({err}); were they written by an older wgan_jax?") from None

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        """The config and dataset identity stored with checkpoint `step`; by default the newest
        whose metadata reads (a damaged one is skipped with a warning)."""
        skipped = []
        for candidate in self._candidates(step):
            try:
                args = ocp.args.Composite(meta=ocp.args.JsonRestore())
                return self.manager.restore(candidate, args=args)["meta"]
            except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many types
                skipped.append(self._damaged(candidate, err, step))
        raise self._none_intact(skipped)

    def restore(self, abstract: TrainState, step: int | None = None) -> TrainState:
        """The state saved at `step` (by default the newest intact checkpoint: damaged ones are
        skipped with a one-line warning), read into `abstract`'s shapes, dtypes and shardings
        (every process of a multi-host run reads its own parts). A checkpoint of another
        state is an error."""
        skipped = []
        for candidate in self._candidates(step):
            try:
                self._check_layout(candidate, abstract)
                return self._read(candidate, abstract)
            except _Damaged as err:
                skipped.append(self._damaged(candidate, err, step))
        raise self._none_intact(skipped)

    def set_aside_after(self, step: int) -> list[int]:
        """Moves the checkpoints newer than `step` (damaged ones skipped on resume, or those a
        --resume-from an older step supersedes) into workdir/set_aside_checkpoints/, where they
        are kept but no longer read, so the resumed run can write those steps again."""
        self.manager.wait_until_finished()
        newer = sorted(s for s in self.manager.all_steps() if s > step)
        folder = self.directory.parent / SET_ASIDE
        for s in newer:
            target = folder / str(s)
            while target.exists():
                target = target.with_name(target.name + "-again")
            folder.mkdir(exist_ok=True)
            shutil.move(str(self.directory / str(s)), str(target))
        if newer:
            self.manager.reload()
        return newer

    def _candidates(self, step: int | None) -> list[int]:
        """The steps to try: `step`, or every step, newest first."""
        self.manager.wait_until_finished()
        steps = sorted(self.manager.all_steps(), reverse=True)
        if not steps:
            raise UserError(f"no checkpoint in {self.directory}")
        if step is not None and step not in steps:
            raise UserError(f"no checkpoint at step {step} in {self.directory} (there are "
                            f"{', '.join(map(str, sorted(steps)))})")
        return steps if step is None else [step]

    def _damaged(self, candidate: int, err: Exception, asked: int | None) -> int:
        """A damaged checkpoint: an error when it was asked for by step, else a warning; returns
        the step skipped."""
        reason = first_line(err, 160)
        where = self.directory / str(candidate)
        if asked is not None:
            raise UserError(f"checkpoint {where} is damaged ({reason})") from None
        print(f"warning: checkpoint {where} is damaged ({reason}); skipped it for an older one",
              file=sys.stderr)
        return candidate

    def _none_intact(self, skipped: list[int]) -> UserError:
        return UserError(f"no intact checkpoint in {self.directory} (damaged: "
                         f"{', '.join(map(str, skipped))})")

    def _check_layout(self, step: int, abstract: TrainState) -> None:
        """Refuses a checkpoint whose state differs from `abstract`'s in any leaf's path or
        shape: one of an older wgan_jax, or of other networks or optimizers. Raises _Damaged if
        its metadata cannot be read. Runs before any array is read."""
        try:  # orbax's metadata: the global shapes (a sharded save writes shards)
            meta = ocp.PyTreeCheckpointer().metadata(self.directory / str(step) / "state")
            tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
            saved = _shapes(tree)
        except Exception as err:  # noqa: BLE001 - missing, truncated or garbage metadata
            raise _Damaged(f"unreadable metadata: {type(err).__name__}: {err}") from None
        if not saved:  # orbax answers a step whose array store does not read with no tree
            raise _Damaged("unreadable metadata: no arrays listed")
        where = self.directory / str(step)
        older = sorted({path[0] for path in saved} - {f.name for f in dataclasses.fields(abstract)})
        if older:
            raise UserError(f"checkpoint {where} has the state layout of an older wgan_jax (with "
                            f"{', '.join(older)}; now networks are gen/critic (params, stats, opt) "
                            f"with a leading run axis): this version cannot read it; train anew, "
                            f"or read it with the wgan_jax release that wrote it")
        expected = _shapes(abstract)
        if saved != expected:
            differ = sorted(set(saved.items()) ^ set(expected.items()))[0][0]
            raise UserError(f"checkpoint {where} does not match this config's networks: "
                            f"{'/'.join(differ)} differs (saved {saved.get(differ, 'none')}, "
                            f"expected {expected.get(differ, 'none')})")

    def _read(self, step: int, abstract: TrainState) -> TrainState:
        """Reads the state; raises _Damaged if the files do not read (the layout matched)."""
        try:
            args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            return self.manager.restore(step, args=args)["state"]
        except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many types
            raise _Damaged(f"{type(err).__name__}: {err}") from None

    def close(self) -> None:
        """Waits for a save in flight, then releases orbax's resources."""
        try:
            self._wait()
        finally:
            with contextlib.suppress(Exception):  # the wait has said what went wrong
                self.manager.close()


class Best:
    """Keeps the checkpoint whose evaluation scored the lowest Fréchet distance so far (the mean
    over batched runs) in workdir/best_checkpoint/. The state of an evaluation point is donated
    to the next iteration before its score is back, so `candidate` keeps a device copy until `offer`
    gets the score. Off without evaluation, and with several processes (only process 0 scores,
    and a save needs them all)."""

    def __init__(self, workdir: Path, runs_records: list[list[dict]], active: bool):
        self.checkpoints = Checkpoints(workdir, best=True) if active else None
        self.best = min(self._scores(runs_records).values(), default=math.inf)

    @staticmethod
    def _scores(runs_records: list[list[dict]]) -> dict[int, float]:
        """Mean Fréchet distance over the runs, per evaluated iteration, from each run's
        metric records."""
        by_iteration: dict[int, list[float]] = {}
        for run in runs_records:
            for record in run:
                key = records_lib.quality_key(record)  # the averaged generator's, if any
                if key:
                    by_iteration.setdefault(record["iteration"], []).append(record[key])
        return {at: float(np.mean(v)) for at, v in by_iteration.items()
                if len(v) == len(runs_records)}

    def candidate(self, state):
        return jax.tree_util.tree_map(jax.numpy.copy, state) if self.checkpoints else None

    def offer(self, state, at: int, runs_records: list[list[dict]], config: Config,
              identity: dict) -> None:
        score = self._scores(runs_records).get(at, math.inf)
        if self.checkpoints and score < self.best:
            self.best = score
            self.checkpoints.save(state, at, config, identity, {"fd": score, "iteration": at})

    def close(self) -> None:
        if self.checkpoints:
            self.checkpoints.close()
