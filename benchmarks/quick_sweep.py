"""How the quick preset was chosen: candidate CPU-sized recipes, each trained over several seeds.

    python benchmarks/quick_sweep.py OUTDIR --only c06,c10 [--seeds 3] [--iterations N]
    python benchmarks/quick_sweep.py OUTDIR --table benchmarks/results/quick-sweep.md

Each candidate is today's quick preset with a few fields overridden (the rounds before the preset
took n_critic 3 name the 5 they were run with), trained as `--seeds` runs
(seeds 0, 1, ...) in one `loop.run`, with evaluations every --eval-every iterations: OUTDIR/<name>/
holds run-<i>/ workdirs and summary.md. `--table` reads every finished candidate under OUTDIR and
writes the comparison: the median over seeds of the final fd_mnist (never one seed's), each seed's
value, the raw (unaveraged) generator's fd where averaging is on, the classifier score and the
smallest and largest class share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wgan_jax import from_preset  # noqa: E402
from wgan_jax.train import loop  # noqa: E402

# The quick preset's critic schedule and length until 2026-12-06: every round before the third
# ran with them.
N5 = dict(n_critic=5, iterations=2000)

CANDIDATES = {
    # First rounds (H100, one seed each, by eye): widths, batch and learning rate at the quick
    # preset's CPU cost; the quick preset of 2026-11 is g32-b32-lr2e-4.
    "g32-b64-lr1e-4": dict(gen_channels=(32, 16), batch_size=64, lr=1e-4, **N5),
    "g32-b32-lr1e-4": dict(gen_channels=(32, 16), batch_size=32, lr=1e-4, **N5),
    "g32-b64-lr2e-4": dict(gen_channels=(32, 16), batch_size=64, lr=2e-4, **N5),
    "g32-b32-lr2e-4": dict(gen_channels=(32, 16), batch_size=32, lr=2e-4, **N5),
    "g64-b64-lr1e-4": dict(gen_channels=(64, 32), batch_size=64, lr=1e-4, **N5),
    "g32-c8-b32-lr2e-4": dict(gen_channels=(32, 16), critic_channels=(8, 16, 32, 64),
                              batch_size=32, lr=2e-4, **N5),
    "g32-c8-b32-lr3e-4": dict(gen_channels=(32, 16), critic_channels=(8, 16, 32, 64),
                              batch_size=32, lr=3e-4, **N5),
    "g32-b16-lr2e-4": dict(gen_channels=(32, 16), batch_size=16, lr=2e-4, **N5),
    "g32-b16-lr1e-4": dict(gen_channels=(32, 16), batch_size=16, lr=1e-4, **N5),
    "g32-c8-b16-lr2e-4": dict(gen_channels=(32, 16), critic_channels=(8, 16, 32, 64),
                              batch_size=16, lr=2e-4, **N5),
    # Quality rounds (2-core CPU, 3 seeds each, fd_mnist): the clip bound (REFERENCE.md's
    # strongest lever), the critic's dropout, generator averaging, all at the quick preset's cost.
    "c01": dict(clip=0.01, ema=0.999, **N5),
    "c06": dict(clip=0.06, ema=0.999, **N5),
    "c10": dict(clip=0.1, ema=0.999, **N5),
    "c10-d0": dict(clip=0.1, dropout=0.0, ema=0.999, **N5),
    # Second quality round: the generator's width (the long full-width run drew far better digits
    # at 1000 iterations than any quarter-width candidate), at the same wall-time budget.
    "g64-c10-d0": dict(gen_channels=(64, 32), clip=0.1, dropout=0.0, ema=0.99, **N5),
    # Third quality round (2026-12-06): the clip bound past 0.1, on the preset of the day
    # (fd_mnist fell from 339 to 77 as the bound went from 0.01 to 0.06 in REFERENCE.md's round).
    "q-c20": dict(clip=0.2, **N5),
    # A cheaper critic schedule buying generator updates at the same FLOPs: n_critic 3 costs
    # 17.4 GFLOP per iteration against 23.8 at 5 (models.flops_per_iteration), so 2730
    # iterations take what the preset's 2000 take.
    "q-n3": dict(n_critic=3, iterations=2730),
    # The preset until 2026-12-06, for a side-by-side rerun against today's.
    "q-n5": N5,
}


def train(outdir: Path, names: list[str], seeds: int, iterations: int, eval_every: int) -> None:
    for name in names:
        fields = {**CANDIDATES[name], **({"iterations": iterations} if iterations else {})}
        length = fields.get("iterations", from_preset("quick").training.iterations)
        config = from_preset("quick", seeds=seeds, sample_every=500, log_every=50,
                             eval_every=min(eval_every, length), **fields)
        loop.run(config, outdir / name)


def _finals(candidate: Path) -> list[dict]:
    """Each run's last evaluation record."""
    finals = []
    for run in sorted(candidate.glob("run-*"), key=lambda p: int(p.name.split("-")[1])):
        lines = (run / "metrics.jsonl").read_text().splitlines()
        evaluations = [json.loads(line) for line in lines if '"fd_' in line]
        finals.append(evaluations[-1])
    return finals


def table(outdir: Path) -> str:
    rows = ["| candidate | overrides of `quick` | iteration | median fd_mnist | fd_mnist per seed | "
            "median raw fd_mnist | median classifier score | class shares min-max |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    results = {}
    for candidate in sorted(p for p in outdir.iterdir() if (p / "summary.json").exists()):
        finals = _finals(candidate)
        fd = [r["fd_mnist"] for r in finals]
        raw = [r["fd_mnist_raw"] for r in finals if "fd_mnist_raw" in r]
        shares = [s for r in finals for s in r["class_shares"]]
        results[candidate.name] = finals
        overrides = ", ".join(f"{k}={v}" for k, v in CANDIDATES.get(candidate.name, {}).items())
        rows.append(
            f"| {candidate.name} | {overrides} | {finals[0]['iteration']} | "
            f"**{statistics.median(fd):.1f}** | {', '.join(f'{v:.1f}' for v in fd)} | "
            f"{f'{statistics.median(raw):.1f}' if raw else '-'} | "
            f"{statistics.median(r['classifier_score'] for r in finals):.2f} | "
            f"{min(shares):.3f}-{max(shares):.3f} |")
    (outdir / "sweep.json").write_text(json.dumps(results, indent=2) + "\n")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--only", default="", help="comma-separated candidate names to train")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--iterations", type=int,
                        help="each run's length (default: the candidate's, else the preset's)")
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--table", type=Path, help="write the comparison of OUTDIR's candidates here")
    args = parser.parse_args()
    if args.table:
        args.table.write_text(table(args.outdir))
        return 0
    train(args.outdir, args.only.split(",") if args.only else list(CANDIDATES), args.seeds,
          args.iterations, args.eval_every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
