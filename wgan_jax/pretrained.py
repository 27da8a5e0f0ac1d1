"""Generators the project trained and ships inside the package, so samples need no training.

    generator = wgan_jax.pretrained.load("mnist")
    images = generator(z)                              # z: (B, latent_dim), images in [-1, 1]
    sevens = wgan_jax.pretrained.load("mnist-conditional")(z, labels=jnp.full(len(z), 7))

A shipped generator is `assets/generators/<name>.msgpack`, its parameters and BatchNorm statistics
(the averaged generator's where the run kept an average, as the run drew its samples), and
`<name>.json`, its card: the run's config and command, the iterations it trained, the training
data's sha256 and its evaluation on the run's fixed evaluation noise, which `load` plus
`evaluate.Evaluator` reproduce (tests/test_pretrained.py). A finished run becomes one with

    python -m wgan_jax.pretrained WORKDIR --name mnist [--step N] [--command "python train.py ..."]
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from importlib import resources
from pathlib import Path

import flax.serialization
import jax
import numpy as np

from wgan_jax import config as config_lib
from wgan_jax import estimates, records, terminal
from wgan_jax.core import generation
from wgan_jax.config import Config
from wgan_jax.errors import ArgumentParser, UserError, run_command, writable_folder
from wgan_jax.core.state import init_state, select


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A shipped generator: what `wgan_jax.draw` takes, and where it came from."""

    config: Config  # the run's config: the networks to build, the latent size
    variables: dict  # {"params": ..., "batch_stats": ...}
    card: dict  # recipe, command, iterations, training data sha256, evaluation

    @property
    def conditional(self) -> bool:
        return self.config.conditional

    def __call__(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Images in [-1, 1] from latent vectors z (B, latent_dim) and, for a conditional
        generator, the class labels (B,) to draw."""
        if self.conditional and labels is None:
            raise UserError(f"generator {self.card.get('name')!r} is conditional: give labels "
                            f"0..{self.config.num_classes - 1}")
        if not self.conditional and labels is not None:
            raise UserError(f"generator {self.card.get('name')!r} is not conditional; it takes "
                            f"no labels")
        return generation.draw(self.variables, z, self.config, labels)


def folder() -> Path:
    """Where the package keeps its shipped generators."""
    return Path(str(resources.files("wgan_jax") / "assets" / "generators"))


def check_name(name: str) -> None:
    """A name `load` can find again and that stays inside the generators folder."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) or ".." in name:
        raise UserError(f"--name {name!r}: use letters, digits, '-', '_' and '.' (it becomes a "
                        f"file name, e.g. mnist-conditional)")


def names(where: Path | None = None) -> list[str]:
    """The shipped generators' names."""
    where = where or folder()
    return sorted(p.stem for p in where.glob("*.msgpack") if p.with_suffix(".json").is_file())


def load(name: str, where: Path | None = None) -> Pretrained:
    """The shipped generator `name` (UserError naming the ones there are, if none is)."""
    where = where or folder()
    if name not in names(where):
        shipped = ", ".join(names(where)) or "none"
        raise UserError(f"no pretrained generator {name!r} (shipped: {shipped})")
    card = json.loads((where / f"{name}.json").read_text())
    config = config_lib.from_dict(card["config"])
    template = _variables_template(config)
    variables = flax.serialization.from_bytes(template, (where / f"{name}.msgpack").read_bytes())
    return Pretrained(config, variables, card)


def _variables_template(config: Config) -> dict:
    state = jax.eval_shape(init_state, config.step(), jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), state.gen.variables)


def export(workdir: str | Path, name: str, step: int | None = None, samples: int = 10000,
           command: str = "", where: Path | None = None, averaged: bool = True,
           fid: str | None = None, announce=None) -> dict:
    """Evaluates a run's generator (its checkpoint at `step`, the latest by default; the
    averaged one where the run kept an average, unless `averaged` is False) and writes it with
    its card as generator `name`; returns the card. `fid` ("auto", "on", "off"; None: the run's
    eval_fid) says whether the card has FID; auto: where its weights are installed, not on a
    CPU. `announce` is called with the evaluator and config before the evaluation."""
    from wgan_jax.ckpt import read_states  # orbax and the evaluation only to export
    from wgan_jax.evaluate import Evaluator, wants_fid
    from wgan_jax.seeds import init_states

    workdir, where = Path(workdir), where or folder()
    check_name(name)
    if samples < 100:
        raise UserError(f"--samples must be at least 100, got {samples}")
    writable_folder(where, "the generators folder")  # before minutes of evaluation
    config, states, dataset = read_states(workdir, step, init_states)
    if config.seeds > 1:
        raise UserError(f"{workdir} holds {config.seeds} batched runs; export one run")
    state, averaged = select(states, 0), averaged and bool(config.ema)
    variables = jax.device_get(generation.variables_of(state, config.step(), averaged))
    evaluator = Evaluator(config, samples, use_fid=wants_fid(fid or config.eval_fid))
    if announce is not None:
        announce(evaluator, config)
    images = evaluator.images(variables, config.step())
    record = evaluator.finish(evaluator.dispatch_images(images, evaluator.labels(config.step())))
    card = {"name": name, "data": config.data, "iterations": int(state.step),
            "averaged": averaged, "command": command, "samples": evaluator.samples,
            "measured": evaluator.describe(),
            "eval_seed": config.seed, "evaluation": record,
            "train_sha256": dataset["sha256"], "backend": jax.default_backend(),
            "jax": jax.__version__, "config": config_lib.to_dict(config)}
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.msgpack").write_bytes(flax.serialization.to_bytes(variables))
    (where / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def evaluate(generator: Pretrained, samples: int | None = None, use_fid: bool = False) -> dict:
    """The shipped generator scored as its card was: the same noise, classifier and metrics
    (FID too with `use_fid`: minutes on a CPU)."""
    from wgan_jax.evaluate import Evaluator

    evaluator = Evaluator(generator.config, samples or generator.card["samples"], use_fid=use_fid)
    images = evaluator.images(generator.variables, generator.config)
    return evaluator.finish(evaluator.dispatch_images(images, evaluator.labels(generator.config)))


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m wgan_jax.pretrained",
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
