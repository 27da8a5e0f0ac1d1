"""The CPU notice against the clock: for each kind of run, train.py's estimate (wgan_jax.train.estimates)
beside the wall time of the same command on this machine, start to exit.

    python benchmarks/cpu_estimates.py --out benchmarks/results/DATE-cpu-2core-estimates.json

Each command is shortened (--iterations) so that the table fits in a session; the estimate is of
the shortened command, so compilation, start-up and the closing evaluation weigh as they do for
a user's first try. Run it alone on the machine: the table is docs/speed.md's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RUNS = {
    "seed": ["--iterations", "100"],
    "quick": ["--preset", "quick", "--iterations", "300"],
    "conditional": ["--conditional", "--iterations", "100"],
    "dcgan 32 px": ["--arch", "dcgan", "--image-size", "32", "--iterations", "30"],
    "dcgan 64 px": ["--arch", "dcgan", "--image-size", "64", "--iterations", "10"],
    "official (64 px, 100-update iterations)": ["--preset", "official", "--iterations", "2",
                                                "--batch-size", "16"],
}


def predicted(flags: list[str], workdir: str) -> float:
    """What train.py's notice says for `flags`: the config completed by the data, as the loop
    completes it before the notice."""
    from wgan_jax.cli import train
    from wgan_jax.train import estimates, start

    config = train.build_config(train.parse_args([*flags, "--workdir", workdir]), workdir)
    return estimates.training_seconds(start.prepare(config)[0])


def measured(flags: list[str], workdir: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "train.py"), *flags, "--workdir", workdir],
                            capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated names of RUNS")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    from run import write_report

    rows = []
    for name, flags in RUNS.items():
        if args.only and name.split()[0] not in args.only.split(","):
            continue
        with tempfile.TemporaryDirectory() as folder:
            guess = predicted(flags, f"{folder}/a")
            wall = measured(flags, f"{folder}/b")
        rows.append({"run": name, "flags": " ".join(flags), "predicted_s": round(guess, 1),
                     "measured_s": round(wall, 1), "ratio": round(wall / guess, 2)})
        print(f"{name:42} predicted {guess:7.1f} s  measured {wall:7.1f} s  "
              f"ratio {wall / guess:5.2f}", flush=True)
        write_report(args.out, 0, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
