"""How long a folder of pictures takes to load: decoded the first time, from the cache after.

    python benchmarks/folder_speed.py                  # 60,000 MNIST digits as PNG files
    python benchmarks/folder_speed.py --count 5000 --image-size 32 --out results/x.json

Writes the bundled MNIST training images as PNG files into a temporary folder, in ten
sub-folders by label (writing is not timed), then times `data.load_splits` on it twice with an
empty cache folder: the first call finds, decodes, fits and caches every picture, the second
reads the cache. Prints both times and the per-picture cost as JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def write_pictures(folder: Path, count: int) -> None:
    from PIL import Image

    from wgan_jax import data

    mnist = data.load_bundled_mnist()
    for i in range(count):
        label = folder / str(mnist.labels[i])
        label.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mnist.images[i, :, :, 0]).save(label / f"{i:05d}.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60000, help="pictures in the folder")
    parser.add_argument("--image-size", type=int, default=0, help="fit them to this size")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    import os

    from run import write_report

    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "pictures", Path(tmp) / "cache"
        write_pictures(folder, args.count)
        os.environ["WGAN_JAX_CACHE"] = str(cache)
        from wgan_jax import data

        options = data.Options(image_size=args.image_size)
        times = []
        for _ in range(2):
            start = time.perf_counter()
            splits = data.load_splits(str(folder), options)
            times.append(time.perf_counter() - start)
        cache_bytes = sum(p.stat().st_size for p in cache.rglob("*.npz"))
    result = {"pictures": args.count, "image_size": args.image_size,
              "shape": list(splits.train.images.shape[1:]), "first_load_s": times[0],
              "cached_load_s": times[1], "ms_per_picture_first": 1000 * times[0] / args.count,
              "cache_mb": cache_bytes / 2**20}
    print(f"{args.count} pictures: first load {times[0]:.1f} s (decode, fit, cache: "
          f"{result['ms_per_picture_first']:.3f} ms each), cached load {times[1]:.2f} s")
    write_report(args.out, 2, [result])
    return 0


if __name__ == "__main__":
    sys.exit(main())
