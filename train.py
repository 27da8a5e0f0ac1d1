"""Train a WGAN: parse flags, build the config, run. `python train.py --help` lists the flags."""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path

import jax
from rich.console import Console

from wgan_jax import config as config_lib
from wgan_jax import checkpoint, distributed, events, loop, models, steps
from wgan_jax.errors import ArgumentParser, UserError, run_command, writable_folder

# Seconds per generator iteration on 2 x86-64 cores = BASE + PER_GFLOP[arch] * GFLOP per iteration,
# and seconds per image through FID's Inception network, fitted to the measurements in
# benchmarks/NOTES.md ("CPU notice"). Only used to tell a CPU user roughly how long a run will take
# before it starts.
CPU_SECONDS_BASE, CPU_REFERENCE_CORES = 0.134, 2
CPU_SECONDS_PER_GFLOP = {"seed": 0.00343, "dcgan": 0.0182}
CPU_SECONDS_PER_FID_IMAGE = 0.28


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(
        description="Train a Wasserstein GAN (weight clipping) on MNIST, another dataset or a "
                    "folder of your own pictures.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--preset", choices=sorted(config_lib.PRESETS),
                        help="seed (the default): the Keras-GAN wgan.py recipe (4000 iterations, "
                             "batch 32); quick: digits in under 10 minutes on a 2-core CPU; "
                             "paper, official, keras-exact: parity with the WGAN paper's "
                             "Algorithm 1, the authors' PyTorch code, the seed's Keras program")
    flag = parser.add_argument
    flag("--loss", choices=config_lib.LOSSES,
         help="wgan: weight clipping (the seed); dcgan: sigmoid cross-entropy, Adam 2e-4; "
              "wgan-gp: gradient penalty, Adam 1e-4 betas (0, 0.9), LayerNorm critic "
              "(preset's if unset)")
    flag("--iterations", type=int, help="generator iterations (preset's if unset)")
    flag("--batch-size", type=int, help="images per batch (preset's if unset)")
    flag("--n-critic", type=int, help="critic updates per generator update (preset's if unset)")
    flag("--clip", type=_numbers, help="clip critic parameters to [-clip, clip]; with --seeds, a "
                                       "comma-separated list gives each run its own (preset's if unset)")
    flag("--lr", type=_numbers, help="learning rate of both networks; with --seeds, a "
                                     "comma-separated list gives each run its own (preset's or "
                                     "loss's if unset)")
    flag("--lr-critic", type=float, help="the critic's learning rate (default: --lr)")
    flag("--lr-generator", type=float, help="the generator's learning rate (default: --lr)")
    flag("--seed", type=int, help="root random seed (preset's if unset)")
    flag("--arch", choices=config_lib.ARCHS,
         help="seed: the Keras-GAN wgan.py networks, any image size; dcgan: the WGAN authors' "
              "DCGAN networks (square images of 16, 32, 64, ... pixels; preset's if unset)")
    flag("--conditional", action="store_true", default=None,
         help="class-conditional WGAN: the generator takes a class label, the critic a "
              "projection term; the labels come from the data (MNIST's digits, a folder's "
              "sub-folders)")
    flag("--ngf", type=int, help="DCGAN generator width (the authors' 64; preset's if unset)")
    flag("--ndf", type=int, help="DCGAN critic width (the authors' 64; preset's if unset)")
    flag("--seeds", type=int, help="train this many runs at once (seeds --seed, --seed+1, ...) "
                                   "in one vmapped program; each writes WORKDIR/run-<i>/, and "
                                   "WORKDIR/summary.md gives mean and spread (default: 1, or the "
                                   "length of a --clip/--lr list)")
    _add_run_flags(parser.add_argument)
    return parser.parse_args(argv)


def _add_run_flags(flag) -> None:
    """The flags of where a run's data and outputs go, how it runs and how it resumes."""
    flag("--workdir", help="output folder (default: runs/<timestamp>)")
    flag("--data", metavar="SOURCE",
         help="training images: mnist (bundled, the default), fashion_mnist, a folder of "
              "pictures (PNG, JPEG, WebP, BMP; sub-folders become labels) or of IDX files, or "
              "images:PATH, idx:PATH, tfds:NAME")
    flag("--image-size", type=int, metavar="N",
         help="resize (shorter side) and centre-crop the images to N x N (default: their own size)")
    flag("--channels", type=int, choices=(1, 3), help="1: grey, 3: RGB (default: as the files hold)")
    flag("--background", metavar="COLOUR",
         help="colour transparent pixels are composited onto (default: white)")
    flag("--dataset", help="the same as --data NAME (kept for older commands)")
    flag("--data-dir", help="the same as --data idx:DIR (kept for older commands)")
    flag("--sample-every", type=int, help="save a 5x5 sample grid every N iterations")
    flag("--log-every", type=int, help="write metrics every N iterations")
    flag("--checkpoint-every", type=int, help="save a checkpoint every N iterations")
    flag("--eval-every", type=int, help="score samples (fd_mnist, KID, ...) every N iterations "
                                       "and at the end; 0 turns evaluation off")
    flag("--eval-samples", type=int, help="generated images per evaluation")
    flag("--eval-fid", choices=("auto", "on", "off"),
         help="FID in evaluations (needs pip install -e '.[fid]'); auto: on where installed, "
              "except during training on a CPU (default: auto)")
    flag("--ema", type=float, metavar="DECAY",
         help="keep an exponential moving average of the generator with this decay (e.g. "
              "0.999) and draw samples and evaluations from it; 0 turns it off (preset's if unset)")
    flag("--tensorboard", action="store_true", default=None,
         help="also write TensorBoard event files into WORKDIR/tensorboard (needs the optional "
              "extra: pip install -e '.[tensorboard]')")
    flag("--compute-dtype", choices=("float32", "bfloat16"),
         help="dtype of activations and convolutions; params, statistics, losses and optimizer "
              "states stay float32 (float32 if unset)")
    flag("--devices", type=int, help="split each batch over this many local devices (default: "
                                     "all; the batch size must be a multiple); with --seeds, "
                                     "spread the runs over this many, whole runs each (default: "
                                     "as many as divide the runs)")
    flag("--coordinator", help="HOST:PORT of process 0, for a run over several hosts (one "
                               "process per host; env JAX_COORDINATOR_ADDRESS)")
    flag("--num-processes", type=int, help="processes in a multi-host run (env JAX_NUM_PROCESSES)")
    flag("--process-id", type=int, help="this process's index, 0 to N-1 (env JAX_PROCESS_ID)")
    flag("--distributed", action="store_true",
         help="join a multi-host run whose topology JAX detects (Cloud TPU slice, SLURM, Open MPI)")
    flag("--compile-cache", metavar="DIR",
         help="keep compiled programs in DIR (JAX's persistent compilation cache, also env "
              "JAX_COMPILATION_CACHE_DIR): a later run or --resume of the same networks and "
              "hyper-parameters loads them instead of compiling")
    flag("--resume-from", type=int, metavar="STEP",
         help="like --resume, from the checkpoint at iteration STEP rather than the newest intact one")
    flag("--config", metavar="FILE",
         help="start from the config fields of a JSON file, e.g. a run's config.json (instead of "
              "--preset)")
    flag("--set", action="append", default=[], metavar="FIELD=VALUE",
         help="set any config field (repeatable; after every other flag), e.g. --set dropout=0 "
              "--set gen_channels=64,32; the fields are listed in wgan_jax/config.py")
    flag("--resume", action="store_true",
         help="continue the run in --workdir from its latest checkpoint (its config is reused; "
              "only --iterations, the output intervals and the devices may change)")


def _numbers(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list of "
                                         f"numbers, got {text!r}") from None
    return values


def _per_run(args: argparse.Namespace) -> dict:
    """--clip/--lr as config fields: one value sets clip/lr; a list sets run_clips/run_lrs (and
    --seeds, if unset, to its length)."""
    fields, seeds = {}, args.seeds
    for name in ("clip", "lr"):
        values = getattr(args, name)
        if values is None:
            continue
        if len(values) == 1:
            fields[name] = values[0]
            continue
        if seeds is None:
            seeds = len(values)
        fields[f"run_{name}s"] = values
        fields[name] = values[0]
    return {**fields, "seeds": seeds}


def _data(args: argparse.Namespace) -> str | None:
    """--data, or what the older --dataset / --data-dir say."""
    given = [flag for flag in ("data", "dataset", "data_dir") if getattr(args, flag)]
    if len(given) > 1:
        raise UserError(f"give one of --data, --dataset, --data-dir (got --{given[0]} and "
                        f"--{given[1]})".replace("_", "-"))
    if args.data_dir:
        return f"idx:{args.data_dir}"
    return args.data or args.dataset


def build_config(args: argparse.Namespace, workdir: str) -> config_lib.Config:
    overrides = dict(
        loss=args.loss, iterations=args.iterations, batch_size=args.batch_size, n_critic=args.n_critic,
        **_per_run(args), seed=args.seed, data=_data(args), image_size=args.image_size,
        channels=args.channels, background=args.background, arch=args.arch, ngf=args.ngf,
        conditional=args.conditional,
        ndf=args.ndf, sample_every=args.sample_every, log_every=args.log_every,
        checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        eval_samples=args.eval_samples, eval_fid=args.eval_fid, devices=args.devices,
        compute_dtype=args.compute_dtype, ema=args.ema, lr_critic=args.lr_critic,
        lr_generator=args.lr_generator, tensorboard=args.tensorboard)
    overrides.update(config_lib.parse_assignment(text) for text in args.set)  # --set comes last
    if args.resume:
        if args.preset is not None:
            overrides["preset"] = args.preset
        return checkpoint.resumed_config(Path(workdir), args.resume_from, **overrides)
    if args.config:
        if args.preset:
            raise UserError("give --preset or --config, not both")
        return config_lib.from_dict(config_lib.load_file(args.config), **overrides)
    return config_lib.from_preset(args.preset or "seed", **overrides)


def use_compile_cache(folder: Path) -> None:
    """Points JAX's persistent compilation cache at `folder`. Run length and output intervals are
    not part of the compiled programs (Config.step), so a resume with more iterations hits."""
    writable_folder(folder, "--compile-cache")
    jax.config.update("jax_compilation_cache_dir", str(folder))


def cpu_notice(config: config_lib.Config) -> str | None:
    """On a CPU-only machine, a rough time estimate and a pointer to the quick preset."""
    if jax.default_backend() != "cpu":
        return None
    cores = os.cpu_count() or 1
    gflop = models.flops_per_iteration(config, steps.mean_critic_updates(config)) / 1e9
    seconds = config.iterations * (CPU_SECONDS_BASE + CPU_SECONDS_PER_GFLOP[config.arch] * gflop)
    if config.eval_every and config.eval_fid == "on":
        evaluations = config.iterations // config.eval_every + 1
        seconds += evaluations * config.eval_samples * CPU_SECONDS_PER_FID_IMAGE
    seconds *= CPU_REFERENCE_CORES / min(cores, 16)
    quick = config.preset != "quick" and config.data == "mnist"
    hint = "; `--preset quick` draws digits in under 10 minutes" if quick else ""
    return (f"No GPU/TPU found: training on {cores} CPU core(s) will take roughly "
            f"{max(1, round(seconds / 60))} minutes{hint}.")


def train(args: argparse.Namespace) -> int:
    """Sets up what the flags ask for and trains; a signal's stop is its own exit status."""
    args.resume = args.resume or args.resume_from is not None
    if args.resume and not args.workdir:
        raise UserError("--resume needs --workdir (the run to continue)")
    workdir = args.workdir or os.path.join("runs", datetime.datetime.now().strftime("%Y%m%d-%H%M%S"))
    try:
        if args.compile_cache:
            use_compile_cache(Path(args.compile_cache))
        distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                               auto=args.distributed)
        config = build_config(args, workdir)
        if config.tensorboard:
            events.require()
        console = Console(stderr=True)
        notice = cpu_notice(config)
        if notice:
            console.print(notice)
        loop.run(config, workdir, console, resume=args.resume, resume_from=args.resume_from)
    except loop.Interrupted as stop:
        print(str(stop), file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:  # before training started: nothing to save
        print("interrupted before training started; nothing was saved", file=sys.stderr)
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command(lambda: train(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
