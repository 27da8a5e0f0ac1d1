"""Sample quality of a generator: metrics against the held-out split, reports and comparisons.

    python -m wgan_jax.cli.evaluate WORKDIR                     # report.md, report.json, figures
    python -m wgan_jax.cli.evaluate --compare A B C --out DIR   # several runs side by side

Two families of metrics, each where it applies:
- FID (wgan_jax.eval.fid), for any data, where the optional extra is installed: Inception-v3 features
  of the generated images against those of the held-out split (the test split of MNIST-like
  datasets; a share of a picture folder never trained on) or, on request, the training split.
- fd_<name>, kid_<name>, classifier score, class coverage, precision and recall in the feature
  space of a classifier the package ships (wgan_jax.eval.classifier), where the held-out split is that
  classifier's test set (MNIST, Fashion-MNIST): cheap, and sharp on digits, but on its own scale.

Generated images come from a fixed noise set (the run's EVAL random stream), so a run's scores
are reproducible and comparable across its iterations. Real training images scored the same way
give the floor a perfect generator would reach.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import jax
import numpy as np

from wgan_jax import data, platform
from wgan_jax.config import Config
from wgan_jax.core import generation
from wgan_jax.core.state import EVAL, TrainState, stream
from wgan_jax.errors import UserError
from wgan_jax.eval import batches, classifier, fid, metrics


GENERATE_BATCH = classifier.EVAL_BATCH
# (description, total) -> a progress bar's advance; terminal.Phases.track.
Track = Callable[[str, int], batches.Advance]


def wants_fid(setting: str) -> bool:
    """Whether an evaluation computes FID: "on" (the weights must be installed), "off", or
    "auto": where the weights are installed and JAX has a GPU or TPU (on a CPU the Inception
    network takes about half an hour per 10,000 images; `--fid on` asks for it anyway)."""
    if setting == "off":
        return False
    if setting == "on":
        fid.require()
        return True
    return fid.available() and not platform.on_cpu()


def memory_bytes() -> int:
    """Memory an evaluation may take: half of the first device's (its allocator's limit on an
    accelerator, the machine's memory on a CPU), leaving the rest to training and the host."""
    stats = jax.local_devices()[0].memory_stats() or {}
    total = stats.get("bytes_limit") or os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return total // 2


def max_samples(image_shape: tuple[int, ...], use_fid: bool) -> int:
    """The most evaluation samples of this shape that fit in `memory_bytes()`: the generated
    images (float32, on the device) and the metrics' features and pairwise blocks per sample."""
    per_sample = 4 * math.prod(image_shape) + metrics.bytes_per_sample(classifier.FEATURES)
    if use_fid:
        per_sample += metrics.bytes_per_sample(fid.FEATURES)
    return memory_bytes() // per_sample


class Evaluator:
    """Scores generators of one config against its held-out split.

    `dispatch` only enqueues device work (generation, classification, Inception features) and
    returns device arrays; `finish` brings them to the host and computes the metrics. The
    training loop calls the two apart so the device never waits for the host.
    """

    def __init__(self, config: Config, samples: int | None = None,
                 heldout: data.Dataset | None = None, use_fid: bool | None = None,
                 track: Track | None = None):
        self.heldout = heldout if heldout is not None else \
            data.load(config.data.source, "heldout", config.data.options())
        self.name = data.known_classifier(self.heldout)
        self.params = classifier.load(self.name) if self.name else None
        self.fid = wants_fid(config.outputs.eval_fid) if use_fid is None else use_fid
        self.track = track
        self.samples = samples or config.outputs.eval_samples
        limit = max_samples(config.nets.image_shape or self.heldout.images.shape[1:], self.fid)
        if self.samples > limit:
            raise UserError(f"{self.samples} evaluation samples do not fit in this machine's "
                            f"memory; at most {limit} do (--eval-samples, --samples)")
        self.z = jax.random.normal(stream(jax.random.PRNGKey(config.runs.seed), EVAL),
                                   (-(-self.samples // GENERATE_BATCH) * GENERATE_BATCH,
                                    config.nets.latent_dim))

    @property
    def active(self) -> bool:
        """Whether there is anything to score with (a classifier for the data, or FID)."""
        return self.params is not None or self.fid

    def describe(self) -> str:
        """What the numbers are measured against, in words."""
        parts = [f"{self.samples} generated images against {self.heldout.name} "
                 f"({len(self.heldout.images)} images)"]
        if self.fid:
            parts.append("FID with the TF-FID Inception network")
        if self.name:
            parts.append(f"fd_{self.name} and the others in the {self.name} classifier's features")
        return "; ".join(parts)

    def labels(self, config: Config) -> jax.Array | None:
        """The classes a conditional generator is asked for, in turn (None: unconditional)."""
        return generation.balanced_labels(len(self.z), config)

    def _bar(self, description: str, total: int) -> batches.Advance | None:
        return self.track(description, total) if self.track is not None else None

    def images(self, variables: dict, config: Config) -> jax.Array:
        """The evaluation images (samples, H, W, C) in [-1, 1] of generator `variables`."""
        labels, count = self.labels(config), self.samples
        return batches.generate(variables, config, self.z[:count],
                                None if labels is None else labels[:count], GENERATE_BATCH,
                                self._bar("generating samples", count))

    def generate(self, state: TrainState, config: Config, averaged: bool = True) -> jax.Array:
        """The evaluation images of a training state, on the device: the averaged generator's
        when config.averaging.ema is on (unless `averaged` is False)."""
        return self.images(generation.variables_of(state, config, averaged), config)

    def dispatch(self, state: TrainState, config: Config, images: jax.Array | None = None
                 ) -> dict[str, jax.Array]:
        """The outputs `finish` scores, of the images `generate` draws (or `images`, drawn so
        already); with generator averaging on and a classifier, also the classifier features of
        the trained (raw) generator's."""
        if images is None:
            images = self.generate(state, config)
        outputs = self.dispatch_images(images, self.labels(config))
        if config.averaging.ema and self.params is not None:
            raw = self.generate(state, config, averaged=False)
            outputs["raw_features"] = classifier.classify(self.params, raw)[1]
        return outputs

    def dispatch_images(self, images: jax.Array | np.ndarray, labels: jax.Array | None = None,
                        of: str = "samples") -> dict[str, jax.Array]:
        """Class probabilities and features, and Inception features, of images in [-1, 1] or
        uint8, as device arrays; with the `labels` a conditional generator was asked for, also
        those (the conditional accuracy needs them). `of` names the images on progress bars."""
        outputs = {} if labels is None else {"requested": labels[:len(images)]}
        if self.params is not None:
            outputs["probs"], outputs["features"] = classifier.classify(
                self.params, images, self._bar(f"classifier features of {of}", len(images)))
        if self.fid:
            outputs["fid_features"] = fid.features(
                images, self._bar(f"Inception features of {of}", len(images)))
        return outputs

    def finish(self, outputs: dict[str, jax.Array]) -> dict:
        """Every metric of the dispatched outputs; with raw features, also fd_<name>_raw, the
        trained generator's Fréchet distance beside the averaged one's."""
        host = {k: np.asarray(v) for k, v in outputs.items()}
        result = {}
        if "probs" in host:  # the real side is computed on first use, and once per process
            real = _classifier_reference(self.name, self.params, self.heldout, self._bar)
            result.update(metrics.all_metrics(real, host["features"], host["probs"], self.name))
            if "raw_features" in host:
                result[f"fd_{self.name}_raw"] = metrics.frechet_distance(
                    real.mean, real.cov, *metrics.feature_stats(host["raw_features"]))
            if "requested" in host:
                result.update(metrics.conditional_accuracy(host["probs"], host["requested"]))
        if "fid_features" in host:
            images = self.heldout.images
            advance = None if fid.reference_cached(images) else self._bar(
                f"Inception features of {self.heldout.name} (cached after)", len(images))
            result["fid"] = fid.fid(fid.reference(images, advance), host["fid_features"])
        return result

    def floor(self, train: data.Dataset) -> dict:
        """The same metrics for the first `samples` real training images in place of generated
        ones: what a perfect generator would reach."""
        return self.finish(self.dispatch_images(train.images[:self.samples],
                                                of="real training images"))


_CLASSIFIER_REFERENCES: dict[tuple[str, str], metrics.Reference] = {}


def _classifier_reference(name: str, params, heldout: data.Dataset,
                          bar: Callable[[str, int], batches.Advance | None] = lambda *_: None
                          ) -> metrics.Reference:
    """The held-out split's classifier features and what the metrics need of them, once per
    process."""
    key = (name, heldout.sha256)
    if key not in _CLASSIFIER_REFERENCES:
        advance = bar(f"classifier features of {heldout.name}", len(heldout.images))
        _, features = classifier.predict(params, heldout.images, advance)
        _CLASSIFIER_REFERENCES[key] = metrics.Reference.of(features)
    return _CLASSIFIER_REFERENCES[key]


def no_classifier(heldout: data.Dataset) -> str:
    """Why no shipped classifier scores against `heldout`, truly: what they read."""
    shape = "x".join(map(str, heldout.images.shape[1:]))
    return (f"the shipped classifiers read the MNIST and Fashion-MNIST test sets as they ship "
            f"(28x28x1), and the held-out images here are {shape} ({heldout.name})")


def nothing_to_measure(config: Config, evaluator: Evaluator, use_fid: str) -> str:
    """Why an evaluation has nothing to score with: no classifier, and why FID is off."""
    why_fid = ("FID is off on a CPU unless asked for (--fid on)" if use_fid == "auto"
               and fid.available() else "FID is off (--fid off)" if use_fid == "off"
               else f"FID needs the Inception weights: {fid.INSTALL}")
    return f"nothing to evaluate {config.data.source} with: {no_classifier(evaluator.heldout)}; {why_fid}"
