"""8 fake CPU devices, in processes of their own (the device count is fixed when JAX starts).
Data parallelism: one sharded train step equals the single-device step on the same global batch,
and the training loop runs data parallel with the same numbers. Batched seeds: runs spread over
the devices train exactly as on one device, in the loop too, and resume on another split."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent

SCRIPT = r"""
import dataclasses, json, sys, tempfile
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, TESTS)
from conftest import TINY, noise_driven
from wgan_jax import data, distributed, init_state, loop, steps

config = dataclasses.replace(TINY, batch_size=16)
images = jax.device_put(data.load_bundled_mnist().images[:512])
state = init_state(config, jax.random.PRNGKey(0))
single, single_metrics = steps.train_chunk(jax.tree_util.tree_map(jnp.copy, state), images, config, 1)
mesh = distributed.device_mesh()
with jax.set_mesh(mesh):
    chunk = distributed.train_chunk(mesh)
    state8, images8 = distributed.replicate(state, mesh), distributed.replicate(images, mesh)
    hlo = chunk.lower(state8, images8, config, 1).compile().as_text()
    sharded, sharded_metrics = chunk(state8, images8, config, 1)
diffs = {jax.tree_util.keystr(p): float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
         for (p, a), b in zip(jax.tree_util.tree_leaves_with_path(single), jax.tree_util.tree_leaves(sharded))
         if not noise_driven(p)}
runs = {}
for devices in (1, 8):
    workdir = tempfile.mkdtemp() + "/run"
    loop.run(dataclasses.replace(config, devices=devices, iterations=2, log_every=1), workdir)
    runs[devices] = [json.loads(l) for l in open(workdir + "/metrics.jsonl")]
print(json.dumps({
    "devices": len(jax.devices()), "all_reduce": "all-reduce" in hlo,
    "per_device_batch": "f32[2,28,28,1]" in hlo, "diffs": diffs,
    "replicated": all(x.sharding.is_fully_replicated for x in jax.tree_util.tree_leaves(sharded)),
    "metrics": {k: [float(single_metrics[k][0]), float(sharded_metrics[k][0])] for k in single_metrics},
    "runs": runs}))
"""


SEEDS_SCRIPT = r"""
import dataclasses, json, sys, tempfile
import jax, jax.numpy as jnp, numpy as np
sys.path.insert(0, TESTS)
from conftest import TINY, noise_driven
from wgan_jax import UserError, data, loop, seeds

# 4 runs with their own clip bounds; on one device the CPU default trains them one by one
single = dataclasses.replace(TINY, seeds=4, run_clips=(0.01, 0.02, 0.03, 0.04), iterations=3,
                             log_every=1, sample_every=2, devices=1)
images = jax.device_put(data.load_bundled_mnist().images[:512])
states = seeds.init_states(single)
one, one_metrics = seeds.train_chunk(jax.tree_util.tree_map(jnp.copy, states), images, single, 1)
# over 2 devices, each trains its 2 runs vmapped (the accelerator path)
config = dataclasses.replace(single, devices=2, seed_batching="vmap")
mesh = seeds.run_mesh(config)
compiled = seeds._spread(mesh)[0].lower(
    jax.device_put(states, seeds.sharding(mesh)), images, config, 1).compile()
spread, spread_metrics = compiled(jax.device_put(states, seeds.sharding(mesh)), images)
z = seeds.sample_noise(config, 5)
samples = [seeds.generate(one, z, single), seeds.generate(spread, z, config, mesh)]
try:
    seeds.run_mesh(dataclasses.replace(config, seeds=3))
    refused = ""
except UserError as err:
    refused = str(err)

root = tempfile.mkdtemp()
loop.run(single, root + "/one")
# devices unset: the most of the 8 that divide 4 runs, so one run on each of 4; then resumed on one
loop.run(dataclasses.replace(single, devices=0, iterations=2), root + "/four")
loop.run(single, root + "/four", resume=True)
read = lambda name: [[json.loads(l) for l in open(f"{root}/{name}/run-{i}/metrics.jsonl")]
                     for i in range(4)]
print(json.dumps({
    "devices": len(jax.devices()), "mesh": mesh.devices.size,
    "collectives": [op for op in ("all-reduce", "all-to-all", "collective-permute", "all-gather")
                    if op in compiled.as_text()],
    "runs_per_device": sorted({leaf.sharding.shard_shape(leaf.shape)[0]
                               for leaf in jax.tree_util.tree_leaves(spread)}),
    "diffs": {jax.tree_util.keystr(p): float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
              for (p, a), b in zip(jax.tree_util.tree_leaves_with_path(one),
                                   jax.tree_util.tree_leaves(spread)) if not noise_driven(p)},
    "clip_reached": [float(max(np.abs(np.asarray(x)[i]).max()
                               for x in jax.tree_util.tree_leaves(spread.critic_params)))
                     for i in range(4)],
    "metric_diffs": {k: float(np.max(np.abs(one_metrics[k] - spread_metrics[k]))) for k in one_metrics},
    "sample_diff": float(jnp.max(jnp.abs(samples[0] - samples[1]))), "refused": refused,
    "default_split": {n: seeds.run_mesh(dataclasses.replace(config, seeds=n, devices=0)).devices.size
                      for n in (3, 6, 12, 16)},
    "straight": read("one"), "resumed": read("four"),
    "run_config": json.load(open(root + "/four/run-1/config.json"))}))
"""


def _run_on_8_devices(script: str) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"}
    result = subprocess.run([sys.executable, "-c", f"TESTS = {str(TESTS)!r}\n" + script],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_data_parallel_step_and_loop_equal_single_device_on_8_cpu_devices():
    out = _run_on_8_devices(SCRIPT)
    assert out["devices"] == 8
    # the batch really is split (16 images over 8 devices) and gradients/statistics all-reduced
    assert out["all_reduce"] and out["per_device_batch"]
    assert out["replicated"]  # params and optimizer states stay replicated
    # One iteration = 3 critic updates + 1 generator update; only the order of the cross-device
    # sums differs, which RMSprop keeps at ulp-sized steps (as the scan-vs-loop tests observe).
    assert max(out["diffs"].values()) < 1e-6, out["diffs"]
    for single, sharded in out["metrics"].values():
        assert abs(single - sharded) <= 1e-4 * abs(single) + 1e-9
    one, eight = out["runs"]["1"], out["runs"]["8"]
    assert [r["iteration"] for r in one] == [r["iteration"] for r in eight] == [1, 2]
    for a, b in zip(one, eight):
        for key in ("critic_loss", "generator_loss"):
            assert abs(a[key] - b[key]) <= 1e-3 * abs(a[key]) + 1e-8, (key, a[key], b[key])


def test_seeds_spread_over_8_cpu_devices_train_as_on_one():
    out = _run_on_8_devices(SEEDS_SCRIPT)
    assert out["devices"] == 8 and out["mesh"] == 2 and out["runs_per_device"] == [2]
    # runs exchange nothing: the only collective gathers the (small) metrics for every process
    assert out["collectives"] == ["all-gather"]
    # the runs one by one against two vmapped per device: other kernels (grouped against plain
    # convolutions), so f32 rounding differences only, as between vmap and loop in test_seeds
    assert max(out["diffs"].values()) < 1e-6, out["diffs"]
    assert max(out["metric_diffs"].values()) < 1e-6 and out["sample_diff"] < 1e-5
    assert out["clip_reached"] == [np.float32(c) for c in (0.01, 0.02, 0.03, 0.04)]
    assert out["refused"] == "3 seeds do not split over 2 devices; use a multiple of 2"
    # without --devices: the most of the 8 devices that divide the runs
    assert out["default_split"] == {"3": 3, "6": 6, "12": 6, "16": 8}
    # the loop: 4 runs over 4 devices for 2 iterations, resumed on one device for a third, logs
    # what the 4 runs on one device log in 3 straight iterations (one run per device there: the
    # single-run program, as on one device)
    assert out["run_config"]["run"] == 1 and out["run_config"]["seed"] == 1
    # config.json says what the (resumed) run asked for and used, beside what the machine has
    assert out["run_config"]["devices"] == 1 and len(out["run_config"]["mesh_devices"]) == 1
    assert len(out["run_config"]["machine_devices"]) == 8
    for straight, resumed in zip(out["straight"], out["resumed"], strict=True):
        assert [r["iteration"] for r in straight] == [r["iteration"] for r in resumed] == [1, 2, 3]
        for a, b in zip(straight, resumed):
            for key in ("critic_loss", "generator_loss", "wasserstein_estimate"):
                assert abs(a[key] - b[key]) <= 1e-5 * abs(a[key]) + 1e-9, (key, a[key], b[key])
