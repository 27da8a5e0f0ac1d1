"""Opening a run's checkpoint by step (an iteration, "best" or the latest) and reading its
states."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax

from wgan_jax.ckpt.store import BEST, Checkpoints
from wgan_jax.config import Config
from wgan_jax.core.generation import variables_of
from wgan_jax.core.runs import init_states, run_configs
from wgan_jax.core.state import TrainState, abstract, select
from wgan_jax.errors import UserError


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
                init: Callable[[Config], TrainState]) -> Saved:
    """A run's checkpoint `step` (an iteration, "best", or None: the latest), its states shaped
    as `init(config)` returns them (wgan_jax.core.runs.init_states), on this process's first
    device."""
    manager, step = open_step(workdir, step)
    try:
        config = manager.config(step)
        target = abstract(init, config,
                          jax.sharding.SingleDeviceSharding(jax.local_devices()[0]))
        return Saved(config, manager.restore(target, step), manager.metadata(step)["dataset"])
    finally:
        manager.close()


def read_run(workdir: Path, step: int | str | None, run: int | None = None,
             several: str = "; pick one with --run 0..{last}") -> tuple[Config, TrainState, dict]:
    """Run `run` of a workdir's checkpoint `step` (an iteration, "best", or None: the latest):
    its config as that single run's (its own seed, clip and learning rates), its state (without
    the run axis) and the training data's identity. `run` None asks for the only run: a folder
    of batched runs is then a one-line error, "WORKDIR holds N batched runs" and `several`
    ({last}: the last run's index). The one loader of a run's generator: sample, evaluate and
    export read a run through it."""
    saved = read_states(workdir, step, init_states)
    count = saved.config.runs.seeds
    if run is None and count > 1:
        raise UserError(f"{workdir} holds {count} batched runs{several.format(last=count - 1)}")
    if run not in (None, 0) and count == 1:
        raise UserError(f"{workdir} holds one run; --run {run} does not exist")
    if run is not None and not 0 <= run < count:
        raise UserError(f"--run {run}: {workdir} holds runs 0..{count - 1}")
    index = run or 0
    return run_configs(saved.config)[index], select(saved.states, index), saved.dataset


def generator_variables(config: Config, state: TrainState, averaged: bool = True) -> dict:
    """The variables a run's images are drawn with, on the host: the averaged generator's where
    the run kept one (unless `averaged` is False), else the trained one's."""
    averaged = averaged and bool(config.averaging.ema)
    return jax.device_get(variables_of(state, config.program(), averaged))
