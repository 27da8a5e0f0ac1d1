"""Many independent runs in one compiled program: the whole state batched with `jax.vmap`.

Run i of a config with `seeds` N is the run `train.py --seed <seed + i>` would make, with
`run_clips[i]` and `run_lrs[i]` when given: its own root key (so its own initial networks,
batches, noise, dropout and sample noise) and its own clip bound and learning rate, which the
state holds as values (`TrainState.lr_critic`, `lr_generator`, `clip`) so that one program
serves all runs.
On an accelerator one program trains all runs (`jax.vmap` over the leading run axis), where N
small runs fill the device better than one; on the CPU, where vmapped convolutions are slow, the
single-run step (compiled once: clip and lr are values in the state) is dispatched for each run.

On several devices (of one process or of several) the runs are spread over a one-axis mesh,
"runs": each device holds seeds / devices whole runs and trains them in one program
(`jax.shard_map` around the same vmapped chunk); runs never exchange anything, so the compiled
chunk has no collectives but the small gather of metrics and sample images, which every process
then reads.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from wgan_jax import distributed, steps
from wgan_jax.config import Config
from wgan_jax.errors import UserError
from wgan_jax.state import SAMPLES, TrainState, init_state, stream

RUNS = "runs"  # the mesh axis the runs are spread over

# Keys of a run's final records that describe the run rather than measure it.
_NOT_MEASURED = ("iteration", "seconds", "class_shares")


def run_configs(config: Config) -> list[Config]:
    """Each run's config, as the single run it equals (seeds 1, its seed, clip and lr)."""
    return [dataclasses.replace(
        config, seeds=1, seed=config.seed + i, run_clips=(), run_lrs=(),
        clip=config.run_clips[i] if config.run_clips else config.clip,
        lr=config.run_lrs[i] if config.run_lrs else config.lr) for i in range(config.seeds)]


@functools.partial(jax.jit, static_argnames="config")
def init_states(config: Config) -> TrainState:
    """The runs' initial states, stacked along a leading axis of length config.seeds."""
    runs = run_configs(config)
    keys = jnp.stack([jax.random.PRNGKey(run.seed) for run in runs])
    states = jax.vmap(lambda key: init_state(config, key))(keys)
    return states.replace(lr_critic=jnp.array([run.critic_lr() for run in runs], jnp.float32),
                          lr_generator=jnp.array([run.generator_lr() for run in runs], jnp.float32),
                          clip=jnp.array([run.clip for run in runs], jnp.float32))


def batching(config: Config) -> str:
    """"vmap" or "loop": the config's seed_batching, with "auto" decided per backend."""
    if config.seed_batching != "auto":
        return config.seed_batching
    return "loop" if jax.default_backend() == "cpu" else "vmap"


@functools.partial(jax.jit, static_argnames="count")
def _unstack(states: TrainState, count: int) -> list[TrainState]:
    return [select(states, i) for i in range(count)]


@jax.jit
def _stack(trees: list) -> object:
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def _vmapped_chunk(states, data, config, length):
    """All runs in one vmapped program. The runs share their iteration count, so it enters the
    vmap unbatched: the official schedule's lax.cond on it stays a branch, where a batched
    predicate would make vmap run both the 100- and the n_critic-update branch every iteration."""
    axes = jax.tree_util.tree_map(lambda _: 0, states).replace(step=None)
    return jax.vmap(lambda state: steps._train_chunk(state, data, config, length),
                    in_axes=(axes,))(states.replace(step=states.step[0]))


_vmapped_chunk_jit = jax.jit(_vmapped_chunk, static_argnames=("config", "length"),
                             donate_argnames="states")


def _local_chunk(states, data, config, length):
    """The runs of one device in one program: vmapped, or with "loop" one after the other."""
    if batching(config) == "vmap":
        return _vmapped_chunk(states, data, config, length)
    return _stack([steps._train_chunk(select(states, i), data, config, length)
                   for i in range(states.step.shape[0])])


def _local_generate(states, z, config):
    return jax.vmap(lambda state, z: steps._generate(state, z, config))(states, z)


def run_mesh(config: Config) -> Mesh:
    """The devices the runs are spread over: config.devices of them, else the most of this
    machine's that divide the runs evenly (all devices when several processes run)."""
    count = config.devices or None
    if count is None and jax.process_count() == 1:
        count = max(d for d in range(1, jax.device_count() + 1) if config.seeds % d == 0)
    mesh = distributed.device_mesh(count, RUNS)
    if config.seeds % mesh.devices.size:
        raise UserError(f"{config.seeds} seeds do not split over {mesh.devices.size} devices; "
                        f"use a multiple of {mesh.devices.size}")
    return mesh


def sharding(mesh: Mesh) -> NamedSharding:
    """Runs split along the leading axis of every state leaf, whole runs per device."""
    return NamedSharding(mesh, PartitionSpec(RUNS))


@functools.lru_cache(maxsize=8)
def _spread(mesh: Mesh):
    """train_chunk and generate for runs spread over `mesh`; state in and out split by run,
    metrics and images out replicated (small) so that every process can read them."""
    runs, whole = sharding(mesh), distributed.replicated(mesh)

    def chunk(states, data, config, length):
        return jax.shard_map(functools.partial(_local_chunk, config=config, length=length),
                             mesh=mesh, in_specs=(PartitionSpec(RUNS), PartitionSpec()),
                             out_specs=PartitionSpec(RUNS))(states, data)

    def generate(states, z, config):
        return jax.shard_map(functools.partial(_local_generate, config=config), mesh=mesh,
                             in_specs=PartitionSpec(RUNS), out_specs=PartitionSpec(RUNS))(states, z)

    return (jax.jit(chunk, static_argnames=("config", "length"), in_shardings=(runs, whole),
                    out_shardings=(runs, whole), donate_argnames="states"),
            jax.jit(generate, static_argnames="config", in_shardings=(runs, runs),
                    out_shardings=whole))


def train_chunk(states: TrainState, data: jax.Array, config: Config, length: int,
                mesh: Mesh | None = None) -> tuple[TrainState, steps.Metrics]:
    """`length` generator iterations of every run; metrics shaped (runs, length). Consumes
    `states` (donated). With a `mesh` of several devices, `states` split as `sharding` says."""
    if mesh is not None and mesh.devices.size > 1:
        return _spread(mesh)[0](states, data, config, length)
    if batching(config) == "vmap":
        return _vmapped_chunk_jit(states, data, config, length)
    return _stack([steps.train_chunk(state, data, config, length)
                   for state in _unstack(states, config.seeds)])


_vmapped_generate = jax.jit(_local_generate, static_argnames="config")


def generate(states: TrainState, z: jax.Array, config: Config,
             mesh: Mesh | None = None) -> jax.Array:
    """Every run's images from its own latent vectors: z (runs, B, latent) -> (runs, B, H, W, C)."""
    if mesh is not None and mesh.devices.size > 1:
        return _spread(mesh)[1](states, z, config)
    if batching(config) == "vmap":
        return _vmapped_generate(states, z, config)
    return _stack([steps.generate(state, z[i], config)
                   for i, state in enumerate(_unstack(states, config.seeds))])


def sample_noise(config: Config, count: int) -> jax.Array:
    """Each run's fixed sample noise (runs, count, latent), the one its single run would use."""
    return jnp.stack([jax.random.normal(stream(jax.random.PRNGKey(run.seed), SAMPLES),
                                        (count, config.latent_dim)) for run in run_configs(config)])


def select(states: TrainState, index: int) -> TrainState:
    """Run `index`'s state out of the batch."""
    return jax.tree_util.tree_map(lambda x: x[index], states)


def summary(config: Config, finals: list[dict]) -> dict:
    """Mean, sample standard deviation, min and max over the runs of each number their final
    records share, and the runs themselves (seed, clip, lr and final numbers)."""
    runs = [{"run": i, "seed": run.seed, "clip": run.clip, "lr": run.lr,
             **{k: v for k, v in final.items() if k not in _NOT_MEASURED}}
            for i, (run, final) in enumerate(zip(run_configs(config), finals))]
    names = [k for k in runs[0] if k not in ("run", "seed", "clip", "lr")
             and all(isinstance(r.get(k), (int, float)) for r in runs)]
    stats = {}
    for name in names:
        values = np.array([r[name] for r in runs], np.float64)
        stats[name] = {"mean": float(values.mean()),
                       "std": float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                       "min": float(values.min()), "max": float(values.max())}
    return {"seeds": config.seeds, "iterations": config.iterations, "stats": stats, "runs": runs}


def summary_markdown(summary: dict) -> str:
    lines = [f"# {summary['seeds']} runs, {summary['iterations']} iterations each", "",
             "| final value | mean | std | min | max |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {s['mean']:.4g} | {s['std']:.3g} | {s['min']:.4g} | {s['max']:.4g} |"
              for name, s in summary["stats"].items()]
    names = list(summary["stats"])
    lines += ["", "| run | seed | clip | lr | " + " | ".join(names) + " |",
              "| --- " * (4 + len(names)) + "|"]
    lines += [f"| {r['run']} | {r['seed']} | {r['clip']:g} | {r['lr']:g} | "
              + " | ".join(f"{r[n]:.4g}" for n in names) + " |" for r in summary["runs"]]
    return "\n".join(lines) + "\n"
