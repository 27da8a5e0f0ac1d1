"""How long a command will take on a CPU, told before it starts: training (train.py's notice) and
evaluation (the evaluate command's plan). Costs per unit of work on 2 x86-64 cores, fitted to the
measurements in benchmarks/NOTES.md ("CPU notice", "Evaluation estimate"); a machine with more
cores is assumed proportionally faster, up to 16."""

from __future__ import annotations

import os

from wgan_jax import platform
from wgan_jax.config import Config
from wgan_jax.core import draws, models
from wgan_jax.eval import fid


REFERENCE_CORES = 2
# Seconds per generator iteration = PER_UPDATE[arch] x updates (critic steps + 1) + PER_GFLOP[arch]
# x GFLOP per iteration (the official schedule's long iterations counted by their updates,
# draws.mean_critic_updates): the fixed cost is per optimizer update, not per iteration.
TRAIN_PER_UPDATE = {"seed": 0.014, "dcgan": 0.0}
TRAIN_PER_GFLOP = {"seed": 0.00407, "dcgan": 0.0104}
# Seconds to start (imports, data, the first checkpoint and sample grid) and to compile the
# training program; a conditional run's and the official schedule's (two programs on a CPU)
# take longer.
STARTUP = 12.0
COMPILE = {"seed": 16.0, "dcgan": 14.0}
COMPILE_CONDITIONAL, COMPILE_IN_PIECES = 5.0, 10.0
# Seconds per image: the Inception network (FID), the shipped classifier, and a generator's
# forward pass per GFLOP of it (batches of 1000, no backward pass, its compilation included);
# the float64 metrics per scored image (KID, precision and recall grow with the count); and
# what an evaluation spends besides (reading the run and the data, figures, report).
FID_IMAGE = 0.28
CLASSIFIER_IMAGE = 0.00012
GENERATE_PER_GFLOP = 0.008
METRICS_IMAGE = 0.0004
EVALUATION_FIXED = 10.0
# The images the shipped classifiers read: where a run's are others, training scores nothing.
CLASSIFIED = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1)}


def _scale() -> float:
    return REFERENCE_CORES / min(os.cpu_count() or 1, 16)


def minutes(seconds: float) -> str:
    """A duration in words: seconds under two minutes, else whole minutes."""
    return f"{round(seconds)} s" if seconds < 120 else f"{round(seconds / 60)} minutes"


def training_seconds(config: Config) -> float:
    """A run's wall time on this CPU, start to exit: start-up, compilation, its iterations and
    its evaluations (classifier metrics where a shipped classifier reads the data, FID where
    asked for)."""
    arch = config.nets.arch
    updates = draws.mean_critic_updates(config)
    gflop = models.flops_per_iteration(config, updates) / 1e9
    seconds = STARTUP + COMPILE[arch] + config.training.iterations * (
        TRAIN_PER_UPDATE[arch] * (updates + 1) + TRAIN_PER_GFLOP[arch] * gflop)
    seconds += COMPILE_CONDITIONAL * config.nets.conditional
    seconds += COMPILE_IN_PIECES * (config.algorithm.critic_schedule == "official")
    if config.outputs.eval_every:
        evaluations = -(-config.training.iterations // config.outputs.eval_every)  # each interval's end, and the last
        seconds += evaluations * _training_evaluation(config)
    return seconds * _scale()


def _training_evaluation(config: Config) -> float:
    """One evaluation during training, in seconds on 2 cores."""
    samples, seconds = config.outputs.eval_samples, 0.0
    if CLASSIFIED.get(config.data.source) == tuple(config.nets.image_shape):
        gflop = 2 * models.forward_macs(config.nets)[0] / 1e9
        seconds += samples * (gflop * GENERATE_PER_GFLOP + CLASSIFIER_IMAGE + METRICS_IMAGE)
    if config.outputs.eval_fid == "on":
        seconds += samples * FID_IMAGE
    return seconds


def cpu_notice(config: Config) -> str | None:
    """On a CPU-only machine, the run's estimated time and a pointer to the quick preset."""
    if not platform.on_cpu():
        return None
    quick = config.preset != "quick" and config.data.source == "mnist"
    hint = "; `--preset quick` draws digits in under 10 minutes" if quick else ""
    return (f"No GPU/TPU found: training on {os.cpu_count() or 1} CPU core(s) will take roughly "
            f"{minutes(training_seconds(config))}{hint}.")


def evaluation_plan(evaluator, config: Config, fid_setting: str, floor: bool = True) -> str:
    """What an evaluation will compute, in one line, with its time on a CPU; where FID is left
    out on a CPU, what it would cost. `floor`: real training images are scored too."""
    samples, real = evaluator.samples, len(evaluator.heldout.images)
    scored = samples * (2 if floor else 1)
    inception = scored + (0 if fid.reference_cached(evaluator.heldout.images) else real)
    gflop = 2 * models.forward_macs(config.nets)[0] / 1e9
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
