"""A run's checkpoint evaluated into report.json and report.md (`report`), and several runs
side by side (`compare`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wgan_jax import config as config_lib, data
from wgan_jax.config import Config
from wgan_jax.core.state import TrainState
from wgan_jax.errors import UserError, writable_folder
from wgan_jax.eval import records, viz
from wgan_jax.eval.evaluator import Evaluator, nothing_to_measure, wants_fid


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
    from wgan_jax.ckpt.reading import read_run  # orbax is only needed to read a run

    config, state, _ = read_run(workdir, step, several=f": their evaluations are in "
                                f"{workdir}/run-*/metrics.jsonl and summary.md")
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
    splits = data.load_splits(config.data.source, config.data.options())
    against = splits.train if reference == "train" else splits.heldout
    if against is None:
        raise UserError(f"{config.data.source} has no held-out split ({splits.heldout_note}); pass "
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
              "data": config.data.source, "reference": against.name,
              "reference_images": len(against.images), "heldout": splits.heldout_note,
              "measured": evaluator.describe(), "preset": config.preset, "metrics": final,
              "real_train_images": evaluator.floor(splits.train),
              "history": records.of_kind(history, records.EVAL),
              "estimate_tracking": estimate_tracking(history),
              "config": config_lib.to_dict(config)}
    (workdir / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    (workdir / "report.md").write_text(_report_markdown(result))
    return result


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
