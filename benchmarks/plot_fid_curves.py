"""FID curves of several runs against several references, from a results file of rows
{"run", "reference", "iteration", "fid"}: one line per (run, reference), one picture.

    python benchmarks/plot_fid_curves.py benchmarks/results/2026-12-06-cpu-2core-icons-augment.json \
        docs/images/icons-augment-fid.png
    python benchmarks/plot_fid_curves.py benchmarks/results/2026-12-06-cpu-2core-mnist-long.json \
        docs/images/mnist-long-curves.png --ylabel "fd_mnist (10,000 samples)" --log --joiner ": "
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON with a 'rows' list")
    parser.add_argument("out", type=Path, help="the picture to write")
    parser.add_argument("--ylabel", default="FID (500 generated images)",
                        help="what the rows' 'fid' holds")
    parser.add_argument("--log", action="store_true", help="a logarithmic y axis")
    parser.add_argument("--joiner", default=", vs ",
                        help="between run and reference in the legend")
    args = parser.parse_args()
    rows = json.loads(args.results.read_text())["rows"]
    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    styles = {reference: style for reference, style in
              zip(dict.fromkeys(r["reference"] for r in rows), ("-", "--", ":"))}
    for colour, run in enumerate(dict.fromkeys(r["run"] for r in rows)):
        for reference, style in styles.items():
            points = sorted((r["iteration"], r["fid"]) for r in rows
                            if r["run"] == run and r["reference"] == reference)
            if points:
                axes.plot(*zip(*points), style, color=f"C{colour}", marker="o",
                          label=f"{run}{args.joiner}{reference}")
    axes.set_xlabel("generator iteration")
    axes.set_ylabel(args.ylabel)
    if args.log:
        axes.set_yscale("log")
    axes.legend(fontsize=8)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
