"""The runs of a training run: their configs, initial states, sample noise and summary.

Run i of a config with `seeds` R is the run `train.py --seed <seed + i>` would make, with
`run_clips[i]` and `run_lrs[i]` when given: its own root key (so its own initial networks,
batches, noise, dropout and sample noise) and its own clip bound and learning rates, which the
state holds as values (`TrainState.lr_critic`, `lr_generator`, `clip`) so that one program
serves all runs (wgan_jax.programs). A single run is R = 1: every state the loop holds has the
leading run axis.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax.config import Config, StepConfig
from wgan_jax.core.state import SAMPLES, TrainState, init_state, stream

# Keys of a run's final records that describe the run rather than measure it.
_NOT_MEASURED = ("iteration", "kind", "seconds", "class_shares")


def run_configs(config: Config) -> list[Config]:
    """Each run's config, as the single run it equals (seeds 1, its seed, clip and lr)."""
    return [dataclasses.replace(
        config, seeds=1, seed=config.seed + i, run_clips=(), run_lrs=(),
        clip=config.run_clips[i] if config.run_clips else config.clip,
        lr=config.run_lrs[i] if config.run_lrs else config.lr) for i in range(config.seeds)]


@functools.partial(jax.jit, static_argnames="config")
def init_states(config: StepConfig) -> TrainState:
    """The runs' initial states, stacked along a leading axis of length config.seeds."""
    runs = run_configs(config)
    keys = jnp.stack([jax.random.PRNGKey(run.seed) for run in runs])
    states = jax.vmap(lambda key: init_state(config, key))(keys)
    return states.replace(lr_critic=jnp.array([run.critic_lr() for run in runs], jnp.float32),
                          lr_generator=jnp.array([run.generator_lr() for run in runs], jnp.float32),
                          clip=jnp.array([run.clip for run in runs], jnp.float32))


def sample_noise(config: Config, count: int) -> jax.Array:
    """Each run's fixed sample noise (runs, count, latent), the one its single run would use."""
    return jnp.stack([jax.random.normal(stream(jax.random.PRNGKey(run.seed), SAMPLES),
                                        (count, config.latent_dim)) for run in run_configs(config)])


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
