"""`python -m wgan_jax.cli.sample` (also `wgan-jax-sample`): images from a training run or a
shipped generator, as a grid, a folder of PNGs or an npz array."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from wgan_jax import platform, pretrained, terminal
from wgan_jax.ckpt import parse_step
from wgan_jax.errors import ArgumentParser, UserError, run_command, writable_folder
from wgan_jax.sample import (FORMATS, INTERPOLATION_STEPS, MAX_IMAGES, draw, from_run,
                             interpolations, latents, layout, output, parse_label, write)


def parse_args(argv: list[str] | None):
    parser = ArgumentParser(prog="python -m wgan_jax.cli.sample",
                            description="Write images from a trained generator.")
    parser.add_argument("workdir", nargs="?", help="a training workdir (its checkpoints)")
    parser.add_argument("--pretrained", metavar="NAME",
                        help=f"a shipped generator instead of a run ({', '.join(pretrained.names()) or 'none shipped'})")
    parser.add_argument("--step", help="checkpoint iteration, or 'best' (the best-scoring "
                                       "evaluation's); default: the latest")
    parser.add_argument("--run", type=int, help="which run of a folder of batched runs (--seeds)")
    parser.add_argument("--n", type=int, default=64, help="number of images")
    parser.add_argument("--format", choices=FORMATS,
                        help="grid: one picture; png-dir: a PNG per image; npz: uint8 array "
                             "'images' (default: from --out's extension, else grid)")
    parser.add_argument("--interpolate", type=int, metavar="K",
                        help=f"K rows of {INTERPOLATION_STEPS} images along spherical paths between "
                             f"random latent vectors (replaces --n)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent vectors")
    parser.add_argument("--label", help="a conditional generator's class to draw, or 'all' for a "
                                        "grid with a row per class (default: the classes in turn)")
    parser.add_argument("--out", help="output path (default: samples.png, samples/ or samples.npz)")
    return parser.parse_args(argv)


def run(args) -> tuple[Path, int]:
    """Does what the parsed flags ask; returns the output path and the image count."""
    if (args.workdir is None) == (args.pretrained is None):
        raise UserError("give a training workdir or --pretrained NAME (one of them)")
    if args.interpolate is not None and not 1 <= args.interpolate <= 1000:
        raise UserError(f"--interpolate must be between 1 and 1000, got {args.interpolate}")
    if not 1 <= args.n <= MAX_IMAGES:
        raise UserError(f"--n must be between 1 and {MAX_IMAGES}, got {args.n}")
    step = None if args.step is None else parse_step(args.step)
    fmt, out = output(args.format, args.out)
    writable_folder(out if fmt == "png-dir" else out.parent, "--out")
    if args.pretrained is not None:
        shipped = pretrained.load(args.pretrained)
        config, variables = shipped.config, shipped.variables
    else:
        config, variables = from_run(args.workdir, step, args.run)
    label = parse_label(args.label, config)
    if args.interpolate:
        z = interpolations(config, args.interpolate, args.seed)
        rows, cols = args.interpolate, INTERPOLATION_STEPS
        labels, _, _ = layout(config, args.interpolate, None if label == "all" else label)
        labels = None if labels is None else np.repeat(labels, cols)  # one class per path
    else:
        labels, rows, cols = layout(config, args.n, label)
        z = latents(config, rows * cols if label == "all" else args.n, args.seed)
    write(draw(variables, config, z, labels), out, fmt, rows, cols, labels)
    return out, len(z)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body():
        hint = platform.accelerator_hint()
        if hint:
            terminal.console().print(hint)
        out, count = run(args)
        print(f"wrote {count} images to {out}")

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
