"""Data parallelism on 8 fake CPU devices, in a process of its own (the device count is fixed when
JAX starts): one sharded train step equals the single-device step on the same global batch, and
the training loop runs data parallel with the same numbers."""

import json
import os
import subprocess
import sys
from pathlib import Path

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
mesh = distributed.data_mesh()
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


def test_data_parallel_step_and_loop_equal_single_device_on_8_cpu_devices():
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"}
    result = subprocess.run([sys.executable, "-c", f"TESTS = {str(TESTS)!r}\n" + SCRIPT],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
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
