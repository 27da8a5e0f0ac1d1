"""The summary of several runs trained together: mean, spread and each run's final numbers
(summary.json, summary.md)."""

from __future__ import annotations

import math

import numpy as np

from wgan_jax.config import Config
from wgan_jax.core.runs import run_configs


# Keys of a run's final records that describe the run rather than measure it.
_NOT_MEASURED = ("iteration", "kind", "seconds", "class_shares")


def runs_summary(config: Config, finals: list[dict]) -> dict:
    """Mean, sample standard deviation, min and max over the runs of each number their final
    records share, and the runs themselves (seed, clip, lr and final numbers)."""
    runs = [{"run": i, "seed": run.runs.seed, "clip": run.runs.clip, "lr": run.runs.lr,
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
    return {"seeds": config.runs.seeds, "iterations": config.training.iterations, "stats": stats, "runs": runs}


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
