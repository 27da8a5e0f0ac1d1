"""MNIST's standard FID at a sample count a CPU can afford, for the README's results table.

    python benchmarks/fid_mnist.py --samples 2000 runs/quick --pretrained mnist --out results/x.json

Reference: the first N images of the MNIST test set, its statistics cached. Rows: each shipped
generator named by --pretrained and each run folder given (its latest checkpoint, the averaged
generator where the run kept one; the first run of a folder of batched runs), N generated images
each, then the floor (the first N training images, real against real; --no-floor leaves it
out). The JSON is written after every row. FID falls as N grows (its bias is about 1/N), so
numbers are comparable only at the same N; the field quotes N = 10,000 (0.28 s per image on a
2-core CPU, 47 minutes per set).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def generated(variables: dict, config, count: int):
    """`count` images of a generator, drawn as the evaluation draws them (its seed, balanced
    labels for a conditional one)."""
    from wgan_jax.eval.evaluator import Evaluator

    evaluator = Evaluator(config, count, use_fid=False)
    return evaluator.images(variables, config.program())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdirs", nargs="*", help="run folders to measure")
    parser.add_argument("--pretrained", action="append", default=[], help="a shipped generator")
    parser.add_argument("--samples", type=int, default=2000, help="images per set (N)")
    parser.add_argument("--out", help="also write the JSON here (after every row)")
    parser.add_argument("--no-floor", action="store_true", help="leave out the real-vs-real row")
    args = parser.parse_args()

    import jax

    from run import write_report
    from wgan_jax import data, pretrained
    from wgan_jax.eval import fid
    from wgan_jax.core import generation
    from wgan_jax.ckpt import read_states
    from wgan_jax.core.runs import init_states
    from wgan_jax.core.state import select

    n = args.samples
    splits = data.load_splits("mnist", data.Options())
    start = time.perf_counter()
    real = fid.reference(splits.heldout.images[:n])
    rows = []

    def measured(name: str, images) -> None:
        rows.append({"set": name, "fid": fid.fid(real, fid.features(images)),
                     "seconds": time.perf_counter() - start})
        print(f"{name:48} FID@{n} {rows[-1]['fid']:8.2f}", flush=True)
        # Written after every row: at 10,000 samples a row is most of an hour on a CPU.
        write_report(args.out, 0, rows, samples=n, reference=f"MNIST test (first {n})",
                     seconds=time.perf_counter() - start, backend=jax.default_backend())

    for name in args.pretrained:
        generator = pretrained.load(name)
        measured(f"--pretrained {name}", generated(generator.variables, generator.config, n))
    for workdir in args.workdirs:
        saved = read_states(Path(workdir), None, init_states)
        variables = generation.variables_of(select(saved.states, 0), saved.config.program())
        measured(workdir, generated(variables, saved.config, n))
    if not args.no_floor:
        measured(f"MNIST train (first {n}, the floor)", splits.train.images[:n])
    return 0


if __name__ == "__main__":
    sys.exit(main())
