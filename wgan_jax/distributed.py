"""Data parallelism over the devices of one machine or several, with JAX's own sharding (GSPMD).

One `Mesh` with a single axis, "data", over the chosen devices (over several hosts: all devices
of all processes, after `initialize`). The state and the dataset are
replicated; each batch the steps draw (real images, noise) is split along that axis by
`shard_batch`, and XLA partitions the rest: per-device convolutions, all-reduced gradients and
BatchNorm statistics over the global batch, so the update is the single-device update on the
same global batch, up to the order of floating-point sums. The steps stay the same pure
functions; without a mesh `shard_batch` does nothing.

Several hosts run one process each, all executing the same program (JAX's multi-controller
model): every process loads the data and builds the same initial state from the same seed, the
compiled chunk exchanges gradients between hosts, and only process 0 writes files.
"""

from __future__ import annotations

import functools
import os

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wgan_jax import steps
from wgan_jax.config import Config
from wgan_jax.errors import UserError

DATA = "data"  # the mesh axis the batch is split over


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
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"cannot join the multi-process run: {first[:300]}") from None


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name} must be an integer, got {value!r}") from None


def device_mesh(count: int | None = None, axis: str = DATA) -> Mesh:
    """A one-axis mesh over the first `count` devices (all by default). With several processes
    it spans all of them: every process must own a part of the work."""
    devices = jax.devices()
    count = count or len(devices)
    if jax.process_count() > 1 and count != len(devices):
        raise UserError(f"--devices {count}: a run over {jax.process_count()} processes uses all "
                        f"{len(devices)} devices; leave --devices unset")
    if not 1 <= count <= len(devices):
        raise UserError(f"--devices {count}: this machine has {len(devices)} "
                        f"{jax.default_backend()} device(s)")
    return Mesh(np.array(devices[:count]), (axis,))


def barrier(name: str) -> None:
    """Waits until every process gets here (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def any_process(flag: bool) -> bool:
    """True on every process if `flag` is true on any (a host round trip when several)."""
    if jax.process_count() == 1:
        return flag
    return bool(np.any(multihost_utils.process_allgather(np.array(flag))))


def check_batch(config: Config, mesh: Mesh) -> None:
    devices = mesh.devices.size
    if config.batch_size % devices:
        raise UserError(f"batch size {config.batch_size} does not split over {devices} devices; "
                        f"use a multiple of {devices}")


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree, mesh: Mesh):
    """Every leaf copied to every device of the mesh."""
    return jax.device_put(tree, replicated(mesh))


@functools.lru_cache(maxsize=8)
def train_chunk(mesh: Mesh):
    """`steps.train_chunk` compiled for the mesh: state and data in replicated, state and
    metrics out replicated (explicit in/out shardings), the state donated."""
    return jax.jit(steps._train_chunk, static_argnames=("config", "length"),
                   in_shardings=(replicated(mesh), replicated(mesh)),
                   out_shardings=(replicated(mesh), replicated(mesh)), donate_argnames="state")
