"""Batched seeds against one run: ms per generator iteration of N runs vmapped in one program
(wgan_jax.core.runs, what `train.py --seeds N` runs) beside the single run, in one process.

    python benchmarks/seeds.py                                # seed networks, batch 64, 1 and 8 runs
    python benchmarks/seeds.py --preset quick --iterations 5 --out benchmarks/results/x.json

Issue 6's target: 8 runs in at most 2x the wall time of 1 on a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def time_runs(config, images, runs: int, iterations: int, batching: str) -> dict:
    """One untimed first call (compilation and warm-up), then `iterations` timed dispatches of
    one generator iteration each, as `train.py` makes them."""
    import jax

    from wgan_jax.train import programs
    from wgan_jax.core.runs import init_states

    config = config.replace(seeds=runs, seed_batching=batching, devices=1)
    run = programs.build(config, programs.batching(config), programs.device_mesh(config))
    state, images = run.place_states(init_states(config)), run.place_data(images)
    start = time.perf_counter()
    state, metrics = run.train(state, images)
    jax.block_until_ready((state, metrics))
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(iterations):
        state, metrics = run.train(state, images)
    jax.block_until_ready((state, metrics))
    ms = 1000 * (time.perf_counter() - start) / iterations
    return {"runs": runs, "batching": programs.batching(config) if runs > 1 else "-",
            "ms_per_iter": ms, "ms_per_run_iter": ms / runs, "first_call_s": first_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="seed", help="networks and recipe (seed, quick, ...)")
    parser.add_argument("--batch", type=int, default=64, help="images per batch, per run")
    parser.add_argument("--runs", default="1,8", help="comma-separated run counts; 1 is the baseline")
    parser.add_argument("--iterations", type=int, default=0,
                        help="timed generator iterations per entry (0: 200 on GPU, 3 on CPU)")
    parser.add_argument("--batching", default="auto",
                        help="comma-separated seed_batching modes to time: auto, vmap, loop")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    import jax

    from run import write_report
    from wgan_jax import config as config_lib, data

    gpu = jax.default_backend() != "cpu"
    iterations = args.iterations or (200 if gpu else 3)
    config = config_lib.from_preset(args.preset, batch_size=args.batch)
    images = data.load_bundled_mnist().images
    counts = [int(n) for n in args.runs.split(",")]
    results = [time_runs(config, images, n, iterations, mode) for n in counts
               for mode in (args.batching.split(",") if n > 1 else ["auto"])]
    one = next((r["ms_per_iter"] for r in results if r["runs"] == 1), None)
    print(f"{'runs':>4} {'batching':>8} {'ms/iter (all runs)':>19} {'ms/iter per run':>16} "
          f"{'x 1 run':>8} {'first call s':>12}")
    for r in results:
        r["x_one_run"] = r["ms_per_iter"] / one if one else None
        ratio = f"{r['x_one_run']:.2f}" if one else "-"
        print(f"{r['runs']:>4} {r['batching']:>8} {r['ms_per_iter']:>19.2f} "
              f"{r['ms_per_run_iter']:>16.2f} {ratio:>8} {r['first_call_s']:>12.1f}")
    write_report(args.out, iterations, results, preset=args.preset, batch=args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
