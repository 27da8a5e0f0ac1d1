"""Data parallelism over the devices of a machine with JAX's own sharding (GSPMD).

One `Mesh` with a single axis, "data", over the chosen devices. The state and the dataset are
replicated; each batch the steps draw (real images, noise) is split along that axis by
`shard_batch`, and XLA partitions the rest: per-device convolutions, all-reduced gradients and
BatchNorm statistics over the global batch, so the update is the single-device update on the
same global batch, up to the order of floating-point sums. The steps stay the same pure
functions; without a mesh `shard_batch` does nothing.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wgan_jax import steps
from wgan_jax.config import Config
from wgan_jax.errors import UserError

DATA = "data"  # the mesh axis the batch is split over


def data_mesh(count: int | None = None) -> Mesh:
    """A one-axis mesh over the first `count` devices (all by default)."""
    devices = jax.devices()
    count = count or len(devices)
    if not 1 <= count <= len(devices):
        raise UserError(f"--devices {count}: this machine has {len(devices)} "
                        f"{jax.default_backend()} device(s)")
    return Mesh(np.array(devices[:count]), (DATA,))


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
