"""The picture-folder source (wgan_jax.data.folder) and the fitting of any source's images
(wgan_jax.data.fit): formats, sizes, channels, transparency, labels, the held-out share, the
cache, and bad folders."""

import hashlib
import os

import numpy as np
import pytest
from PIL import Image

from wgan_jax import UserError, data
from wgan_jax.data import cache as cache_lib
from wgan_jax.data import folder as folder_lib


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    """A cache folder of the test's own."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("WGAN_JAX_CACHE", str(path))
    return path


def save(path, array, mode=None, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path, **options)


def solid(colour, size=(8, 8)):
    """An RGB picture of one colour, (H, W, 3)."""
    return np.broadcast_to(np.array(colour, np.uint8), (*size, 3))


@pytest.fixture
def pictures(tmp_path):
    """Nine 8x8 colour pictures in three sub-folders, one per format."""
    root = tmp_path / "pictures"
    colours = {"cats": (200, 10, 10), "dogs": (10, 200, 10), "owls": (10, 10, 200)}
    for label, colour in colours.items():
        for i, ext in enumerate((".png", ".bmp", ".webp")):
            save(root / label / f"{i}{ext}", solid(colour), **({"lossless": True} if ext == ".webp" else {}))
    return root


def test_a_folder_of_png_bmp_webp_pictures_with_labels_from_sub_folders(pictures):
    dataset = folder_lib.load_folder(pictures, data.Options())
    assert dataset.images.shape == (9, 8, 8, 3) and dataset.images.dtype == np.uint8
    assert dataset.classes == ("cats", "dogs", "owls")
    assert dataset.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # lossless formats: the label's colour comes back exactly
    for image, label in zip(dataset.images, dataset.labels):
        np.testing.assert_array_equal(image, solid([(200, 10, 10), (10, 200, 10), (10, 10, 200)][label]))


def test_jpeg_files_are_read_and_pictures_at_the_top_level_mean_no_labels(tmp_path):
    save(tmp_path / "a.jpg", solid((120, 120, 120)), quality=95)
    save(tmp_path / "sub" / "b.JPEG", solid((30, 30, 30)), quality=95)
    (tmp_path / "notes.txt").write_text("not a picture")
    dataset = folder_lib.load_folder(tmp_path, data.Options())
    assert dataset.images.shape == (2, 8, 8, 3)  # RGB files, however grey their colour
    np.testing.assert_allclose(dataset.images[0], solid((120, 120, 120)), atol=3)  # JPEG's loss
    assert dataset.labels is None and dataset.classes is None


def test_grey_files_give_one_channel_colour_files_three_and_channels_converts(tmp_path):
    save(tmp_path / "grey" / "a.png", np.full((8, 8), 77))
    grey = folder_lib.load_folder(tmp_path / "grey", data.Options())
    assert grey.images.shape == (1, 8, 8, 1) and grey.images.max() == 77
    as_rgb = folder_lib.load_folder(tmp_path / "grey", data.Options(channels=3))
    np.testing.assert_array_equal(as_rgb.images, np.full((1, 8, 8, 3), 77))
    save(tmp_path / "colour" / "a.png", solid((255, 0, 0)))
    as_grey = folder_lib.load_folder(tmp_path / "colour", data.Options(channels=1))
    # ITU-R 601-2 luma, as Pillow converts: L = R * 299/1000 + G * 587/1000 + B * 114/1000
    assert as_grey.images.shape == (1, 8, 8, 1) and int(as_grey.images[0, 0, 0, 0]) == 76


@pytest.mark.parametrize("background, expected", [
    ("white", (255, 255, 255)), ("black", (0, 0, 0)), ("#ff0000", (255, 0, 0))])
def test_transparency_is_composited_onto_the_background(tmp_path, background, expected):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4] = (0, 0, 255, 255)  # opaque blue on top
    rgba[4:, :4] = (0, 0, 255, 128)  # half-transparent blue bottom left; bottom right clear
    save(tmp_path / "icon.png", rgba, "RGBA")
    image = folder_lib.load_folder(tmp_path, data.Options(background=background)).images[0]
    np.testing.assert_array_equal(image[0, 0], (0, 0, 255))
    np.testing.assert_array_equal(image[7, 7], expected)
    mixed = np.round(np.array(expected) * (1 - 128 / 255) + np.array((0, 0, 255)) * 128 / 255)
    np.testing.assert_allclose(image[7, 0], mixed, atol=1)


def test_a_bad_background_colour_is_one_line(tmp_path):
    save(tmp_path / "a.png", solid((1, 2, 3)))
    with pytest.raises(UserError, match="--background 'blurple': not a colour"):
        folder_lib.load_folder(tmp_path, data.Options(background="blurple"))


def test_shorter_side_resized_then_centre_cropped(tmp_path):
    bands = np.zeros((20, 60, 3), np.uint8)  # H 20, W 60: red | green | blue thirds
    bands[:, :20], bands[:, 20:40], bands[:, 40:] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    save(tmp_path / "wide.png", bands)
    image = folder_lib.load_folder(tmp_path, data.Options(image_size=10)).images[0]
    assert image.shape == (10, 10, 3)
    # the shorter side 20 -> 10, so the width 60 -> 30, and the centre 10 columns are green
    np.testing.assert_allclose(image[:, 2:8], np.broadcast_to((0, 255, 0), (10, 6, 3)), atol=2)


def test_pictures_of_several_sizes_need_an_image_size(tmp_path):
    save(tmp_path / "a.png", solid((9, 9, 9), (8, 8)))
    save(tmp_path / "b.png", solid((9, 9, 9), (16, 12)))
    with pytest.raises(UserError, match=r"2 sizes \(8x8, 12x16\); pass --image-size N") as info:
        folder_lib.load_folder(tmp_path, data.Options())
    assert "\n" not in str(info.value)
    assert folder_lib.load_folder(tmp_path, data.Options(image_size=8)).images.shape == (2, 8, 8, 3)


def test_unreadable_and_truncated_files_are_skipped_and_counted(tmp_path, capsys):
    for i in range(3):
        save(tmp_path / f"good{i}.png", solid((i, i, i)))
    (tmp_path / "empty.png").write_bytes(b"")
    good = (tmp_path / "good0.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[:len(good) // 2])
    dataset = folder_lib.load_folder(tmp_path, data.Options())
    assert len(dataset.images) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("warning: skipped 2 unreadable file(s) of 5 (first: ") and "\n" not in err
    assert "empty.png" in err


@pytest.mark.parametrize("make, message", [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "no picture files"),
    (lambda root: (root.mkdir(), (root / "a.png").write_bytes(b"junk")), "no readable picture among 1"),
    (lambda root: root.write_text("a file"), "is a file; give the folder"),
])
def test_bad_folders_are_one_line_errors(tmp_path, make, message):
    root = tmp_path / "pictures"
    make(root)
    with pytest.raises(UserError, match=message) as info:
        data.load(f"images:{root}")
    assert "\n" not in str(info.value)


def test_a_file_reached_through_a_link_counts_once(pictures):
    os.symlink(pictures / "cats" / "0.png", pictures / "cats" / "link.png")
    assert len(folder_lib.load_folder(pictures, data.Options()).images) == 9


def test_the_cache_is_read_on_the_second_load_and_rebuilt_when_the_folder_changes(
        pictures, cache, monkeypatch):
    first = folder_lib.load_folder(pictures, data.Options())
    assert len(list((cache / "folders").iterdir())) == 1
    assert isinstance(first.images, np.memmap) and not first.images.flags.writeable

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(folder_lib, "_decode_into", no_decoding)
    again = folder_lib.load_folder(pictures, data.Options())
    np.testing.assert_array_equal(again.images, first.images)
    with pytest.raises(AssertionError, match="decoded again"):  # other options: another cache
        folder_lib.load_folder(pictures, data.Options(image_size=4))
    monkeypatch.undo()
    monkeypatch.setenv("WGAN_JAX_CACHE", str(cache))
    save(pictures / "owls" / "9.png", solid((1, 1, 1)))
    changed = folder_lib.load_folder(pictures, data.Options())
    assert len(changed.images) == 10
    assert len(list((cache / "folders").iterdir())) == 1  # the stale cache was removed


def test_the_cached_hash_is_the_hash_of_the_images(tmp_path):
    for i in range(30):
        save(tmp_path / f"{i:02d}.png", np.full((4, 5), 7 * i))
    splits = data.load_splits(str(tmp_path), data.Options(holdout=0.2))
    assert splits.train.known_sha256 == hashlib.sha256(np.array(splits.train.images).data).hexdigest()
    assert splits.train.images.shape == (24, 4, 5, 1)


def test_an_interrupted_decode_goes_on_where_it_stopped(tmp_path, monkeypatch):
    """A fill interrupted after its first chunk keeps that chunk: the second run decodes only
    the rest, and the result equals an uninterrupted decode."""
    monkeypatch.setattr(cache_lib, "CHUNK", 4)
    for i in range(10):
        save(tmp_path / "pictures" / f"{i}.png", np.full((3, 3), 20 * i))
    decoded, real_decode = [], folder_lib._decode

    def failing_after_one_chunk(path, *args):
        if len(decoded) == 4:
            raise KeyboardInterrupt
        decoded.append(path.name)
        return real_decode(path, *args)

    monkeypatch.setattr(folder_lib, "_decode", failing_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        folder_lib.load_folder(tmp_path / "pictures", data.Options())
    decoded.clear()
    monkeypatch.setattr(folder_lib, "_decode", lambda path, *args: (decoded.append(path.name),
                                                                   real_decode(path, *args))[1])
    resumed = folder_lib.load_folder(tmp_path / "pictures", data.Options())
    assert sorted(decoded) == [f"{i}.png" for i in range(4, 10)]
    np.testing.assert_array_equal(resumed.images[:, 0, 0, 0], 20 * np.arange(10))


def test_an_unwritable_cache_costs_only_time(pictures, tmp_path, monkeypatch, capsys):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("WGAN_JAX_CACHE", str(blocked))
    assert len(folder_lib.load_folder(pictures, data.Options()).images) == 9
    assert "warning: cannot cache the decoded pictures" in capsys.readouterr().err


def test_a_fixed_seeded_share_is_held_out_and_never_trained_on(tmp_path):
    for i in range(40):
        save(tmp_path / f"{i:02d}.png", np.full((4, 4), i))
    options = data.Options(holdout=0.1)
    splits = data.load_splits(str(tmp_path), options)
    train, heldout = splits.train.images[:, 0, 0, 0], splits.heldout.images[:, 0, 0, 0]
    assert len(heldout) == 4 and len(train) == 36
    assert set(train) | set(heldout) == set(range(40)) and not set(train) & set(heldout)
    again = data.load_splits(f"images:{tmp_path}", options)
    np.testing.assert_array_equal(again.heldout.images, splits.heldout.images)
    assert "4 of the folder's 40 pictures (10%, drawn with seed 0), never trained on" == splits.heldout_note
    assert data.load_splits(str(tmp_path), data.Options(holdout=0.0)).heldout is None


def test_sources_are_named_by_one_spec(tmp_path, pictures):
    assert isinstance(data.source("mnist"), data.idx.IdxSource)
    assert isinstance(data.source(str(pictures)), folder_lib.FolderSource)
    assert isinstance(data.source(f"images:{pictures}"), folder_lib.FolderSource)
    assert isinstance(data.source(f"idx:{tmp_path}"), data.idx.IdxSource)
    assert isinstance(data.source("cifar10"), data.catalog.TfdsSource)
    assert isinstance(data.source("tfds:mnist"), data.catalog.TfdsSource)
    with pytest.raises(UserError, match="no such folder"):
        data.load("./no/such/folder")
    with pytest.raises(UserError, match="give what follows images:"):
        data.source("images:")


def test_array_sources_are_fitted_like_pictures(mnist_train):
    small = data.Dataset(mnist_train.images[:5], mnist_train.labels[:5], "mnist[:5]")
    fitted = data.fit.fit_array(small.images, 32, 3, (255, 255, 255))
    assert fitted.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(fitted[..., 0], fitted[..., 2])  # grey, repeated
    assert data.fit.fit_array(small.images, 0, 0, (255, 255, 255)) is small.images  # unchanged
    assert data.fit.fit_array(small.images, 28, 1, (255, 255, 255)) is small.images


def test_rows_read_from_the_cache_file_are_the_mapped_rows(tmp_path):
    """A stream reads a cache file's rows with plain reads: the same bytes as the memory map,
    for the training part (offset 0) and the held-out part (after it)."""
    for i in range(20):
        save(tmp_path / "pictures" / f"{i:02d}.png", np.random.default_rng(i).integers(0, 256, (5, 4, 3)))
    splits = data.load_splits(str(tmp_path / "pictures"), data.Options(holdout=0.25))
    indices = np.array([[3, 0], [14, 3]])
    for part in (splits.train, splits.heldout):
        rows = cache_lib.Rows(part.file, part.images.shape[1:]).read(indices % len(part.images))
        np.testing.assert_array_equal(rows, part.images[indices % len(part.images)])
