"""The CPU notice's cost model reproduces the per-iteration times it was fitted to (benchmarks/
NOTES.md, "CPU notice"), so a refit that breaks one kind of run shows here."""

import pytest

from wgan_jax import from_preset
from wgan_jax.train import estimates

# (preset overrides, seconds per iteration measured on the 2-core machine): the seed recipe and
# the quick preset with 5 critic steps (2026-12-05, 3 compiled iterations timed), the quick preset
# with 3 (2026-12-06, its run's metrics.jsonl).
MEASURED = [
    (dict(preset="seed"), 0.423),
    (dict(preset="quick", n_critic=5), 0.181),
    (dict(preset="quick"), 0.121),
]


@pytest.mark.parametrize("overrides, seconds", MEASURED)
def test_per_iteration_cost_matches_its_calibration(monkeypatch, overrides, seconds):
    monkeypatch.setattr(estimates.os, "cpu_count", lambda: estimates.REFERENCE_CORES)
    preset, rest = overrides["preset"], {k: v for k, v in overrides.items() if k != "preset"}

    def total(iterations):
        return estimates.training_seconds(
            from_preset(preset, iterations=iterations, eval_every=0, **rest))

    # Within 6%: the fit has two constants for three measurements of their own noise (a few %).
    assert (total(1001) - total(1)) / 1000 == pytest.approx(seconds, rel=0.06)


def test_fewer_critic_steps_cost_less_per_iteration():
    quick = from_preset("quick", eval_every=0)
    assert estimates.training_seconds(quick) < estimates.training_seconds(
        quick.replace(n_critic=5))
