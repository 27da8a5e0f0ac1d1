"""`python train.py` (the top-level file calls this): parse the flags, build the config, run."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import os
import sys
from pathlib import Path

import jax
from wgan_jax import config as config_lib
from wgan_jax import platform, terminal
from wgan_jax.train import distributed, estimates, events, loop, workdirs
from wgan_jax.errors import ArgumentParser, UserError, run_command, writable_folder

def build_parser() -> ArgumentParser:
    """The flags: one per config field, in its section's group (generated from the field's
    meaning and type in wgan_jax/config/), then those of where a run starts, runs and writes."""
    parser = ArgumentParser(
        description="Train a Wasserstein GAN (weight clipping) on MNIST, another dataset or a "
                    "folder of your own pictures. Defaults are the seed recipe's (Keras-GAN "
                    "wgan.py); --preset, --loss and --arch change some of them, and a flag given "
                    "wins over all three.",
        epilog="Each flag of a section sets the config field of the same name in that section "
               "(wgan_jax/config/); --set SECTION.FIELD=VALUE does the same.")
    for section, meaning in config_lib.SECTIONS.items():
        flags = parser.add_argument_group(f"{section}: {meaning}")
        for key, (where, field) in config_lib.FIELDS.items():
            if where == section and field.metadata["flag"] == "":
                _add_field_flag(flags, key, field)
    running = parser.add_argument_group("running: where a run starts, writes and runs")
    _add_field_flag(running, "preset", config_lib.FIELDS["preset"][1])
    _add_run_flags(running.add_argument)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _add_field_flag(group, key: str, field: dataclasses.Field) -> None:
    """--<key> (the field's flat name): its type from the field's default (a comma-separated
    list for --clip and --lr, which may give each batched run its own), unset (None) unless
    given."""
    meta, default = field.metadata, field.default
    shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
    help = f"{meta['help']} (default: {'lr' if default is None else shown})".replace("%", "%%")
    name = "--" + key.replace("_", "-")
    if isinstance(default, bool):
        group.add_argument(name, dest=key, action=argparse.BooleanOptionalAction,
                           default=None, help=help)
        return
    kind = _numbers if key in PER_RUN else functools.partial(_value, key)
    group.add_argument(name, dest=key, type=kind, choices=meta["choices"],
                       metavar=meta["metavar"], default=None, help=help)


def _value(name: str, text: str):
    try:
        return config_lib.parse_value(name, text)
    except UserError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_run_flags(flag) -> None:
    """The flags of where a run's data and outputs go, how it runs and how it resumes."""
    flag("--workdir", help="output folder (default: runs/<timestamp>)")
    flag("--dataset", help="the same as --data NAME (kept for older commands)")
    flag("--data-dir", help="the same as --data idx:DIR (kept for older commands)")
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
    flag("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
         help="set a config field (repeatable; after every other flag), e.g. --set "
              "nets.dropout=0 or --set gen_channels=64,32 (the section may be left out)")
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


# The flags that take a comma-separated list, one value per batched run (the run_<name>s field).
PER_RUN = ("clip", "lr")


def _per_run(args: argparse.Namespace) -> dict:
    """--clip/--lr as config fields: one value sets clip/lr; a list sets run_clips/run_lrs (and
    --seeds, if unset, to its length)."""
    fields, seeds = {}, args.seeds
    for name in PER_RUN:
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
    overrides = {key: getattr(args, key) for key, (_, field) in config_lib.FIELDS.items()
                 if field.metadata["flag"] == "" and key not in ("preset", *PER_RUN)}
    overrides.update(_per_run(args), data=_data(args))
    overrides.update(config_lib.parse_assignment(text) for text in args.set)  # --set comes last
    if args.resume:
        if args.preset is not None:
            overrides["preset"] = args.preset
        return workdirs.resumed_config(Path(workdir), args.resume_from, **overrides)
    if args.config:
        if args.preset:
            raise UserError("give --preset or --config, not both")
        return config_lib.from_dict(config_lib.load_file(args.config), **overrides)
    return config_lib.from_preset(args.preset or "seed", **overrides)


def use_compile_cache(folder: Path) -> None:
    """Points JAX's persistent compilation cache at `folder`. Run length and output intervals are
    not part of the compiled programs (Config.program), so a resume with more iterations hits."""
    writable_folder(folder, "--compile-cache")
    jax.config.update("jax_compilation_cache_dir", str(folder))


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
        if config.outputs.tensorboard:
            events.require()
        console = terminal.console()
        hint = platform.accelerator_hint()
        if hint:
            console.print(hint)
        loop.run(config, workdir, console, resume=args.resume, resume_from=args.resume_from,
                 notice=estimates.cpu_notice)
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
