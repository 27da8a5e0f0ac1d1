"""Checkpoints of the whole training state with orbax, for exact resume.

`Checkpoints` reads and writes a workdir's checkpoints (wgan_jax.ckpt.best keeps the best-scoring
one, wgan_jax.ckpt.reading opens a run's checkpoint by step, wgan_jax.ckpt.layout checks a
checkpoint's state before reading it).
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
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import orbax.checkpoint as ocp

from wgan_jax import config as config_lib, paths
from wgan_jax.ckpt import layout
from wgan_jax.config import Config
from wgan_jax.core.state import TrainState
from wgan_jax.errors import UserError, WriteFailed, first_line, write_failed


paths.literal_glob_base()

# Where a run keeps the checkpoint whose evaluation scored best (lowest Fréchet distance).
BEST = "best_checkpoint"
# Where a resume moves the checkpoints newer than the one it continues from.
SET_ASIDE = "set_aside_checkpoints"


class Checkpoints:
    """The checkpoints of one workdir: `workdir/checkpoints/<iteration>/`, or with `best` the one
    best-scoring checkpoint, `workdir/best_checkpoint/<iteration>/`; `read_only`, a reader's
    view, which creates and clears nothing."""

    def __init__(self, workdir: str | Path, keep: int = 3, best: bool = False,
                 read_only: bool = False):
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
                layout.check(self.directory / str(candidate), abstract)
                return layout.read(self.manager, candidate, abstract)
            except layout.Damaged as err:
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

    def close(self) -> None:
        """Waits for a save in flight, then releases orbax's resources."""
        try:
            self._wait()
        finally:
            with contextlib.suppress(Exception):  # the wait has said what went wrong
                self.manager.close()
