"""Where the averaged generator's BatchNorm statistics should come from, measured.

    python benchmarks/ema_stats.py RUN [RUN ...] [--samples 10000] [--out table.md]

For each run that kept a generator average (`--ema`), its latest checkpoint is scored three ways
on the run's own fixed evaluation noise: the trained (raw) generator, the average with averaged
running statistics (`ema_stats="averaged"`), and the average with statistics recomputed from
RECOMPUTE_SAMPLES latent vectors (`ema_stats="recomputed"`). A folder of batched runs counts as
its runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wgan_jax.core.runs import init_states, run_configs  # noqa: E402
from wgan_jax.ckpt import read_states  # noqa: E402
from wgan_jax.core.state import select  # noqa: E402
from wgan_jax.eval.evaluator import Evaluator  # noqa: E402

WAYS = ("raw", "averaged", "recomputed")


def scores(workdir: Path, samples: int) -> list[dict]:
    config, states, _ = read_states(workdir, None, init_states)
    rows = []
    for i, run in enumerate(run_configs(config)):
        one = select(states, i)
        evaluator = Evaluator(run, samples)
        row = {"run": f"{workdir.name}/{i}", "iteration": int(one.step)}
        for way in WAYS:
            program = run.replace(ema_stats="averaged" if way == "raw" else way).program()
            images = evaluator.generate(one, program, averaged=way != "raw")
            row[way] = evaluator.finish(evaluator.dispatch_images(images))[f"fd_{evaluator.name}"]
        rows.append(row)
        print(row, flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rows = [row for run in args.runs for row in scores(run, args.samples)]
    lines = ["| run | iteration | fd raw | fd averaged, averaged statistics | "
             "fd averaged, recomputed statistics |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['run']} | {r['iteration']} | {r['raw']:.1f} | {r['averaged']:.1f} | "
              f"{r['recomputed']:.1f} |" for r in rows]
    lines.append("| median | | " + " | ".join(f"{statistics.median(r[w] for r in rows):.1f}"
                                                for w in WAYS) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
