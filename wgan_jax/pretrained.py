"""Generators the project trained and ships inside the package, so samples need no training.

    generator = wgan_jax.pretrained.load("mnist")
    images = generator(z)                              # z: (B, latent_dim), images in [-1, 1]
    sevens = wgan_jax.pretrained.load("mnist-conditional")(z, labels=jnp.full(len(z), 7))

A shipped generator is `assets/generators/<name>.msgpack`, its parameters and BatchNorm statistics
(the averaged generator's where the run kept an average, as the run drew its samples), and
`<name>.json`, its card: the run's config and command, the iterations it trained, the training
data's sha256 and its evaluation on the run's fixed evaluation noise, which `load` plus
`eval.evaluator.Evaluator` reproduce (tests/test_pretrained.py), and, where it was measured
afterwards, `standard_fid`: the standard FID with its sample count and reference (hours of
Inception on a CPU, so not part of an export there). A finished run becomes one with

    python -m wgan_jax.cli.export WORKDIR --name mnist [--step N] [--command "python train.py ..."]
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
from wgan_jax.config import Config
from wgan_jax.core import generation
from wgan_jax.core.state import init_state
from wgan_jax.errors import UserError, writable_folder


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A shipped generator: what `wgan_jax.draw` takes, and where it came from."""

    config: Config  # the run's config: the networks to build, the latent size
    variables: dict  # {"params": ..., "batch_stats": ...}
    card: dict  # recipe, command, iterations, training data sha256, evaluation

    @property
    def conditional(self) -> bool:
        return self.config.nets.conditional

    def __call__(self, z: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Images in [-1, 1] from latent vectors z (B, latent_dim) and, for a conditional
        generator, the class labels (B,) to draw."""
        if self.conditional and labels is None:
            raise UserError(f"generator {self.card.get('name')!r} is conditional: give labels "
                            f"0..{self.config.nets.num_classes - 1}")
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
    state = jax.eval_shape(init_state, config, jax.random.PRNGKey(0))
    return jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), state.gen.variables)


def export(workdir: str | Path, name: str, step: int | None = None, samples: int = 10000,
           command: str = "", where: Path | None = None, averaged: bool = True,
           fid: str | None = None, announce=None) -> dict:
    """Evaluates a run's generator (its checkpoint at `step`, the latest by default; the
    averaged one where the run kept an average, unless `averaged` is False) and writes it with
    its card as generator `name`; returns the card. `fid` ("auto", "on", "off"; None: the run's
    eval_fid) says whether the card has FID; auto: where its weights are installed, not on a
    CPU. `announce` is called with the evaluator and config before the evaluation."""
    from wgan_jax.ckpt.reading import generator_variables, read_run  # orbax only to export
    from wgan_jax.eval.evaluator import Evaluator, wants_fid

    workdir, where = Path(workdir), where or folder()
    check_name(name)
    if samples < 100:
        raise UserError(f"--samples must be at least 100, got {samples}")
    writable_folder(where, "the generators folder")  # before minutes of evaluation
    config, state, dataset = read_run(workdir, step, several="; export one run")
    averaged = averaged and bool(config.averaging.ema)
    variables = generator_variables(config, state, averaged)
    evaluator = Evaluator(config, samples, use_fid=wants_fid(fid or config.outputs.eval_fid))
    if announce is not None:
        announce(evaluator, config)
    images = evaluator.images(variables, config.program())
    record = evaluator.finish(evaluator.dispatch_images(images, evaluator.labels(config.program())))
    card = {"name": name, "data": config.data.source, "iterations": int(state.step),
            "averaged": averaged, "command": command, "samples": evaluator.samples,
            "measured": evaluator.describe(),
            "eval_seed": config.runs.seed, "evaluation": record,
            "train_sha256": dataset["sha256"], "backend": jax.default_backend(),
            "jax": jax.__version__, "config": config_lib.to_dict(config)}
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.msgpack").write_bytes(flax.serialization.to_bytes(variables))
    (where / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def evaluate(generator: Pretrained, samples: int | None = None, use_fid: bool = False) -> dict:
    """The shipped generator scored as its card was: the same noise, classifier and metrics
    (FID too with `use_fid`: minutes on a CPU)."""
    from wgan_jax.eval.evaluator import Evaluator

    evaluator = Evaluator(generator.config, samples or generator.card["samples"], use_fid=use_fid)
    images = evaluator.images(generator.variables, generator.config)
    return evaluator.finish(evaluator.dispatch_images(images, evaluator.labels(generator.config)))


if __name__ == "__main__":  # the command moved with the package layout (docs/architecture.md)
    sys.exit("error: the command is python -m wgan_jax.cli.export now")
