"""The compiled programs of a training run: R runs (R = config.runs.seeds, 1 for a single run) on a
2-D device mesh ("runs", "data"), built by one factory from the pure steps.

Every leaf of the state has a leading run axis, split over the mesh's "runs" axis: whole runs
per device, and runs never exchange anything. Each run's batch is split over the "data" axis
(data parallel with JAX's sharding: `draws.shard_batch` marks the batch, XLA partitions the rest
and all-reduces gradients and BatchNorm statistics), and the state is replicated along it. A
single device is a 1x1 mesh. The programs are a `jax.shard_map`, manual over "runs" only,
around the runs of one device: vmapped into one program, or, on the CPU, where XLA runs vmapped
(grouped) convolutions slowly, the single-run step applied to each in turn. Metrics and images
come out replicated, so that every process of a multi-host run can read them.

The training images enter either whole, replicated on every device (data placement "device"),
or as each call's real batches drawn by the host ("stream", `draws.Drawn`, leading axes (R, U),
split over "runs" and each batch over "data").
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wgan_jax import platform
from wgan_jax.config import Config, Program
from wgan_jax.core import draws, generation, steps
from wgan_jax.core.state import TrainState, select
from wgan_jax.errors import UserError


RUNS, DATA = "runs", "data"  # the mesh axes: whole runs, and the batch of each run


def device_mesh(config: Config) -> Mesh:
    """The ("runs", "data") mesh over config.training.devices devices (0: all; all of every process when
    several run): runs spread over gcd(seeds, devices) of them, each batch over the rest."""
    devices = jax.devices()
    count = config.training.devices or len(devices)
    if jax.process_count() > 1 and count != len(devices):
        raise UserError(f"--devices {count}: a run over {jax.process_count()} processes uses all "
                        f"{len(devices)} devices; leave --devices unset")
    if not 1 <= count <= len(devices):
        raise UserError(f"--devices {count}: this machine has {len(devices)} "
                        f"{jax.default_backend()} device(s)")
    runs = math.gcd(config.runs.seeds, count)
    data = count // runs
    if config.algorithm.batch_size % data:
        which = f" (each of the {config.runs.seeds} runs gets {data} of the {count})" if runs > 1 else ""
        raise UserError(f"batch size {config.algorithm.batch_size} does not split over {data} devices"
                        f"{which}; use a multiple of {data}")
    return Mesh(np.array(devices[:count]).reshape(runs, data), (RUNS, DATA))


def batching(config: Config) -> str:
    """"vmap" or "loop": the config's seed_batching, with "auto" decided per backend."""
    if config.training.seed_batching != "auto":
        return config.training.seed_batching
    return "loop" if platform.on_cpu() else "vmap"


@dataclasses.dataclass(frozen=True)
class Programs:
    """A run's compiled programs and where their inputs live."""

    mesh: Mesh
    # (states, images) -> (states, metrics {name: (R,)}): one generator iteration of every run;
    # consumes (donates) its input states.
    train: Callable
    # (states, z (R, B, latent_dim)) -> images (R, B, H, W, C): each run's own samples.
    generate: Callable
    # (states, images) -> states: n_critic critic updates alone; consumes its input states.
    critic: Callable
    # Extra `critic` dispatches before `train` in a long iteration of the official schedule;
    # 0 where `train` runs the schedule itself (see _build).
    chunks: int = 0
    # Whether the programs take drawn batches (draws.Drawn) rather than the whole set.
    streamed: bool = False

    def pieces(self, at: int) -> int:
        """Programs dispatched for generator iteration `at` (0-based): `chunks` critic programs
        and `train` in a long iteration of the official schedule, else `train` alone."""
        return self.chunks + 1 if self.chunks and draws.long_iteration(at) else 1

    def iteration(self, states: TrainState, data: list, at: int) -> tuple[TrainState, dict]:
        """Generator iteration `at` (0-based) of every run: the programs `pieces(at)` counts, the
        i-th taking data[i] (the whole set each time, or each program's drawn batches)."""
        *critic_data, train_data = data
        if len(data) != self.pieces(at):
            raise ValueError(f"iteration {at} dispatches {self.pieces(at)} programs; got data "
                             f"for {len(data)}")
        for images in critic_data:
            states = self.critic(states, images)
        return self.train(states, train_data)

    @property
    def states_sharding(self) -> NamedSharding:
        """Every state leaf split along its leading run axis."""
        return NamedSharding(self.mesh, PartitionSpec(RUNS))

    def place_states(self, states: TrainState) -> TrainState:
        return jax.device_put(states, self.states_sharding)

    def place_data(self, data):
        """The training images (and, for a conditional run, (images, labels)) on every device."""
        return jax.device_put(data, NamedSharding(self.mesh, PartitionSpec()))

    @property
    def drawn_sharding(self) -> NamedSharding:
        """Where drawn batches (R, U, B, ...) live: runs over "runs", each batch over "data"."""
        return NamedSharding(self.mesh, PartitionSpec(RUNS, None, DATA))

    def place_noise(self, z: jax.Array) -> jax.Array:
        return jax.device_put(z, self.states_sharding)


def build(config: Config, how: str, mesh: Mesh, streamed: bool = False) -> Programs:
    """The programs of `config`'s runs on `mesh`, batched per device as `how` ("vmap" or
    "loop") says, taking drawn batches where `streamed`; cached by `config.program()` and the
    number of runs, so that
    a resume in the same process, or a run with another seed, clip bound or learning rate,
    compiles nothing new."""
    if streamed and config.algorithm.critic_schedule == "official" and draws.OFFICIAL_LONG % config.algorithm.n_critic:
        raise UserError(f"streamed data with the official critic schedule needs an n_critic that "
                        f"divides {draws.OFFICIAL_LONG}, not {config.algorithm.n_critic}; use "
                        f"--data-placement device")
    return _build(config.program(), config.runs.seeds, how, mesh, streamed)


@functools.lru_cache(maxsize=8)
def _build(program: Program, seeds: int, how: str, mesh: Mesh, streamed: bool = False
           ) -> Programs:
    """`build` for a program key. Under "loop" with several runs per device, one program for
    one run per device is compiled and dispatched for each of them in turn: a program holding
    every run's step would compile several times longer (XLA's compile time grows with the
    program).

    The official schedule on the CPU is dispatched in pieces: its long iterations are
    OFFICIAL_LONG / n_critic programs of n_critic unrolled critic updates (the last one with the
    generator update), because XLA:CPU runs a rolled scan (a while loop) of these convolutions
    about 17x slower than the same updates unrolled (benchmarks/NOTES.md), and unrolling all
    OFFICIAL_LONG would compile for minutes. Streamed data is dispatched in pieces everywhere:
    each program's batches are then n_critic, not OFFICIAL_LONG, whatever the iteration. Same
    updates, same keys, same numbers."""
    if _in_pieces(program, streamed):
        constant = _build(program.replace(critic_schedule="constant"), seeds, how, mesh, streamed)
        return dataclasses.replace(constant, chunks=draws.OFFICIAL_LONG // program.algorithm.n_critic - 1)
    per_device = seeds // mesh.shape[RUNS]
    if how == "loop" and per_device > 1:
        return _in_turn(_one_program(program, how, mesh, streamed), per_device)
    return _one_program(program, how, mesh, streamed)


def _in_pieces(program: Program, streamed: bool) -> bool:
    """Whether the official schedule's long iterations are dispatched in pieces (see _build)."""
    return (program.algorithm.critic_schedule == "official" and draws.OFFICIAL_LONG % program.algorithm.n_critic == 0
            and (streamed or steps.critic_unroll(program) > 1))


def _one_program(program: Program, how: str, mesh: Mesh, streamed: bool) -> Programs:
    runs, whole = NamedSharding(mesh, PartitionSpec(RUNS)), NamedSharding(mesh, PartitionSpec())
    spec = PartitionSpec(RUNS)
    # the whole set, the same for every run; or each run's own drawn batches
    data_spec = spec if streamed else PartitionSpec()
    data_sharding = NamedSharding(mesh, PartitionSpec(RUNS, None, DATA)) if streamed else whole

    def over_runs(fn, states, images):
        if streamed:
            return _over_runs(how, fn, states, images)
        return _over_runs(how, lambda state: fn(state, images), states)

    def train(states, images):
        return over_runs(lambda state, data: steps.train_step(state, data, program), states, images)

    def generate(states, z):
        def draw(state, z):  # a conditional run's grids: the classes in turn
            return generation.generate(state, z, program, labels=generation.balanced_labels(len(z), program))
        return _over_runs(how, draw, states, z)

    def critic(states, images):
        return over_runs(lambda state, data: steps.critic_steps(state, data, program)[0], states,
                         images)

    train = jax.shard_map(train, mesh=mesh, in_specs=(spec, data_spec), out_specs=spec,
                          axis_names={RUNS})
    critic = jax.shard_map(critic, mesh=mesh, in_specs=(spec, data_spec), out_specs=spec,
                           axis_names={RUNS})
    generate = jax.shard_map(generate, mesh=mesh, in_specs=spec, out_specs=spec,
                             axis_names={RUNS})
    return Programs(mesh, jax.jit(train, in_shardings=(runs, data_sharding),
                                  out_shardings=(runs, whole), donate_argnums=0),
                    jax.jit(generate, in_shardings=(runs, runs), out_shardings=whole),
                    jax.jit(critic, in_shardings=(runs, data_sharding), out_shardings=runs,
                            donate_argnums=0), streamed=streamed)


def _in_turn(one: Programs, count: int) -> Programs:
    """`one` (programs for one run per device) applied to `count` slices of the runs in turn:
    slice j holds run j of every device's block, so slicing and joining move nothing between
    devices."""
    spread = NamedSharding(one.mesh, PartitionSpec(RUNS))

    def joined(trees):  # run j of block d is slice j's entry d
        return jax.tree_util.tree_map(
            lambda *xs: jnp.stack(xs, axis=1).reshape(-1, *xs[0].shape[1:]), *trees)

    split = jax.jit(lambda tree: [jax.tree_util.tree_map(lambda x: x[j::count], tree)
                                  for j in range(count)], out_shardings=spread)
    join_spread, join = jax.jit(joined, out_shardings=spread), jax.jit(joined)

    def parts(images):  # drawn batches are per run, split like the states
        return split(images) if one.streamed else [images] * count

    def train(states, images):
        outputs = [one.train(part, data) for part, data in zip(split(states), parts(images))]
        return join_spread([o[0] for o in outputs]), join([o[1] for o in outputs])

    def generate(states, z):
        return join([one.generate(part, noise) for part, noise in zip(split(states), split(z))])

    def critic(states, images):
        return join_spread([one.critic(part, data)
                            for part, data in zip(split(states), parts(images))])

    return Programs(one.mesh, train, generate, critic, streamed=one.streamed)


def _over_runs(how: str, fn: Callable, states: TrainState, *per_run: jax.Array):
    """`fn(state, *inputs)` for each run of `states` (and its slice of each of `per_run`), the
    results stacked along a leading run axis."""
    if how == "vmap":
        # The runs share their iteration count, so it enters unbatched: the official schedule's
        # lax.cond on it stays a branch, where a batched predicate would make vmap run both the
        # 100- and the n_critic-update branch every iteration.
        axes = jax.tree_util.tree_map(lambda _: 0, states).replace(step=None)
        return jax.vmap(fn, in_axes=(axes, *[0] * len(per_run)))(
            states.replace(step=states.step[0]), *per_run)
    outputs = [fn(select(states, i), *(jax.tree_util.tree_map(lambda leaf: leaf[i], x)
                                      for x in per_run))
               for i in range(states.step.shape[0])]
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *outputs)
