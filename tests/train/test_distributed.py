"""8 fake CPU devices, in processes of their own (the device count is fixed when JAX starts).
Data parallelism: one sharded train step equals the single-device step on the same global batch,
and the training loop runs data parallel with the same numbers. Several runs: spread over the
devices, and composed with data parallelism (2 runs, each batch over 4 devices), they train as on
one device, in the loop too, and resume on another split."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]

COMMON = r"""
import dataclasses, json, sys, tempfile
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, TESTS)
from conftest import TINY, noise_driven
from wgan_jax import UserError, data
from wgan_jax.train import loop, programs
from wgan_jax.core.runs import init_states, sample_noise
from wgan_jax.core import steps
from wgan_jax.core.state import select

images = data.load_bundled_mnist().images[:512]


def train(config, states=None):
    # one iteration of the loop's program for `config` on its mesh
    run = programs.build(config, programs.batching(config), programs.device_mesh(config))
    states = init_states(config) if states is None else states
    states, metrics = run.train(run.place_states(states), run.place_data(images))
    return states, metrics, run


def diffs(a, b):
    return {jax.tree_util.keystr(p): float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
            for (p, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree_util.tree_leaves(b))
            if not noise_driven(p)}


def metric_diffs(a, b, relative=False):
    scale = lambda x: np.abs(np.asarray(x)) + 1e-9 if relative else 1.0
    return {k: float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])) / scale(a[k]))) for k in a}


def logs(folder, runs=1):
    paths = [f"{folder}/run-{i}/metrics.jsonl" for i in range(runs)] if runs > 1 else [folder + "/metrics.jsonl"]
    return [[json.loads(l) for l in open(p)] for p in paths]
"""

SCRIPT = COMMON + r"""
images = data.load_bundled_mnist().images  # the whole training set, as the loop trains on it
config = TINY.replace(batch_size=16)
state = jax.tree_util.tree_map(lambda x: x[0], init_states(config))
single, single_metrics = steps.train_step(state, jax.device_put(images), config)
sharded, sharded_metrics, run = train(config)
second = train(config, jax.tree_util.tree_map(jnp.copy, sharded))[1]  # `sharded` kept
hlo = run.train.lower(run.place_states(init_states(config)),
                      run.place_data(images)).compile().as_text()
root = tempfile.mkdtemp()
loop.run(config.replace(devices=8, iterations=2, log_every=1), root)
print(json.dumps({
    "devices": len(jax.devices()), "mesh": dict(run.mesh.shape), "all_reduce": "all-reduce" in hlo,
    "per_device_batch": "f32[2,28,28,1]" in hlo, "diffs": diffs(single, select(sharded, 0)),
    "replicated": all(x.sharding.is_fully_replicated for x in jax.tree_util.tree_leaves(sharded)),
    "metrics": {k: [float(single_metrics[k]), float(sharded_metrics[k][0])] for k in single_metrics},
    "steps": [{k: float(v[0]) for k, v in m.items()} for m in (sharded_metrics, second)],
    "logged": logs(root)[0]}))
"""


SEEDS_SCRIPT = COMMON + r"""
# 4 runs with their own clip bounds; on one device the CPU default trains them one by one
single = TINY.replace(seeds=4, run_clips=(0.01, 0.02, 0.03, 0.04), iterations=3,
                             log_every=1, sample_every=2, devices=1, batch_size=16)
one, one_metrics, one_run = train(single)
# over 2 devices, each trains its 2 runs vmapped (the accelerator path)
config = single.replace(devices=2, seed_batching="vmap")
run = programs.build(config, programs.batching(config), programs.device_mesh(config))
compiled = run.train.lower(run.place_states(init_states(config)),
                           run.place_data(images)).compile()
spread, spread_metrics = compiled(run.place_states(init_states(config)),
                                  run.place_data(images))
z = sample_noise(config, 5)
samples = [np.asarray(r.generate(s, r.place_noise(z))) for r, s in ((one_run, one), (run, spread))]

root = tempfile.mkdtemp()
loop.run(single, root + "/one")
# on 4 devices, one run each, for 2 iterations; then resumed on one device for a third
loop.run(single.replace(devices=4, iterations=2), root + "/four")
loop.run(single, root + "/four", resume=True)
print(json.dumps({
    "devices": len(jax.devices()), "mesh": dict(run.mesh.shape),
    "collectives": [op for op in ("all-reduce", "all-to-all", "collective-permute", "all-gather")
                    if op in compiled.as_text()],
    "runs_per_device": sorted({leaf.sharding.shard_shape(leaf.shape)[0]
                               for leaf in jax.tree_util.tree_leaves(spread)}),
    "diffs": diffs(one, spread), "metric_diffs": metric_diffs(one_metrics, spread_metrics),
    "clip_reached": [float(max(np.abs(np.asarray(x)[i]).max()
                               for x in jax.tree_util.tree_leaves(spread.critic.params)))
                     for i in range(4)],
    "sample_diff": float(np.max(np.abs(samples[0] - samples[1]))),
    "straight": logs(root + "/one", 4), "resumed": logs(root + "/four", 4),
    "run_config": json.load(open(root + "/four/run-1/config.json"))}))
"""


COMPOSED_SCRIPT = COMMON + r"""
images = data.load_bundled_mnist().images  # the whole training set, as the loop trains on it
# seeds and data parallelism composed: 2 runs over 8 devices, each batch split over 4
pair = TINY.replace(seeds=2, run_clips=(0.01, 0.03), batch_size=16, devices=1,
                           iterations=2, log_every=1)
one, one_metrics, _ = train(pair)
one_second = train(pair, jax.tree_util.tree_map(jnp.copy, one))[1]  # `one` kept
eight = pair.replace(devices=8)
run = programs.build(eight, programs.batching(eight), programs.device_mesh(eight))
compiled = run.train.lower(run.place_states(init_states(pair)),
                           run.place_data(images)).compile()
spread, spread_metrics = compiled(run.place_states(init_states(pair)),
                                  run.place_data(images))
hlo = compiled.as_text()
root = tempfile.mkdtemp()
loop.run(eight, root + "/eight")
# streamed: each device gathers only its rows of each run's batch
loop.run(eight.replace(data_placement="stream"), root + "/streamed")
try:
    programs.device_mesh(eight.replace(batch_size=6))
    refused = ""
except UserError as err:
    refused = str(err)
print(json.dumps({
    "mesh": dict(run.mesh.shape), "all_reduce": "all-reduce" in hlo,
    "per_device_batch": "f32[4,28,28,1]" in hlo, "diffs": diffs(one, spread),
    "metric_diffs": metric_diffs(one_metrics, spread_metrics, relative=True),
    "single": [{k: [float(v) for v in np.asarray(m[k])] for k in m} for m in (one_metrics, one_second)],
    "logs": logs(root + "/eight", 2), "streamed": logs(root + "/streamed", 2), "refused": refused,
    "default_split": {n: dict(programs.device_mesh(pair.replace(seeds=n, devices=0)).shape)
                      for n in (3, 6, 12, 16)}}))
"""


def _run_on_8_devices(script: str) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"}
    result = subprocess.run([sys.executable, "-c", f"TESTS = {str(TESTS)!r}\n" + script],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _close_logs(a, b, rtol):
    assert [r["iteration"] for r in a] == [r["iteration"] for r in b]
    for x, y in zip(a, b):
        for key in ("critic_loss", "generator_loss", "wasserstein_estimate"):
            assert abs(x[key] - y[key]) <= rtol * abs(x[key]) + 1e-9, (key, x[key], y[key])


@pytest.mark.slow
@pytest.mark.heavy
def test_data_parallel_step_and_loop_equal_single_device_on_8_cpu_devices():
    out = _run_on_8_devices(SCRIPT)
    assert out["devices"] == 8 and out["mesh"] == {"runs": 1, "data": 8}
    # the batch really is split (16 images over 8 devices) and gradients/statistics all-reduced
    assert out["all_reduce"] and out["per_device_batch"]
    assert out["replicated"]  # params and optimizer states stay replicated
    # One iteration = 3 critic updates + 1 generator update; only the order of the cross-device
    # sums differs, which RMSprop keeps at ulp-sized steps (as the scan-vs-loop tests observe).
    assert max(out["diffs"].values()) < 1e-6, out["diffs"]
    for single, sharded in out["metrics"].values():
        assert abs(single - sharded) <= 1e-4 * abs(single) + 1e-9
    # the loop on 8 devices logs what the sharded program's two steps return
    assert [r["iteration"] for r in out["logged"]] == [1, 2]
    _close_logs([{"iteration": i + 1, **m} for i, m in enumerate(out["steps"])], out["logged"], 1e-3)


@pytest.mark.slow
@pytest.mark.heavy
def test_seeds_spread_over_8_cpu_devices_train_as_on_one():
    out = _run_on_8_devices(SEEDS_SCRIPT)
    assert out["devices"] == 8 and out["mesh"] == {"runs": 2, "data": 1}
    assert out["runs_per_device"] == [2]
    # runs exchange nothing: the only collective gathers the (small) metrics for every process
    assert out["collectives"] == ["all-gather"]
    # the runs one by one against two vmapped per device: other kernels (grouped against plain
    # convolutions), so f32 rounding differences only, as between vmap and loop in test_seeds
    assert max(out["diffs"].values()) < 1e-6, out["diffs"]
    assert max(out["metric_diffs"].values()) < 1e-6 and out["sample_diff"] < 1e-5
    assert out["clip_reached"] == [np.float32(c) for c in (0.01, 0.02, 0.03, 0.04)]
    # the loop: 4 runs over 4 devices for 2 iterations, resumed on one device for a third, logs
    # what the 4 runs on one device log in 3 straight iterations
    assert out["run_config"]["run"] == 1 and out["run_config"]["runs"]["seed"] == 1
    # config.json says what the (resumed) run asked for and used, beside what the machine has
    assert out["run_config"]["training"]["devices"] == 1
    assert len(out["run_config"]["mesh_devices"]) == 1
    assert len(out["run_config"]["machine_devices"]) == 8
    for straight, resumed in zip(out["straight"], out["resumed"], strict=True):
        assert [r["iteration"] for r in straight] == [1, 2, 3]
        _close_logs(straight, resumed, 1e-5)


@pytest.mark.slow
@pytest.mark.heavy
def test_seeds_compose_with_data_parallelism_on_8_cpu_devices():
    """2 runs over 8 devices, each batch of 16 split over 4: gradients all-reduced within a run,
    and each run equal to itself on one device up to the order of the cross-device sums, in one
    step and in the loop."""
    out = _run_on_8_devices(COMPOSED_SCRIPT)
    assert out["mesh"] == {"runs": 2, "data": 4}
    assert out["all_reduce"] and out["per_device_batch"]
    assert max(out["diffs"].values()) < 1e-6, out["diffs"]
    assert max(out["metric_diffs"].values()) < 1e-4, out["metric_diffs"]
    for run, logged in enumerate(out["logs"]):
        assert [r["iteration"] for r in logged] == [1, 2]
        single = [{"iteration": i + 1, **{k: v[run] for k, v in m.items()}}
                  for i, m in enumerate(out["single"])]
        _close_logs(single, logged, 1e-3)
    for placed, streamed in zip(out["logs"], out["streamed"], strict=True):
        _close_logs(placed, streamed, 1e-6)  # the same batches, split the same way
    assert out["refused"] == ("batch size 6 does not split over 4 devices (each of the 2 runs "
                              "gets 4 of the 8); use a multiple of 4")
    # without --devices: all 8, the runs over as many as divide both, each batch over the rest
    assert out["default_split"] == {"3": {"runs": 1, "data": 8}, "6": {"runs": 2, "data": 4},
                                    "12": {"runs": 4, "data": 2}, "16": {"runs": 8, "data": 1}}
