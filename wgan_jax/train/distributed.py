"""Runs over several hosts: one process per host, all executing the same program (JAX's
multi-controller model). Every process loads the data and builds the same initial state from the
same seed; the device mesh spans the devices of all processes (wgan_jax.train.programs), the compiled
program exchanges what it must between hosts, and only process 0 writes files.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.experimental import multihost_utils

from wgan_jax.errors import UserError, first_line


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, auto: bool = False) -> None:
    """Joins a multi-process run, one process per host, before anything else touches JAX.

    The three values come from the arguments, else from JAX_COORDINATOR_ADDRESS,
    JAX_NUM_PROCESSES and JAX_PROCESS_ID; with `auto`, JAX detects them on a Cloud TPU slice,
    SLURM, Open MPI or Kubernetes. Without any of these it does nothing (one process).
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS") or None
    if num_processes is None:
        num_processes = _env_int("JAX_NUM_PROCESSES")
    if process_id is None:
        process_id = _env_int("JAX_PROCESS_ID")
    given = (coordinator, num_processes, process_id)
    if not auto and given == (None, None, None):
        return
    if not auto and None in given:
        raise UserError("a multi-process run needs --coordinator, --num-processes and "
                        "--process-id (or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
                        "JAX_PROCESS_ID), or --distributed on a TPU slice, SLURM or Open MPI")
    if num_processes is not None and num_processes < 1:
        raise UserError(f"--num-processes must be at least 1, got {num_processes}")
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise UserError(f"--process-id must be in [0, {num_processes}), got {process_id}")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError, TypeError) as err:
        raise UserError(f"cannot join the multi-process run: {first_line(err, 300)}") from None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name} must be an integer, got {value!r}") from None


def barrier(name: str) -> None:
    """Waits until every process gets here (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """True on every process if `flag` is true on any (a host round trip when several)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))
