"""Checkpoints of the whole training state with orbax, for exact resume.

A checkpoint holds the `TrainState` pytree (both networks' params and BatchNorm statistics, both
RMSprop states, the root PRNG key and both update counters) plus, as JSON, the resolved config and
the dataset's identity. Every random draw is a function of the root key and the counters, so
restoring them continues the run exactly. orbax writes each step into a temporary folder and
renames it when complete: a crash mid-write leaves the previous checkpoint as the latest.
Saves are asynchronous: `save` returns once the state is copied off the device, and the files are
written in a background thread while training goes on (measured on the seed state, 2-core CPU:
~88 ms instead of ~325 ms per save); the next save, `latest` and `close` wait for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from wgan_jax import config as config_lib
from wgan_jax import seeds
from wgan_jax.config import Config
from wgan_jax.data import Dataset
from wgan_jax.errors import UserError, WriteFailed, write_failed
from wgan_jax.state import TrainState, init_state, iteration

# Fields that may change when a run is resumed: how long it runs, what it writes and how the
# work is laid out on the devices, not what it computes.
RESUMABLE_FIELDS = (*config_lib.HOST_FIELDS, "seed_batching")
# Older state layouts, by the fields their checkpoints lack: all hold one `lr` for both networks,
# and the oldest no averaged generator either.
_OLDER_LAYOUTS = (("lr_critic", "lr_generator"),
                  ("lr_critic", "lr_generator", "ema_params", "ema_stats"))


def dataset_identity(dataset: Dataset) -> dict[str, Any]:
    """Name, size, shape and content hash of the training images."""
    return {"source": dataset.name, "shape": list(dataset.images.shape),
            "sha256": hashlib.sha256(np.ascontiguousarray(dataset.images).data).hexdigest()}


def config_differences(saved: Config, requested: Config) -> list[str]:
    """'field: saved -> requested' for each field that may not change on resume."""
    return [f"{f.name}: {getattr(saved, f.name)!r} -> {getattr(requested, f.name)!r}"
            for f in dataclasses.fields(Config)
            if f.name not in RESUMABLE_FIELDS and getattr(saved, f.name) != getattr(requested, f.name)]


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
        return Checkpoints(workdir, best=True), None
    if not (workdir / "checkpoints").is_dir():
        raise UserError(f"{workdir}: no checkpoints folder; is this a training workdir?")
    manager = Checkpoints(workdir)
    steps = manager.manager.all_steps()
    if step is not None and step not in steps:
        manager.close()
        raise UserError(f"{workdir} has no checkpoint at step {step} (it has "
                        f"{', '.join(map(str, steps)) or 'none'})")
    return manager, step


class _Damaged(Exception):
    """A checkpoint whose files cannot be read: truncated, missing or garbage."""


# The parts of the state that describe the networks (the averaged generator's included): a
# checkpoint that differs in these was trained with other networks; one that matches them but
# does not read is damaged.
_NETWORK_PARTS = ("gen_params", "gen_stats", "critic_params", "critic_stats", "ema_params",
                  "ema_stats")


def _key_name(key) -> str:
    return str(getattr(key, "name", getattr(key, "key", getattr(key, "idx", key))))


class Checkpoints:
    """The checkpoints of one workdir: `workdir/checkpoints/<iteration>/`, or with `best` the one
    best-scoring checkpoint, `workdir/best_checkpoint/<iteration>/`."""

    def __init__(self, workdir: str | Path, keep: int = 3, best: bool = False):
        # orbax logs every save at INFO through absl; a run's own progress bar says enough. A
        # failed background save it logs at ERROR with its traceback, and raises to the caller
        # too, where the loop reports it in one line (errors.WriteFailed).
        logging.getLogger("absl").setLevel(logging.CRITICAL)
        self.directory = Path(workdir).absolute() / (BEST if best else "checkpoints")
        options = ocp.CheckpointManagerOptions(max_to_keep=1 if best else keep, create=True,
                                               enable_async_checkpointing=True,
                                               cleanup_tmp_directories=True)
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
            raise write_failed(f"a checkpoint in {self.directory}", err) from None

    def save(self, state: TrainState, config: Config, dataset: dict[str, Any],
             score: dict[str, float] | None = None) -> int:
        """Writes the state at its own iteration count (with the evaluation `score` that made
        it the best, for a best checkpoint); returns that count."""
        step = iteration(state)
        meta = {"config": config_lib.to_dict(config), "dataset": dataset,
                **({"score": score} if score else {})}
        try:
            self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                            meta=ocp.args.JsonSave(meta)),
                              force=True)
        except WriteFailed:
            raise
        except Exception as err:  # noqa: BLE001 - this save's, or the previous async save's
            raise write_failed(f"a checkpoint in {self.directory}", err) from None
        return step

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        """The config and dataset identity stored with checkpoint `step`; by default the newest
        whose metadata reads (a damaged one is skipped with a warning)."""
        for candidate in self._candidates(step):
            try:
                args = ocp.args.Composite(meta=ocp.args.JsonRestore())
                return self.manager.restore(candidate, args=args)["meta"]
            except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many types
                self._damaged(candidate, err, step)
        raise self._none_intact()

    def restore(self, config: Config, step: int | None = None,
                sharding: jax.sharding.Sharding | None = None) -> TrainState:
        """The state saved at `step` (by default the newest intact checkpoint: damaged ones are
        skipped with a one-line warning), shaped as `config` says (a leading run axis when
        config.seeds > 1), placed with `sharding` (every process of a multi-host run reads its
        own copies) or on the default device. A checkpoint of other networks is an error."""
        if config.seeds > 1:
            abstract = jax.eval_shape(seeds.init_states, config)
        else:
            abstract = jax.eval_shape(init_state, config, jax.random.PRNGKey(0))
        sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree_util.tree_map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract)
        for candidate in self._candidates(step):
            try:
                self._check_networks(candidate, abstract)
                return self._read_any_layout(candidate, abstract, config)
            except _Damaged as err:
                self._damaged(candidate, err, step)
        raise self._none_intact()

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
        self._skipped: list[int] = []
        return steps if step is None else [step]

    def _damaged(self, candidate: int, err: Exception, asked: int | None) -> None:
        """A damaged checkpoint: an error when it was asked for by step, else a warning."""
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        where = self.directory / str(candidate)
        if asked is not None:
            raise UserError(f"checkpoint {where} is damaged ({reason})") from None
        self._skipped.append(candidate)
        print(f"warning: checkpoint {where} is damaged ({reason}); skipped it for an older one",
              file=sys.stderr)

    def _none_intact(self) -> UserError:
        return UserError(f"no intact checkpoint in {self.directory} (damaged: "
                         f"{', '.join(map(str, self._skipped))})")

    def _check_networks(self, step: int, abstract: TrainState) -> None:
        """Refuses a checkpoint whose networks (parameters and statistics, by path and shape)
        differ from `abstract`'s; raises _Damaged if its metadata cannot be read."""
        try:  # orbax's metadata: the global shapes (a sharded save writes shards)
            meta = ocp.PyTreeCheckpointer().metadata(self.directory / str(step) / "state")
            tree = getattr(getattr(meta, "item_metadata", meta), "tree", meta)
            saved = {tuple(_key_name(k) for k in path): tuple(leaf.shape) for path, leaf in
                     jax.tree_util.tree_leaves_with_path(tree)
                     if _key_name(path[0]) in _NETWORK_PARTS and hasattr(leaf, "shape")}
        except Exception as err:  # noqa: BLE001 - missing, truncated or garbage metadata
            raise _Damaged(f"unreadable metadata: {type(err).__name__}: {err}") from None
        expected = {tuple(_key_name(k) for k in path): tuple(leaf.shape) for path, leaf in
                    jax.tree_util.tree_leaves_with_path(abstract) if _key_name(path[0]) in _NETWORK_PARTS}
        if saved != expected:
            differ = sorted(set(saved.items()) ^ set(expected.items()))[0][0]
            raise UserError(f"checkpoint {self.directory / str(step)} does not match this "
                            f"config's networks: {'/'.join(differ)} differs (saved "
                            f"{saved.get(differ, 'none')}, expected {expected.get(differ, 'none')})")

    def _read_any_layout(self, step: int, abstract: TrainState, config: Config) -> TrainState:
        """Reads the state in the current layout or an older one; raises _Damaged if none reads
        (the networks already matched, so what fails is the files)."""
        try:
            return self._read(step, abstract)
        except Exception as err:  # noqa: BLE001 - orbax and tensorstore raise many types
            for lacking in _OLDER_LAYOUTS:
                if config.ema and "ema_params" in lacking:
                    continue  # a run with averaging has it in every checkpoint
                with contextlib.suppress(Exception):
                    return self._read_older(step, abstract, lacking)
            raise _Damaged(f"{type(err).__name__}: {err}") from None

    def _read(self, step: int, target):
        args = ocp.args.Composite(state=ocp.args.StandardRestore(target))
        return self.manager.restore(step, args=args)["state"]

    def _read_older(self, step: int, abstract: TrainState, lacking: tuple[str, ...]) -> TrainState:
        """A checkpoint of an older layout: without the `lacking` fields, and with one `lr` for
        both networks. A run without averaging has empty ema_params and ema_stats."""
        target = {f.name: getattr(abstract, f.name) for f in dataclasses.fields(abstract)
                  if f.name not in lacking}
        target["lr"] = abstract.lr_critic
        restored = self._read(step, target)
        lr = restored.pop("lr")
        empty = {name: {} for name in ("ema_params", "ema_stats") if name in lacking}
        return abstract.replace(**restored, **empty, lr_critic=lr, lr_generator=lr)

    def close(self) -> None:
        """Waits for a save in flight, then releases orbax's resources."""
        try:
            self._wait()
        finally:
            with contextlib.suppress(Exception):  # the wait has said what went wrong
                self.manager.close()
