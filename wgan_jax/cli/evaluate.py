"""`python -m wgan_jax.cli.evaluate`: a training run's checkpoint scored against its held-out
images (or several runs compared)."""

from __future__ import annotations

import sys
from pathlib import Path

from wgan_jax import platform, terminal
from wgan_jax.config import Config
from wgan_jax.errors import ArgumentParser, UserError, run_command
from wgan_jax.eval import records
from wgan_jax.eval.evaluator import Evaluator
from wgan_jax.eval.report import compare, report
from wgan_jax.train import estimates


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m wgan_jax.cli.evaluate",
        description="Evaluate a training run's latest checkpoint, or compare several runs.")
    parser.add_argument("workdirs", nargs="+", help="training workdir(s)")
    parser.add_argument("--compare", action="store_true", help="compare the given runs")
    parser.add_argument("--out", help="output folder of --compare (default: comparison/)")
    parser.add_argument("--samples", type=int, help="generated images (default: the run's eval_samples)")
    parser.add_argument("--step", help="checkpoint iteration, or 'best' (default: the latest)")
    parser.add_argument("--reference", choices=("heldout", "train"), default="heldout",
                        help="real images to measure against: the held-out split (a test split, "
                             "or a share of a folder never trained on) or the training split")
    parser.add_argument("--fid", choices=("auto", "on", "off"), default="auto",
                        help="the standard FID: auto (where its weights are installed and JAX "
                             "has a GPU or TPU; on a CPU it takes about half an hour per 10,000 "
                             "images), on, or off")
    args = parser.parse_args(argv)
    return run_command(lambda: _command(args))


def _command(args) -> None:
    if args.samples is not None and args.samples < 100:
        raise UserError(f"--samples must be at least 100, got {args.samples}")
    if args.compare or len(args.workdirs) > 1:
        compare(args.workdirs, args.out or "comparison", args.samples)
        print(f"wrote {Path(args.out or 'comparison') / 'compare.md'}")
        return
    from wgan_jax.ckpt import parse_step

    step = None if args.step is None else parse_step(args.step)
    console = terminal.console()
    hint = platform.accelerator_hint()
    if hint:
        console.print(hint)
    with terminal.Phases(console) as phases:
        def announce(evaluator: Evaluator, config: Config) -> None:
            evaluator.track = phases.track
            console.print(f"Evaluating {args.workdirs[0]}: "
                          f"{estimates.evaluation_plan(evaluator, config, args.fid)}")

        result = report(args.workdirs[0], args.samples, step, args.reference, args.fid, announce)
    scores = ", ".join(f"{key} {result['metrics'][key]:.4g} (real train images: "
                       f"{result['real_train_images'][key]:.4g})"
                       for key in ("fid", records.quality_key(result["metrics"]))
                       if key in result["metrics"])
    print(f"{scores}; {result['measured']}; wrote {Path(args.workdirs[0]) / 'report.md'}")


if __name__ == "__main__":
    sys.exit(main())
