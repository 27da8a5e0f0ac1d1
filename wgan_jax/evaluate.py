"""Sample quality of a generator: metrics against the held-out split, reports and comparisons.

    python -m wgan_jax.evaluate WORKDIR                     # report.md, report.json, figures
    python -m wgan_jax.evaluate --compare A B C --out DIR   # several runs side by side

Two families of metrics, each where it applies:
- FID (wgan_jax.fid), for any data, where the optional extra is installed: Inception-v3 features
  of the generated images against those of the held-out split (the test split of MNIST-like
  datasets; a share of a picture folder never trained on) or, on request, the training split.
- fd_<name>, kid_<name>, classifier score, class coverage, precision and recall in the feature
  space of a classifier the package ships (wgan_jax.classifier), where the held-out split is that
  classifier's test set (MNIST, Fashion-MNIST): cheap, and sharp on digits, but on its own scale.

Generated images come from a fixed noise set (the run's EVAL random stream), so a run's scores
are reproducible and comparable across its iterations. Real training images scored the same way
give the floor a perfect generator would reach.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from wgan_jax import (batches, classifier, data, estimates, fid, metrics, platform, records,
                      terminal, viz)
from wgan_jax.core import generation
from wgan_jax import config as config_lib
from wgan_jax.config import Config
from wgan_jax.errors import ArgumentParser, UserError, run_command, writable_folder
from wgan_jax.core.state import EVAL, TrainState, select, stream

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
            data.load(config.data, "heldout", config.data_options())
        self.name = data.known_classifier(self.heldout)
        self.params = classifier.load(self.name) if self.name else None
        self.fid = wants_fid(config.eval_fid) if use_fid is None else use_fid
        self.track = track
        self.samples = samples or config.eval_samples
        limit = max_samples(config.image_shape or self.heldout.images.shape[1:], self.fid)
        if self.samples > limit:
            raise UserError(f"{self.samples} evaluation samples do not fit in this machine's "
                            f"memory; at most {limit} do (--eval-samples, --samples)")
        self.z = jax.random.normal(stream(jax.random.PRNGKey(config.seed), EVAL),
                                   (-(-self.samples // GENERATE_BATCH) * GENERATE_BATCH,
                                    config.latent_dim))

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
        when config.ema is on (unless `averaged` is False)."""
        return self.images(generation.variables_of(state, config, averaged), config)

    def dispatch(self, state: TrainState, config: Config, images: jax.Array | None = None
                 ) -> dict[str, jax.Array]:
        """The outputs `finish` scores, of the images `generate` draws (or `images`, drawn so
        already); with generator averaging on and a classifier, also the classifier features of
        the trained (raw) generator's."""
        if images is None:
            images = self.generate(state, config)
        outputs = self.dispatch_images(images, self.labels(config))
        if config.ema and self.params is not None:
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


def estimate_tracking(history: list[dict]) -> tuple[float, int] | None:
    """How well the critic's Wasserstein estimate tracks sample quality over a run (the WGAN
    paper's Figure 3 claim): the Spearman rank correlation between the median-filtered estimate
    at each evaluated iteration and the Fréchet distance there, and the number of evaluations.
    +1: they rank the iterations alike (both fall as samples improve); None under 3 evaluations."""
    logs = [r for r in records.of_kind(history, records.TRAIN) if "wasserstein_estimate" in r]
    evals = [r for r in records.of_kind(history, records.EVAL) if records.quality_key(r)]
    if len(evals) < 3 or not logs:
        return None
    iterations = np.array([r["iteration"] for r in logs])
    smooth = viz.median_filter([r["wasserstein_estimate"] for r in logs],
                               viz.smoothing_window(len(logs)))
    # the filtered estimate at (or just before) each evaluated iteration
    at = np.searchsorted(iterations, [r["iteration"] for r in evals], side="right") - 1
    estimate = smooth[np.clip(at, 0, len(smooth) - 1)]
    quality = np.array([r[records.quality_key(r)] for r in evals])
    ranks = [np.argsort(np.argsort(v, kind="stable"), kind="stable") for v in (estimate, quality)]
    return float(np.corrcoef(*ranks)[0, 1]), len(evals)


def _load_run(workdir: Path, step: int | str | None = None
              ) -> tuple[Config, TrainState, list[dict]]:
    from wgan_jax.ckpt import read_states  # orbax is only needed to read a run
    from wgan_jax.seeds import init_states

    config, states, _ = read_states(workdir, step, init_states)
    if config.seeds > 1:
        raise UserError(f"{workdir} holds {config.seeds} batched runs: their evaluations are "
                        f"in {workdir}/run-*/metrics.jsonl and summary.md")
    state = select(states, 0)
    metrics_path = workdir / "metrics.jsonl"
    history = records.read(metrics_path)[0] if metrics_path.exists() else []
    return config, state, history


def report(workdir: str | Path, samples: int | None = None, step: int | str | None = None,
           reference: str = "heldout", use_fid: str = "auto",
           announce: Callable[[Evaluator, Config], None] | None = None) -> dict:
    """Evaluates a run's checkpoint (`step`: an iteration, "best", else the latest) against its
    held-out split (or, with `reference` "train", its training split); writes report.md,
    report.json and report/*.png into the workdir. Returns the report dict. `use_fid`: "auto"
    (not on a CPU), "on" or "off"; `announce` is called with the evaluator before the work."""
    workdir = Path(workdir)
    config, state, history = _load_run(workdir, step)
    splits = data.load_splits(config.data, config.data_options())
    against = splits.train if reference == "train" else splits.heldout
    if against is None:
        raise UserError(f"{config.data} has no held-out split ({splits.heldout_note}); pass "
                        f"--reference train to evaluate against the training images")
    evaluator = Evaluator(config, samples, against, use_fid=wants_fid(use_fid))
    if not evaluator.active:
        raise UserError(nothing_to_measure(config, evaluator, use_fid))
    writable_folder(workdir / "report", "the report folder")  # before minutes of evaluation
    if announce is not None:
        announce(evaluator, config)
    images = evaluator.generate(state, config)
    outputs = evaluator.dispatch(state, config, images)
    final = evaluator.finish(outputs)
    images = np.asarray(images)
    figures = workdir / "report"
    viz.save_grid(images[:100], figures / "samples.png", rows=10, cols=10)
    viz.plot_training(history, figures / "curves.png")
    if "probs" in outputs:
        viz.save_class_grid(images, np.asarray(outputs["probs"]), figures / "per_class.png")
        viz.plot_coverage(final["class_shares"], figures / "coverage.png")
    result = {"workdir": str(workdir), "iteration": int(state.step), "samples": evaluator.samples,
              "data": config.data, "reference": against.name,
              "reference_images": len(against.images), "heldout": splits.heldout_note,
              "measured": evaluator.describe(), "preset": config.preset, "metrics": final,
              "real_train_images": evaluator.floor(splits.train),
              "history": records.of_kind(history, records.EVAL),
              "estimate_tracking": estimate_tracking(history),
              "config": config_lib.to_dict(config)}
    (workdir / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (workdir / "report.md").write_text(_report_markdown(result))
    return result


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
    return f"nothing to evaluate {config.data} with: {no_classifier(evaluator.heldout)}; {why_fid}"


def _rows(record: dict) -> list[tuple[str, str]]:
    """(record key, short name) of each metric of METRICS the record holds, in table order."""
    return [(key, name) for name in records.METRICS if (key := records.key_of(record, name))]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a bare | would split a markdown table cell


def _report_markdown(result: dict) -> str:
    m, floor = result["metrics"], result["real_train_images"]
    quality = records.quality_key(m)
    lines = [f"# Evaluation of `{result['workdir']}`", "",
             f"Preset `{result['preset']}`, data `{result['data']}`, iteration "
             f"{result['iteration']}: {result['measured']}. Held-out split: {result['heldout']}. "
             f"The last column is real training images scored the same way: what a perfect "
             f"generator would reach.", "",
             "| metric | this run | real train images | better | meaning |",
             "| --- | --- | --- | --- | --- |"]
    for key, name in _rows(m):
        meaning, better = records.METRICS[name]
        lines.append(f"| {key} | {m[key]:.4g} | {floor.get(key, float('nan')):.4g} | {better} "
                     f"| {_cell(meaning)} |")
    if "class_shares" in m:
        shares = ", ".join(f"{i}: {s:.3f}" for i, s in enumerate(m["class_shares"]))
        lines += ["", f"Predicted class shares: {shares}."]
    lines.append("")
    history = result["history"]
    if history:
        keys = [key for key, _ in _rows(history[-1])][:4]
        lines += ["## Over training", "", "| iteration | " + " | ".join(keys) + " |",
                  "| --- " * (len(keys) + 1) + "|"]
        lines += [f"| {r['iteration']} | " + " | ".join(f"{r[k]:.4g}" if k in r else "-"
                                                         for k in keys) + " |" for r in history]
        lines.append("")
    if result.get("estimate_tracking"):
        rho, count = result["estimate_tracking"]
        lines += [f"Spearman rank correlation of the median-filtered Wasserstein estimate with "
                  f"{quality} over the {count} evaluations: {rho:+.2f} (+1: the estimate falls "
                  f"exactly as the samples improve, the WGAN paper's claim).", ""]
    lines += ["## Figures", "", "Samples (10x10):", "", "![samples](report/samples.png)", "",
              "Wasserstein estimate (median-filtered) and quality over training:", "",
              "![curves](report/curves.png)", ""]
    if "class_shares" in m:
        lines += ["Samples sorted by predicted class (a row per class, most confident first):", "",
                  "![per class](report/per_class.png)", "", "Class coverage:", "",
                  "![coverage](report/coverage.png)", ""]
    return "\n".join(lines)


def compare(workdirs: list[str | Path], out: str | Path, samples: int | None = None) -> dict:
    """Several runs side by side: each run's report (made if missing), one table, overlaid
    curves and the sample grids in a row; written to out/compare.md, compare.json, *.png."""
    out = Path(out)
    writable_folder(out, "--out")
    results = []
    for workdir in map(Path, workdirs):
        path = workdir / "report.json"
        results.append(json.loads(path.read_text()) if path.exists() else report(workdir, samples))
    labels = _labels(results)
    viz.plot_compare([r["history"] for r in results],
                     [records.read(Path(r["workdir"]) / "metrics.jsonl")[0] for r in results],
                     labels, out / "compare_curves.png")
    viz.side_by_side([Path(r["workdir"]) / "report" / "samples.png" for r in results], labels,
                     out / "compare_samples.png")
    keys = [key for key, _ in _rows(results[0]["metrics"])
            if all(key in r["metrics"] for r in results)]
    lines = ["# Comparison", "", "| run | iteration | " + " | ".join(keys) + " |",
             "| --- | --- | " + " | ".join("---" for _ in keys) + " |"]
    for label, r in zip(labels, results):
        lines.append(f"| {label} | {r['iteration']} | "
                     + " | ".join(f"{r['metrics'][k]:.4g}" for k in keys) + " |")
    floor = results[0]["real_train_images"]
    lines.append("| real train images | - | " + " | ".join(f"{floor.get(k, float('nan')):.4g}"
                                                           for k in keys) + " |")
    lines += ["", f"Measured as: {results[0]['measured']} (see report.md of each run).", "",
              "![curves](compare_curves.png)", "", "![samples](compare_samples.png)", ""]
    (out / "compare.md").write_text("\n".join(lines))
    summary = {"runs": [{"label": label, "workdir": r["workdir"], "iteration": r["iteration"],
                         "metrics": r["metrics"]} for label, r in zip(labels, results)],
               "real_train_images": floor}
    (out / "compare.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _labels(results: list[dict]) -> list[str]:
    """Short names for runs: the workdir's folder name, made unique."""
    names = [Path(r["workdir"]).name for r in results]
    return [n if names.count(n) == 1 else str(Path(r["workdir"])) for n, r in zip(names, results)]


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m wgan_jax.evaluate",
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
