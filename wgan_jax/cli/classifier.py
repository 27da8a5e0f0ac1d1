"""`python -m wgan_jax.cli.classifier`: train and ship the evaluation classifier."""

from __future__ import annotations

import sys

from wgan_jax.errors import ArgumentParser, run_command
from wgan_jax.eval.classifier import REQUIRED_ACCURACY, ship


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(description="Train and ship the evaluation classifier.")
    parser.add_argument("--dataset", choices=sorted(REQUIRED_ACCURACY), default="mnist")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="default: the dataset's RECIPES entry")
    parser.add_argument("--out", metavar="DIR",
                        help="folder to write it to (default: the package's, where evaluation "
                             "finds it)")
    args = parser.parse_args(argv)
    return run_command(lambda: ship(args))


if __name__ == "__main__":
    sys.exit(main())
