"""Starting a run from another run's networks (`config.training.init_from`): fine-tuning.

The new run takes the source checkpoint's networks, BatchNorm statistics, optimizer states and
averaged generator wherever its own state has the same leaf, and its own fresh values for the
rest: root key, learning rates, clip bound and counters (the new run starts at iteration 0 with
its own random streams). Two kinds of leaf are new in a conditional run started from an
unconditional one, and both start where the unconditional networks compute exactly what they
did: the generator's first kernel gains input rows for the label embedding, which start at zero,
and the critic's projection embedding starts at zero anyway (wgan_jax.core.layers.projected).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from wgan_jax.ckpt import parse_step, read_states
from wgan_jax.config import Config
from wgan_jax.core.runs import init_states
from wgan_jax.core.state import TrainState
from wgan_jax.errors import UserError


# What a fine-tuning run keeps of its own: the parts that are about this run, not its networks.
_OWN = ("key", "lr_critic", "lr_generator", "clip", "step", "critic_updates")


def parse_source(text: str) -> tuple[Path, int | str | None]:
    """An --init-from value: WORKDIR (its newest intact checkpoint), WORKDIR:ITERATION or
    WORKDIR:best."""
    workdir, colon, step = text.rpartition(":")
    if not colon or "/" in step:
        return Path(text), None
    return Path(workdir), parse_step(step)


def initial_states(config: Config) -> TrainState:
    """The runs' initial states (leading run axis, on the first device): fresh, with the
    networks of `config.training.init_from`'s checkpoint transplanted into them."""
    workdir, step = parse_source(config.training.init_from)
    try:
        saved = read_states(workdir, step, init_states)
    except UserError as err:
        raise UserError(f"--init-from: {err}") from None
    if tuple(saved.config.nets.image_shape) != tuple(config.nets.image_shape):
        raise UserError(f"--init-from {config.training.init_from}: that run trained on "
                        f"{_shape(saved.config.nets.image_shape)} images, this one on "
                        f"{_shape(config.nets.image_shape)}")
    return transplant(jax.device_get(init_states(config)),
                      jax.device_get(saved.states), config.training.init_from)


def transplant(fresh: TrainState, saved: TrainState, source: str) -> TrainState:
    """`fresh` with every network leaf `saved` also has taken from `saved` (run 0's for all
    runs when `saved` holds one run). A kernel that gained inputs (a generator that became
    conditional) gets the saved rows first and zeros after them; a leaf only `fresh` has keeps
    its value; any other difference of shape is an error naming the leaf."""
    saved_leaves = {jax.tree_util.keystr(path): x
                    for path, x in jax.tree_util.tree_leaves_with_path(saved)}

    def take(path, new):
        name = jax.tree_util.keystr(path)
        old = saved_leaves.get(name)
        if old is None or name.lstrip(".").split(".")[0] in _OWN:
            return new
        return _fitted(np.asarray(old), np.asarray(new), name, source)

    states = jax.tree_util.tree_map_with_path(take, fresh)
    if states.ema and not saved.ema:  # the average starts at the generator it averages
        states = states.replace(ema={"params": states.gen.params, "batch_stats": states.gen.stats})
    return states


def _fitted(old: np.ndarray, new: np.ndarray, name: str, source: str) -> np.ndarray:
    """`old` in `new`'s shape and dtype: its runs broadcast, its inputs zero-padded (kernels)."""
    if old.shape[0] not in (1, new.shape[0]):
        raise UserError(f"--init-from {source}: that checkpoint holds {old.shape[0]} runs, this "
                        f"run has {new.shape[0]}; start from one run or as many as this one")
    gained_inputs = (name.endswith("['kernel']") and old.ndim == new.ndim >= 3
                     and old.shape[-1] == new.shape[-1] and old.shape[1:-2] == new.shape[1:-2]
                     and old.shape[-2] < new.shape[-2])
    if old.shape[1:] != new.shape[1:] and not gained_inputs:
        raise UserError(f"--init-from {source}: {name.lstrip('.')} differs (that run's "
                        f"{old.shape[1:]}, this run's {new.shape[1:]}): the networks must match")
    if gained_inputs:
        fitted = np.zeros((old.shape[0], *new.shape[1:]), new.dtype)
        fitted[..., :old.shape[-2], :] = old
    else:
        fitted = old.astype(new.dtype)
    return np.broadcast_to(fitted, new.shape).copy()


def _shape(shape) -> str:
    return "x".join(map(str, shape))
