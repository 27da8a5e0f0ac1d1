"""Opening a run's checkpoint by step (an iteration, "best" or the latest) and reading its
states."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax

from wgan_jax.ckpt.store import BEST, Checkpoints
from wgan_jax.config import Config, StepConfig
from wgan_jax.core.state import TrainState, abstract
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
