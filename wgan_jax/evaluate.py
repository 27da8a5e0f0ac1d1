"""Sample quality of a generator: metrics against the real test set, reports and comparisons.

    python -m wgan_jax.evaluate WORKDIR                     # report.md, report.json, figures
    python -m wgan_jax.evaluate --compare A B C --out DIR   # several runs side by side

Generated images come from a fixed noise set (the run's EVAL random stream), so a run's scores
are reproducible and comparable across its iterations; the real reference is the dataset's
10,000-image test split, and the training split's first 10,000 images give the floor a perfect
generator would reach.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from wgan_jax import classifier, data, metrics, steps, viz
from wgan_jax import config as config_lib
from wgan_jax.config import Config
from wgan_jax.errors import ArgumentParser, UserError
from wgan_jax.state import EVAL, TrainState, select, stream

GENERATE_BATCH = classifier.EVAL_BATCH


class Evaluator:
    """Scores generators of one config against its dataset's test split.

    `dispatch` only enqueues device work (generation and classification) and returns device
    arrays; `finish` brings them to the host and computes the metrics. The training loop calls
    the two apart so the device never waits for the host.
    """

    def __init__(self, config: Config, samples: int | None = None):
        self.name = config.dataset
        self.params = classifier.load(self.name)
        if tuple(config.image_shape) != (28, 28, 1):
            raise UserError(f"the {self.name} classifier takes 28x28x1 images, not {config.image_shape}")
        self.samples = samples or config.eval_samples
        self.data_dir = config.data_dir
        self.z = jax.random.normal(stream(jax.random.PRNGKey(config.seed), EVAL),
                                   (-(-self.samples // GENERATE_BATCH) * GENERATE_BATCH,
                                    config.latent_dim))

    def images(self, variables: dict, config: Config) -> jax.Array:
        """The evaluation images (samples, H, W, C) in [-1, 1] of generator `variables`."""
        images = [steps.draw(variables, self.z[i:i + GENERATE_BATCH], config)
                  for i in range(0, len(self.z), GENERATE_BATCH)]
        return jnp.concatenate(images)[:self.samples]

    def generate(self, state: TrainState, config: Config, averaged: bool = True) -> jax.Array:
        """The evaluation images of a training state, on the device: the averaged generator's
        when config.ema is on (unless `averaged` is False)."""
        return self.images(steps.variables_of(state, config, averaged), config)

    def dispatch(self, state: TrainState, config: Config) -> dict[str, jax.Array]:
        """Class probabilities and features of the images `generate` draws; with generator
        averaging on, also the features of the trained (raw) generator's images."""
        outputs = self.dispatch_images(self.generate(state, config))
        if config.ema:
            raw = self.generate(state, config, averaged=False)
            outputs["raw_features"] = classifier.classify(self.params, raw)[1]
        return outputs

    def dispatch_images(self, images: jax.Array) -> dict[str, jax.Array]:
        probs, features = classifier.classify(self.params, images)
        return {"probs": probs, "features": features}

    def finish(self, outputs: dict[str, jax.Array]) -> dict:
        host = {k: np.asarray(v) for k, v in outputs.items()}
        return self.score(host["probs"], host["features"], host.get("raw_features"))

    def score(self, probs: np.ndarray, features: np.ndarray,
              raw_features: np.ndarray | None = None) -> dict:
        """Every metric of the generated set; with `raw_features`, also fd_<name>_raw, the
        trained generator's Fréchet distance beside the averaged one's."""
        # The real side is computed on first use, so processes that never score skip it.
        real = _real_reference(self.name, self.data_dir)
        result = metrics.all_metrics(real, features, probs, self.name)
        if raw_features is not None:
            result[f"fd_{self.name}_raw"] = metrics.frechet_distance(
                real.mean, real.cov, *metrics.feature_stats(raw_features))
        return result

    def __call__(self, state: TrainState, config: Config) -> dict:
        return self.finish(self.dispatch(state, config))

    def reference(self, config: Config) -> dict:
        """The same metrics for real training images in place of generated ones: the floor."""
        train = data.load(config.dataset, config.data_dir, split="train")
        probs, features = classifier.predict(self.params, train.images[:self.samples])
        return self.score(probs, features)


@functools.lru_cache(maxsize=4)
def _real_reference(dataset: str, data_dir: str | None) -> metrics.Reference:
    """The test split's features and what the metrics need of them, once per process."""
    test = data.load(dataset, data_dir, split="test")
    _, features = classifier.predict(classifier.load(dataset), test.images)
    return metrics.Reference.of(features)


def estimate_tracking(records: list[dict]) -> tuple[float, int] | None:
    """How well the critic's Wasserstein estimate tracks sample quality over a run (the WGAN
    paper's Figure 3 claim): the Spearman rank correlation between the median-filtered estimate
    at each evaluated iteration and the Fréchet distance there, and the number of evaluations.
    +1: they rank the iterations alike (both fall as samples improve); None under 3 evaluations."""
    logs = [r for r in records if "wasserstein_estimate" in r]
    evals = [r for r in records if quality_key(r)]
    if len(evals) < 3 or not logs:
        return None
    iterations = np.array([r["iteration"] for r in logs])
    smooth = viz.median_filter([r["wasserstein_estimate"] for r in logs],
                               viz.smoothing_window(len(logs)))
    # the filtered estimate at (or just before) each evaluated iteration
    at = np.searchsorted(iterations, [r["iteration"] for r in evals], side="right") - 1
    estimate = smooth[np.clip(at, 0, len(smooth) - 1)]
    quality = np.array([r[quality_key(r)] for r in evals])
    ranks = [np.argsort(np.argsort(v, kind="stable"), kind="stable") for v in (estimate, quality)]
    return float(np.corrcoef(*ranks)[0, 1]), len(evals)


def quality_key(record: dict) -> str | None:
    """The Fréchet-distance key of an evaluation record (fd_mnist, fd_fashion_mnist), if any."""
    return next((k for k in record if k.startswith("fd_")), None)


def _load_run(workdir: Path, step: int | str | None = None
              ) -> tuple[Config, TrainState, list[dict]]:
    from wgan_jax.checkpoint import read_states  # orbax is only needed to read a run
    from wgan_jax.seeds import init_states

    config, states, _ = read_states(workdir, step, init_states)
    if config.seeds > 1:
        raise UserError(f"{workdir} holds {config.seeds} batched runs: their evaluations are "
                        f"in {workdir}/run-*/metrics.jsonl and summary.md")
    state = select(states, 0)
    metrics_path = workdir / "metrics.jsonl"
    records = viz.read_metrics(metrics_path) if metrics_path.exists() else []
    return config, state, records


def report(workdir: str | Path, samples: int | None = None, step: int | str | None = None) -> dict:
    """Evaluates a run's checkpoint (`step`: an iteration, "best", else the latest); writes
    report.md, report.json and report/*.png into the workdir. Returns the report dict."""
    workdir = Path(workdir)
    config, state, records = _load_run(workdir, step)
    evaluator = Evaluator(config, samples)
    outputs = evaluator.dispatch(state, config)
    final = evaluator.finish(outputs)
    probs = np.asarray(outputs["probs"])
    reference = evaluator.reference(config)
    images = np.asarray(evaluator.generate(state, config))
    figures = workdir / "report"
    viz.save_grid(images[:100], figures / "samples.png", rows=10, cols=10)
    viz.save_class_grid(images, probs, figures / "per_class.png")
    viz.plot_training(records, figures / "curves.png")
    viz.plot_coverage(final["class_shares"], figures / "coverage.png")
    result = {"workdir": str(workdir), "iteration": int(state.step), "samples": evaluator.samples,
              "dataset": config.dataset, "preset": config.preset, "metrics": final,
              "real_train_vs_test": reference,
              "history": [r for r in records if quality_key(r)],
              "estimate_tracking": estimate_tracking(records),
              "config": config_lib.to_dict(config)}
    (workdir / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (workdir / "report.md").write_text(_report_markdown(result))
    return result


_EXPLAIN = {
    "fd": "Fréchet distance between Gaussians fitted to the classifier's 128-d features "
          "(lower is better; not FID: the features are this project's classifier's)",
    "kid": "kernel (MMD^2, cubic kernel) distance in the same features; unbiased, can dip below 0",
    "classifier_score": "exp(E KL(p(y|x) || p(y))): up to 10 for confident, balanced classes",
    "coverage_kl": "KL of the predicted-class histogram from uniform: 0 balanced, 2.30 one class",
    "precision": "share of samples inside the real data's 3-NN manifold (quality)",
    "recall": "share of real images inside the samples' 3-NN manifold (diversity)",
}

SCALARS = ("fd", "kid", "classifier_score", "coverage_kl", "precision", "recall")


def _value(record: dict, key: str) -> float:
    """A metric by its short name: fd and kid carry the classifier's name as a suffix."""
    if key in ("fd", "kid"):
        return next(v for k, v in record.items() if k.startswith(key + "_"))
    return record[key]


def _report_markdown(result: dict) -> str:
    m, ref = result["metrics"], result["real_train_vs_test"]
    fd_key = quality_key(m)
    lines = [f"# Evaluation of `{result['workdir']}`", "",
             f"Preset `{result['preset']}`, dataset `{result['dataset']}`, iteration "
             f"{result['iteration']}; {result['samples']} generated images against the "
             f"{result['dataset']} test split. The last column is real training images scored "
             f"the same way: what a perfect generator would reach.", "",
             "| metric | this run | real train images | meaning |", "| --- | --- | --- | --- |"]
    for key in SCALARS:
        name = fd_key if key == "fd" else ("kid_" + fd_key[3:] if key == "kid" else key)
        meaning = _EXPLAIN[key].replace("|", "\\|")  # a bare | would split the table cell
        lines.append(f"| {name} | {_value(m, key):.4g} | {_value(ref, key):.4g} | {meaning} |")
    shares = ", ".join(f"{i}: {s:.3f}" for i, s in enumerate(m["class_shares"]))
    lines += ["", f"Predicted class shares: {shares}.", ""]
    history = result["history"]
    if history:
        lines += ["## Over training", "", "| iteration | " + fd_key + " | classifier score | coverage KL |",
                  "| --- | --- | --- | --- |"]
        lines += [f"| {r['iteration']} | {r[fd_key]:.4g} | {r['classifier_score']:.3f} | "
                  f"{r['coverage_kl']:.3f} |" for r in history]
        lines.append("")
    if result.get("estimate_tracking"):
        rho, count = result["estimate_tracking"]
        lines += [f"Spearman rank correlation of the median-filtered Wasserstein estimate with "
                  f"{fd_key} over the {count} evaluations: {rho:+.2f} (+1: the estimate falls "
                  f"exactly as the samples improve, the WGAN paper's claim).", ""]
    lines += ["## Figures", "", "Samples (10x10):", "", "![samples](report/samples.png)", "",
              "Samples sorted by predicted class (a row per class, most confident first):", "",
              "![per class](report/per_class.png)", "",
              "Wasserstein estimate (median-filtered) and quality over training:", "",
              "![curves](report/curves.png)", "", "Class coverage:", "",
              "![coverage](report/coverage.png)", ""]
    return "\n".join(lines)


def compare(workdirs: list[str | Path], out: str | Path, samples: int | None = None) -> dict:
    """Several runs side by side: each run's report (made if missing), one table, overlaid
    curves and the sample grids in a row; written to out/compare.md, compare.json, *.png."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for workdir in map(Path, workdirs):
        path = workdir / "report.json"
        results.append(json.loads(path.read_text()) if path.exists() else report(workdir, samples))
    labels = _labels(results)
    viz.plot_compare([r["history"] for r in results],
                     [viz.read_metrics(Path(r["workdir"]) / "metrics.jsonl") for r in results],
                     labels, out / "compare_curves.png")
    viz.side_by_side([Path(r["workdir"]) / "report" / "samples.png" for r in results], labels,
                     out / "compare_samples.png")
    fd_key = quality_key(results[0]["metrics"])
    names = [fd_key, "kid_" + fd_key[3:], *SCALARS[2:]]
    lines = ["# Comparison", "", "| run | iteration | " + " | ".join(names) + " |",
             "| --- | --- | " + " | ".join("---" for _ in SCALARS) + " |"]
    for label, r in zip(labels, results):
        lines.append(f"| {label} | {r['iteration']} | "
                     + " | ".join(f"{_value(r['metrics'], k):.4g}" for k in SCALARS) + " |")
    ref = results[0]["real_train_vs_test"]
    lines.append("| real train images | - | " + " | ".join(f"{_value(ref, k):.4g}" for k in SCALARS)
                 + " |")
    lines += ["", f"{names[0]} and {names[1]} are in the {fd_key[3:]} classifier's feature space "
              "(see report.md of each run).", "", "![curves](compare_curves.png)", "",
              "![samples](compare_samples.png)", ""]
    (out / "compare.md").write_text("\n".join(lines))
    summary = {"runs": [{"label": label, "workdir": r["workdir"], "iteration": r["iteration"],
                         "metrics": r["metrics"]} for label, r in zip(labels, results)],
               "real_train_vs_test": ref}
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
    args = parser.parse_args(argv)
    try:
        if args.samples is not None and args.samples < 100:
            raise UserError(f"--samples must be at least 100, got {args.samples}")
        if args.compare or len(args.workdirs) > 1:
            compare(args.workdirs, args.out or "comparison", args.samples)
            print(f"wrote {Path(args.out or 'comparison') / 'compare.md'}")
        else:
            from wgan_jax.checkpoint import parse_step

            step = None if args.step is None else parse_step(args.step)
            result = report(args.workdirs[0], args.samples, step)
            key = quality_key(result["metrics"])
            print(f"{key} {result['metrics'][key]:.4g} (real train images: "
                  f"{result['real_train_vs_test'][key]:.4g}); wrote "
                  f"{Path(args.workdirs[0]) / 'report.md'}")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
