"""The two data placements side by side, and a folder bigger than the memory it may use.

    python benchmarks/scale.py speed --out results/x.json       # device vs stream, seed nets
    python benchmarks/scale.py folder --count 200000 --out results/y.json

speed: the seed networks at batch 64 on the bundled MNIST, ms per generator iteration with the
set on the device and streamed (the host gathering each iteration's batches with grain's
threads while the device trains), dispatched as the loop dispatches them; then the ratio.

folder: writes `count` synthetic pictures (a square and a disc of random colours on a random
background, PNG) at 64x64x3 into a folder (not timed), then runs train.py on it in a child
process under each of --budgets (WGAN_JAX_MEMORY_BUDGET; by default one below the decoded size,
one above): the decode into the memory-mapped cache (timed, first run), the placement line, and
`--iterations` iterations; then times the stream's reader alone (one iteration's batches). The child's
memory is sampled every 0.2 s from /proc: its peak anonymous resident memory (what the process
itself allocated) and its peak resident set (VmHWM, which also counts the cache file's pages
the kernel maps in and may evict at will).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]


def speed(iterations: int, batch_size: int) -> list[dict]:
    import jax

    from wgan_jax import data, from_preset
    from wgan_jax.train import feed, programs
    from wgan_jax.core.runs import init_states

    train = data.load_bundled_mnist()
    config = from_preset("seed").replace(batch_size=batch_size, devices=1,
                                 image_shape=tuple(train.images.shape[1:]),
                                 iterations=iterations + 10)
    rows = []
    for mode in ("device", "stream"):
        built = programs.build(config, programs.batching(config),
                               programs.device_mesh(config), streamed=mode == "stream")
        supply = feed.feed(config, built, train, 0)
        states = built.place_states(init_states(config))
        for at in range(10):  # compilation and the stream's first gathers
            states, metrics = built.iteration(states, supply(at), at)
        jax.block_until_ready(metrics)
        start = time.perf_counter()
        for at in range(10, 10 + iterations):
            states, metrics = built.iteration(states, supply(at), at)
        jax.block_until_ready(metrics)
        rows.append({"placement": mode, "ms_per_iteration":
                     1000 * (time.perf_counter() - start) / iterations})
        print(f"{mode:7} {rows[-1]['ms_per_iteration']:8.1f} ms per generator iteration",
              flush=True)
    ratio = rows[1]["ms_per_iteration"] / rows[0]["ms_per_iteration"]
    print(f"stream / device: {ratio:.3f}")
    rows.append({"stream_over_device": ratio})
    return rows


def _pictures(job: tuple[Path, int, int]) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    folder, start, stop = job
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        picture = Image.new("RGB", (64, 64), tuple(int(c) for c in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(picture)
        x, y = rng.integers(0, 40, 2)
        draw.rectangle((x, y, x + 20, y + 20), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        x, y = rng.integers(0, 44, 2)
        draw.ellipse((x, y, x + 18, y + 18), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        sub = folder / f"{i // 10000:03d}"
        sub.mkdir(exist_ok=True)
        picture.save(sub / f"{i:07d}.png")


def write_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    step = 5000
    jobs = [(folder, start, min(count, start + step)) for start in range(0, count, step)]
    with multiprocessing.Pool(os.cpu_count()) as pool:
        pool.map(_pictures, jobs)


def _memory(pid: int) -> dict[str, int]:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("RssAnon", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def folder_runs(count: int, iterations: int, budgets: list[str]) -> list[dict]:
    """train.py on one folder of `count` pictures under each memory budget in turn (the first
    run decodes, the others read its cache)."""
    with tempfile.TemporaryDirectory(prefix="wgan-scale-", dir=os.environ.get("SCALE_DIR")) as tmp:
        folder = Path(tmp) / "pictures"
        start = time.perf_counter()
        write_folder(folder, count)
        print(f"wrote {count} pictures in {time.perf_counter() - start:.0f} s", flush=True)
        rows = [folder_run(Path(tmp), folder, count, iterations, budget) for budget in budgets]
        return rows + [gather_speed(Path(tmp) / "cache")]


def gather_speed(cache_folder: Path, repeats: int = 200) -> dict:
    """Host time to read one iteration's real batches (5 x 64 random rows) from the cache file
    with the stream's reader, the file's pages in the kernel's page cache (just written)."""
    import numpy as np

    from wgan_jax.data import cache

    directory = next((cache_folder / "folders").iterdir())
    meta = cache.read_json(directory / "meta.json")
    rows = cache.Rows((str(directory / "images.u8"), 0), meta["row"])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(repeats):
        rows.read(rng.integers(0, meta["train"], (5, 64)))
    ms = 1000 * (time.perf_counter() - start) / repeats
    print(f"gathering one iteration's batches (320 rows of {'x'.join(map(str, meta['row']))}): "
          f"{ms:.2f} ms", flush=True)
    return {"gather_ms_per_iteration": ms, "rows_per_iteration": 320}


def folder_run(tmp: Path, folder: Path, count: int, iterations: int, budget: str) -> dict:
    env = {**os.environ, "WGAN_JAX_CACHE": str(tmp / "cache"),
           "WGAN_JAX_MEMORY_BUDGET": budget}
    command = [sys.executable, str(ROOT / "train.py"), "--data", str(folder),
               "--arch", "dcgan", "--ngf", "16", "--ndf", "16", "--batch-size", "64",
               "--iterations", str(iterations), "--eval-every", "0", "--sample-every", str(iterations),
               "--workdir", str(tmp / f"run-{budget}")]
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    peak = {"RssAnon": 0, "VmHWM": 0}

    def sample() -> None:
        while child.poll() is None:
            try:
                for name, value in _memory(child.pid).items():
                    peak[name] = max(peak[name], value)
            except OSError:
                return
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = child.communicate()
    seconds = time.perf_counter() - start
    sampler.join()
    lines = [line for line in err.splitlines() if line.startswith(("Streaming", "Decoding", "Placing", "done:"))]
    decoded = sum(f.stat().st_size for f in (tmp / "cache").rglob("*.u8"))
    print("\n".join(lines))
    print(f"train.py exit {child.returncode} in {seconds:.0f} s; peak anonymous resident "
          f"{peak['RssAnon'] / 2**20:.0f} MiB, peak resident set {peak['VmHWM'] / 2**20:.0f} "
          f"MiB; cache file {decoded / 1e9:.2f} GB", flush=True)
    if child.returncode:
        print(err[-3000:], file=sys.stderr)
    return {"pictures": count, "budget": budget, "exit": child.returncode,
            "seconds": seconds, "lines": lines, "cache_bytes": decoded,
            "peak_rss_anon_bytes": peak["RssAnon"], "peak_rss_bytes": peak["VmHWM"],
            "iterations": iterations}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("speed", "folder"))
    parser.add_argument("--iterations", type=int, default=50, help="timed generator iterations")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--count", type=int, default=200000, help="pictures in the folder")
    parser.add_argument("--budgets", default="1G,100G",
                        help="WGAN_JAX_MEMORY_BUDGET of each folder run, comma-separated")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    from run import write_report

    if args.what == "speed":
        write_report(args.out, args.iterations, speed(args.iterations, args.batch_size),
                     batch_size=args.batch_size, networks="seed")
    else:
        write_report(args.out, args.iterations,
                     folder_runs(args.count, args.iterations, args.budgets.split(",")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
