"""What a training run settles before its first iteration: the data (and what it tells the
config: the image shape, the classes), where the images live, the workdir's lock, and the
states it starts from (fresh, warm-started, or a checkpoint's, which must have trained on the
same data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console

from wgan_jax import data
from wgan_jax.ckpt import SET_ASIDE, Checkpoints
from wgan_jax.config import Config
from wgan_jax.core.runs import init_states
from wgan_jax.core.state import TrainState, abstract, iteration
from wgan_jax.data import placement
from wgan_jax.errors import UserError
from wgan_jax.train import distributed, programs, warmstart
from wgan_jax.train.lock import WorkdirLock


def prepare(config: Config) -> tuple[Config, data.Splits]:
    """Loads the data's splits and returns the config completed with the images' shape."""
    splits = data.load_splits(config.data.source, config.data.options())
    dataset = splits.train
    config = config.replace(image_shape=tuple(dataset.images.shape[1:]),
                            num_classes=_classes(config, dataset)).validate()
    if config.algorithm.batch_size > len(dataset.images):
        raise UserError(f"batch size {config.algorithm.batch_size} is larger than the dataset "
                        f"({len(dataset.images)} images)")
    return config, splits


def place(config: Config, train: data.Dataset) -> placement.Placement:
    """Where the training images live for this run (config.data.placement, "auto" decided by
    their decoded size against the memory budget)."""
    count, *shape = train.images.shape
    what = f"{count} images of {'x'.join(map(str, shape))}"
    source = ("the memory-mapped cache on disk" if isinstance(train.images, np.memmap)
              else "host memory")
    return placement.decide(config.data.placement, train.nbytes, what, source)


def _classes(config: Config, dataset: data.Dataset) -> int:
    """The number of classes a conditional run's labels take (0 when unconditional)."""
    if not config.nets.conditional:
        return 0
    if dataset.labels is None:
        raise UserError(f"--conditional needs labelled images (MNIST, Fashion-MNIST, a folder of "
                        f"sub-folders); {config.data.source} has no labels")
    count = len(dataset.classes) if dataset.classes else int(dataset.labels.max()) + 1
    if count < 2:
        raise UserError(f"--conditional needs at least two classes; {config.data.source} has {count}")
    return count


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


def initial_states(checkpoints: Checkpoints, built: programs.Programs, config: Config,
                   identity: dict, resume: bool, resume_from: int | None) -> TrainState:
    """The states a run starts from, placed on the mesh: with `resume`, its checkpoint's (at
    `resume_from`, else the newest intact one), which must have trained on the same data;
    else fresh ones, with config.training.init_from's networks when given."""
    if not resume:
        return built.place_states(warmstart.initial_states(config) if config.training.init_from
                                  else init_states(config))
    saved = checkpoints.metadata(resume_from)["dataset"]
    if saved != identity:
        raise UserError(f"--resume: the checkpoint was trained on {saved['source']} "
                        f"{saved['shape']} (sha256 {saved['sha256'][:12]}), not on "
                        f"{identity['source']} {identity['shape']} (sha256 "
                        f"{identity['sha256'][:12]})")
    return checkpoints.restore(abstract(init_states, config, built.states_sharding),
                               resume_from)


def start_at(states: TrainState, checkpoints: Checkpoints, config: Config, console: Console,
              resume: bool) -> int:
    """The iteration the states are at, which must be below config.training.iterations; a resume moves
    the checkpoints newer than it aside."""
    start_at = iteration(states)
    if start_at >= config.training.iterations:
        raise UserError(f"--resume: the checkpoint is at iteration {start_at}; pass "
                        f"--iterations above {start_at} to train further")
    moved = checkpoints.set_aside_after(start_at) if resume else []
    if moved:
        console.print(f"Resuming from iteration {start_at}: moved the newer checkpoint(s) "
                      f"{', '.join(map(str, moved))} to {checkpoints.directory.parent / SET_ASIDE}")
    return start_at
