import gzip
import hashlib

import numpy as np
import pytest

from wgan_jax import UserError, data

# Uncompressed sha256 and label counts published with MNIST (assets/mnist/README.md).
SHA256 = {"train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
          "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"}
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return raw


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 3)):
        images_stem, labels_stem = data.IDX_FILES[split]
        write_idx(tmp_path / images_stem, rng.integers(0, 256, (n, 12, 8)))
        write_idx(tmp_path / f"{labels_stem}.gz", rng.integers(0, 10, n), compress=True)
    return tmp_path


def test_bundled_mnist_is_the_published_data(mnist_train):
    test = data.load_bundled_mnist("test")
    assert mnist_train.images.shape == (60000, 28, 28, 1) and mnist_train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28, 1)
    assert np.bincount(mnist_train.labels).tolist() == TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == TEST_COUNTS
    assert hashlib.sha256(mnist_train.images.tobytes()).hexdigest() == hashlib.sha256(
        data.load_idx(data.bundled_mnist_folder() / "train-images-idx3-ubyte.gz")[..., None]
        .tobytes()).hexdigest()


@pytest.mark.parametrize("stem", sorted(SHA256))
def test_bundled_files_decompress_to_the_published_bytes(stem):
    path = data.bundled_mnist_folder() / f"{stem}.gz"
    assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == SHA256[stem]


def test_idx_dir_reads_plain_and_gzipped_files_alike(idx_dir, tmp_path_factory):
    plain = data.load_idx_dir(idx_dir, "train")
    zipped_dir = tmp_path_factory.mktemp("zipped")
    for f in idx_dir.iterdir():
        raw = f.read_bytes()
        target = zipped_dir / (f.name if f.suffix == ".gz" else f.name + ".gz")
        target.write_bytes(raw if f.suffix == ".gz" else gzip.compress(raw))
    zipped = data.load_idx_dir(zipped_dir, "train")
    assert plain.images.shape == (6, 12, 8, 1)
    np.testing.assert_array_equal(plain.images, zipped.images)
    np.testing.assert_array_equal(plain.labels, zipped.labels)
    assert data.load(f"idx:{idx_dir}", split="heldout").images.shape == (3, 12, 8, 1)
    assert data.load(str(idx_dir)).images.shape == (6, 12, 8, 1)  # recognised by its files


@pytest.mark.parametrize("corruption, message", [
    (lambda raw: b"\x12\x34" + raw[2:], "bad magic number"),
    (lambda raw: raw[:-5], "header says shape"),
    (lambda raw: raw + b"\x00", "header says shape"),
    (lambda raw: raw[:6], "truncated IDX header"),
    (lambda raw: b"", "bad magic number"),
    (lambda raw: gzip.compress(raw)[:40], "cannot read"),
])
def test_corrupt_idx_files_give_one_line_errors_naming_the_file(idx_dir, corruption, message):
    path = idx_dir / data.IDX_FILES["train"][0]
    path.write_bytes(corruption(path.read_bytes()))
    with pytest.raises(UserError, match=message) as info:
        data.load_idx_dir(idx_dir)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_files_and_folders_are_named(idx_dir, tmp_path):
    (idx_dir / data.IDX_FILES["train"][0]).unlink()
    with pytest.raises(UserError, match="train-images-idx3-ubyte.*not found"):
        data.load_idx_dir(idx_dir)
    with pytest.raises(UserError, match="data folder not found"):
        data.load_idx_dir(tmp_path / "nowhere")


def test_wrong_shapes_are_refused(idx_dir):
    images_stem, labels_stem = data.IDX_FILES["train"]
    write_idx(idx_dir / images_stem, np.zeros((6, 12), np.uint8))
    with pytest.raises(UserError, match="expected uint8 images of shape"):
        data.load_idx_dir(idx_dir)
    write_idx(idx_dir / images_stem, np.zeros((6, 12, 8), np.uint8))
    (idx_dir / f"{labels_stem}.gz").unlink()
    write_idx(idx_dir / labels_stem, np.zeros(5, np.uint8))
    with pytest.raises(UserError, match="expected 6 labels"):
        data.load_idx_dir(idx_dir)


def test_tfds_data_source_path_on_mock_data():
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=9):
        mnist = data.load_tfds("mnist")
        cifar = data.load_tfds("cifar10", split="test")
        splits = data.load_splits("tfds:cifar10", data.Options(image_size=16, channels=1))
    assert splits.train.images.shape == (9, 16, 16, 1) and splits.heldout.images.shape == (9, 16, 16, 1)
    assert mnist.images.shape == (9, 28, 28, 1) and mnist.images.dtype == np.uint8
    assert mnist.labels.shape == (9,) and mnist.name == "tfds:mnist"
    assert cifar.images.shape == (9, 32, 32, 3)


def test_unknown_tfds_dataset_is_a_one_line_error():
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(UserError, match="no_such_dataset.*not found") as info:
        data.load("no_such_dataset")
    assert "\n" not in str(info.value)


def test_fashion_mnist_uses_debian_idx_files_when_installed(monkeypatch, idx_dir):
    monkeypatch.setattr(data.idx, "DEBIAN_FASHION_MNIST", idx_dir)
    loaded = data.load("fashion_mnist")
    assert loaded.images.shape == (6, 12, 8, 1) and "Debian" in loaded.name
