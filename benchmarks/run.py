"""Side-by-side speed of wgan_jax, PyTorch (eager and torch.compile) and the seed's Keras loop,
in one run.

    python benchmarks/run.py                       # every implementation that imports here
    python benchmarks/run.py --impl jax,torch --batch 64 --iterations 200
    python benchmarks/run.py --arch dcgan --size 64 --impl jax,torch,torch-compile --batch 64

Prints ms per generator iteration (n_critic = 5 critic steps + 1 generator step; the seed's
networks on MNIST, or the authors' DCGAN networks on random colour images of --size pixels),
iterations per second, compile/warm-up time and each implementation's time over wgan_jax's best
at the same batch size, as a table and as JSON; `--out` also writes the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def machine() -> dict:
    """The machine a result file came from."""
    import jax

    device = jax.devices()[0]
    return {"jax_device": str(device), "device_kind": getattr(device, "device_kind", "cpu"),
            "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__}


def write_report(out: str | None, timed_iterations: int, results: list[dict], **fields) -> None:
    """Prints the results as one JSON line and, with `out`, writes them there with the date and
    the machine."""
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), **fields, "timed_iterations": timed_iterations,
              "results": results}
    print(json.dumps(report))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")


def jax_benchmark(images, batch_size: int, iterations: int, unroll: int = 0,
                  dtype: str = "float32", arch: str = "seed") -> dict:
    """The training loop's own program (wgan_jax.train.programs) on one device, one iteration per
    dispatch as the loop runs it."""
    import jax

    from wgan_jax import from_preset
    from wgan_jax.train import programs
    from wgan_jax.core.runs import init_states

    config = dataclasses.replace(from_preset("seed", arch=arch), batch_size=batch_size,
                                 critic_unroll=unroll, compute_dtype=dtype, devices=1,
                                 image_shape=tuple(images.shape[1:]))
    run = programs.build(config, programs.batching(config), programs.device_mesh(config))
    data, states = run.place_data(images), run.place_states(init_states(config))
    start = time.perf_counter()
    compiled = run.train.lower(states, data).compile()
    compile_s = time.perf_counter() - start
    states, metrics = compiled(states, data)  # warm-up: first-run allocations
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(iterations):
        states, metrics = compiled(states, data)
    jax.block_until_ready((states, metrics))
    seconds = time.perf_counter() - start
    device = jax.devices()[0]
    name = f"wgan_jax{f' (unroll {unroll})' if unroll else ''}{' (bf16)' if dtype == 'bfloat16' else ''}"
    return {"impl": name, "batch": batch_size,
            "ms_per_iter": 1000 * seconds / iterations, "compile_s": compile_s,
            "device": getattr(device, "device_kind", str(device)), "version": jax.__version__}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", default="jax,torch,torch-compile,keras",
                        help="comma-separated: jax,torch,torch-compile,keras")
    parser.add_argument("--arch", choices=("seed", "dcgan"), default="seed",
                        help="seed: the seed's networks on MNIST; dcgan: the authors' DCGAN "
                             "networks on random colour images of --size pixels")
    parser.add_argument("--size", type=int, default=64, help="image side for --arch dcgan")
    parser.add_argument("--batch", default="32,64", help="comma-separated batch sizes")
    parser.add_argument("--iterations", type=int, default=0,
                        help="timed generator iterations per entry (0: 500 on GPU, 5 on CPU)")
    parser.add_argument("--critic-unroll", default="0",
                        help="wgan_jax critic-scan unroll factors to time (0: the backend's default)")
    parser.add_argument("--dtype", default="float32",
                        help="wgan_jax compute dtypes to time, comma-separated: float32,bfloat16")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    import jax
    import numpy as np

    from wgan_jax import data

    gpu = jax.default_backend() != "cpu"
    iterations = args.iterations or (500 if gpu else 5)
    images = data.load_bundled_mnist().images if args.arch == "seed" else \
        np.random.default_rng(0).integers(0, 256, (10000, args.size, args.size, 3), np.uint8)
    results = []
    for batch in (int(b) for b in args.batch.split(",")):
        for impl in args.impl.split(","):
            try:
                if impl == "jax":
                    for unroll in (int(u) for u in args.critic_unroll.split(",")):
                        for dtype in args.dtype.split(","):
                            results.append(jax_benchmark(images, batch, iterations, unroll, dtype,
                                                         args.arch))
                elif impl in ("torch", "torch-compile"):
                    import torch_wgan
                    results.append(torch_wgan.benchmark(images, batch, max(10, iterations // 5),
                                                        arch=args.arch,
                                                        compiled=impl == "torch-compile"))
                elif impl == "keras" and args.arch == "seed":
                    import keras_wgan
                    results.append(keras_wgan.benchmark(images, batch, max(5, iterations // 20)))
                else:
                    raise ValueError(f"unknown implementation {impl!r}")
            except Exception as err:  # one missing framework must not lose the other numbers
                results.append({"impl": impl, "batch": batch, "error": f"{type(err).__name__}: {err}"})
            print(json.dumps(results[-1]), flush=True)

    for r in results:
        best = min((q["ms_per_iter"] for q in results if q["batch"] == r["batch"]
                    and q["impl"].startswith("wgan_jax") and "ms_per_iter" in q), default=None)
        if "ms_per_iter" in r:
            r["iters_per_s"] = 1000 / r["ms_per_iter"]
            r["x_wgan_jax"] = r["ms_per_iter"] / best if best else None
    header = f"{'implementation':32} {'batch':>5} {'ms/iter':>9} {'iter/s':>8} {'compile s':>9} {'x wgan_jax':>10}"
    print(header)
    for r in results:
        if "error" in r:
            print(f"{r['impl']:32} {r['batch']:>5} {r['error'][:60]}")
        else:
            ratio = f"{r['x_wgan_jax']:.1f}" if r["x_wgan_jax"] else "-"
            print(f"{r['impl']:32} {r['batch']:>5} {r['ms_per_iter']:>9.2f} {r['iters_per_s']:>8.1f} "
                  f"{r['compile_s']:>9.1f} {ratio:>10}")
    write_report(args.out, iterations, results, arch=args.arch,
                 image_shape=list(images.shape[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
