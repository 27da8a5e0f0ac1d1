"""How long a command will take on a CPU, told before it starts: training (train.py's notice) and
evaluation (the evaluate command's plan). Costs per unit of work on 2 x86-64 cores, fitted to the
measurements in benchmarks/NOTES.md ("CPU notice", "Evaluation estimate"); a machine with more
cores is assumed proportionally faster, up to 16."""

from __future__ import annotations

import os

from wgan_jax import fid, models, platform, steps
from wgan_jax.config import Config

REFERENCE_CORES = 2
# Seconds per generator iteration = BASE + PER_GFLOP[arch] x GFLOP per iteration.
TRAIN_BASE = 0.134
TRAIN_PER_GFLOP = {"seed": 0.00343, "dcgan": 0.0182}
# Seconds per image: the Inception network (FID), the shipped classifier, and a generator's
# forward pass per GFLOP of it (batches of 1000, no backward pass, its compilation included);
# the float64 metrics per scored image (KID, precision and recall grow with the count); and
# what an evaluation spends besides (reading the run and the data, figures, report).
FID_IMAGE = 0.28
CLASSIFIER_IMAGE = 0.00012
GENERATE_PER_GFLOP = 0.008
METRICS_IMAGE = 0.0004
EVALUATION_FIXED = 10.0


def _scale() -> float:
    return REFERENCE_CORES / min(os.cpu_count() or 1, 16)


def minutes(seconds: float) -> str:
    """A duration in words: seconds under two minutes, else whole minutes."""
    return f"{round(seconds)} s" if seconds < 120 else f"{round(seconds / 60)} minutes"


def training_seconds(config: Config) -> float:
    """A run's wall time on this CPU: its iterations and its evaluations' FID."""
    gflop = models.flops_per_iteration(config, steps.mean_critic_updates(config)) / 1e9
    seconds = config.iterations * (TRAIN_BASE + TRAIN_PER_GFLOP[config.arch] * gflop)
    if config.eval_every and config.eval_fid == "on":
        evaluations = config.iterations // config.eval_every + 1
        seconds += evaluations * config.eval_samples * FID_IMAGE
    return seconds * _scale()


def cpu_notice(config: Config) -> str | None:
    """On a CPU-only machine, the run's estimated time and a pointer to the quick preset."""
    if not platform.on_cpu():
        return None
    quick = config.preset != "quick" and config.data == "mnist"
    hint = "; `--preset quick` draws digits in under 10 minutes" if quick else ""
    return (f"No GPU/TPU found: training on {os.cpu_count() or 1} CPU core(s) will take roughly "
            f"{minutes(training_seconds(config))}{hint}.")


def evaluation_plan(evaluator, config: Config, fid_setting: str, floor: bool = True) -> str:
    """What an evaluation will compute, in one line, with its time on a CPU; where FID is left
    out on a CPU, what it would cost. `floor`: real training images are scored too."""
    samples, real = evaluator.samples, len(evaluator.heldout.images)
    scored = samples * (2 if floor else 1)
    inception = scored + (0 if fid.reference_cached(evaluator.heldout.images) else real)
    gflop = 2 * models.forward_macs(config)[0] / 1e9
    seconds = (EVALUATION_FIXED + samples * gflop * GENERATE_PER_GFLOP) * _scale()
    parts = [f"generating {samples}"]
    if evaluator.params is not None:
        seconds += ((scored + real) * CLASSIFIER_IMAGE + scored * METRICS_IMAGE) * _scale()
        parts.append(f"classifier features of {scored + real} images")
    if evaluator.fid:
        seconds += inception * FID_IMAGE * (_scale() if platform.on_cpu() else 0)
        parts.append(f"Inception features of {inception} images (FID)")
    line = (f"{samples} samples against {evaluator.heldout.name} ({real} images): "
            f"{', '.join(parts)}")
    if not platform.on_cpu():
        return line + "."
    line += f"; about {minutes(seconds)} on this CPU."
    if fid_setting == "auto" and not evaluator.fid and fid.available():
        line += (f" FID is off on a CPU: --fid on adds about "
                 f"{minutes(inception * FID_IMAGE * _scale())}.")
    return line
