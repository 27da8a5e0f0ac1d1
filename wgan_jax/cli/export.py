"""`python -m wgan_jax.cli.export`: ship a finished run's generator inside the package (or a
folder), with its card."""

from __future__ import annotations

import sys
from pathlib import Path

from wgan_jax import terminal
from wgan_jax.errors import ArgumentParser, run_command
from wgan_jax.eval import records
from wgan_jax.pretrained import export, folder
from wgan_jax.train import estimates


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m wgan_jax.cli.export",
                            description="Ship a finished run's generator inside the package.")
    parser.add_argument("workdir", help="training workdir (its checkpoints)")
    parser.add_argument("--name", required=True, help="name to load it by, e.g. mnist")
    parser.add_argument("--step", type=int, help="checkpoint iteration (default: the latest)")
    parser.add_argument("--samples", type=int, default=10000, help="images scored for the card")
    parser.add_argument("--command", default="", help="the command that trained it, for the card")
    parser.add_argument("--out", metavar="DIR",
                        help="folder to write it to (default: the package's, where load finds it)")
    parser.add_argument("--raw", action="store_true",
                        help="ship the trained generator, not the run's average")
    parser.add_argument("--fid", choices=("auto", "on", "off"),
                        help="FID on the card (auto: where its weights are installed and JAX "
                             "has a GPU or TPU; on a CPU about an hour per 10,000 samples and "
                             "their reference; default: the run's eval_fid)")
    args = parser.parse_args(argv)
    where = Path(args.out) if args.out else folder()

    def body():
        console = terminal.console()
        with terminal.Phases(console) as phases:
            def announce(evaluator, config) -> None:
                evaluator.track = phases.track
                console.print(estimates.evaluation_plan(evaluator, config, args.fid or "auto",
                                                        floor=False))

            card = export(args.workdir, args.name, args.step, args.samples, args.command, where,
                          averaged=not args.raw, fid=args.fid, announce=announce)
        scores = ", ".join(f"{k} {v:.4g}" for k, v in records.headline(card["evaluation"]).items())
        print(f"wrote {where / args.name}.msgpack: iteration {card['iterations']}, {scores}")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
