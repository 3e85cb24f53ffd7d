"""course_lib.data.load_fashion_mnist: where it looks, the shipped subset, and its errors.

The folders of the precedence tests are small fake Fashion-MNIST folders written in
``tmp_path``, each with its own number of images, so that the data say which folder was read.
The Debian location is pointed at a fake (or missing) folder with ``monkeypatch``, so that the
tests mean the same on a machine with or without ``dataset-fashion-mnist``.
"""

import gzip
import hashlib
import shutil

import numpy as np
import pytest

from course_lib import data

SUBSET_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _idx(arr: np.ndarray) -> bytes:
    """``arr`` (uint8) as an IDX file: 00 00, type 0x08, rank, big-endian sizes, data."""
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(n.to_bytes(4, "big") for n in arr.shape)
    return header + arr.tobytes()


def fake_folder(folder, n: int, splits=("train", "test")):
    """A folder with ``n`` random 28×28 images and labels 0..9 for each split (gzipped)."""
    rng = np.random.default_rng(n)
    folder.mkdir(parents=True, exist_ok=True)
    for split in splits:
        (images_name, _), (labels_name, _) = data.MNIST_FILES[split]
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{images_name}.gz").write_bytes(gzip.compress(_idx(images)))
        (folder / f"{labels_name}.gz").write_bytes(gzip.compress(_idx(labels)))
    return folder


@pytest.fixture
def no_debian(tmp_path, monkeypatch):
    """No environment variable and no Debian folder: the subset is what remains."""
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", tmp_path / "no_debian_here")


@pytest.fixture
def subset_copy(tmp_path, monkeypatch, no_debian):
    """A copy of the shipped subset that a test may damage, in place of the real one."""
    copy = tmp_path / "subset"
    shutil.copytree(data.FASHION_MNIST_SUBSET, copy)
    monkeypatch.setattr(data, "FASHION_MNIST_SUBSET", copy)
    return copy


# ---------------------------------------------------------------- the shipped subset


def test_subset_files_match_their_checksums():
    for name in SUBSET_FILES:
        path = data.FASHION_MNIST_SUBSET / name
        recorded = (data.FASHION_MNIST_SUBSET / f"{name}.sha256").read_text().strip()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded, name
    assert "MIT" in (data.FASHION_MNIST_SUBSET / "LICENSE").read_text()


@pytest.mark.parametrize("split, n", [("train", 8000), ("test", 2000)])
def test_subset_shapes_dtypes_labels_and_balance(no_debian, capsys, split, n):
    X, y, source = data.load_fashion_mnist(split, return_source=True)
    assert X.shape == (n, 1, 28, 28) and X.dtype == np.float32 and X.flags.c_contiguous
    assert y.shape == (n,) and y.dtype == np.int64
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert np.array_equal(np.round(X * 255) / 255, X)  # grey levels k / 255
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, n // 10))
    assert source.origin == "subset" and source.is_subset and source.n_images == n
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "subset" in printed and f"{n:,} images" in printed


def test_subset_train_and_test_are_a_partition_of_the_published_test_set(no_debian):
    X, y = data.load_fashion_mnist("train", verbose=False)
    Xt, yt = data.load_fashion_mnist("test", verbose=False)
    Xa, ya = data.load_mnist_idx(data.FASHION_MNIST_SUBSET, "test")
    rows = lambda A: sorted(map(bytes, (A.reshape(len(A), -1) * 255).round().astype(np.uint8)))  # noqa: E731
    assert rows(np.concatenate([X, Xt])) == rows(Xa)
    assert sorted(np.concatenate([y, yt])) == sorted(ya)


def test_subset_split_never_changes(no_debian):
    """The subset's split is part of every number measured on it: it must not drift."""
    X, y = data.load_fashion_mnist("test", verbose=False)
    levels = np.round(X * 255).astype(np.uint8)
    digest = hashlib.sha256(levels.tobytes() + y.tobytes()).hexdigest()
    assert digest[:16] == SUBSET_TEST_DIGEST


SUBSET_TEST_DIGEST = "6bba13cfb4351414"  # sha256 of the subset's test images and labels, first 16 hex digits


def test_a_damaged_subset_is_refused_naming_the_file(subset_copy):
    path = subset_copy / SUBSET_FILES[0]
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{SUBSET_FILES[0]}: .*checksum does not match"):
        data.load_fashion_mnist("train", verbose=False)


def test_a_subset_without_its_checksum_is_refused(subset_copy):
    (subset_copy / f"{SUBSET_FILES[1]}.sha256").unlink()
    with pytest.raises(ValueError, match=rf"{SUBSET_FILES[1]}: .*checksum file is missing"):
        data.load_fashion_mnist("test", verbose=False)


# ---------------------------------------------------------------- where it looks


def test_argument_beats_environment_beats_debian_beats_subset(tmp_path, monkeypatch,
                                                               no_debian):
    arg, env, debian = (fake_folder(tmp_path / name, n)
                        for name, n in (("arg", 30), ("env", 40), ("debian", 50)))
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", debian)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(env))

    def used(**kwargs):
        X, _, source = data.load_fashion_mnist("train", verbose=False, return_source=True,
                                               **kwargs)
        assert source.n_images == len(X)
        return source.origin, len(X)

    assert used(folder=arg) == ("folder", 30)
    assert used() == ("environment", 40)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, "")  # set but empty: as if unset
    assert used() == ("debian", 50)
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", tmp_path / "missing")
    assert used() == ("subset", 8000)


def test_a_full_folder_gives_its_own_split_and_says_where(tmp_path, capsys, no_debian):
    folder = fake_folder(tmp_path / "fm", 20)
    X, y, source = data.load_fashion_mnist("test", folder=folder, return_source=True)
    expected, labels = data.load_mnist_idx(folder, "test")
    np.testing.assert_array_equal(X, expected)
    np.testing.assert_array_equal(y, labels)
    assert not source.is_subset and source.folder == folder
    assert str(folder) in capsys.readouterr().out


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_a_named_folder_that_is_missing_is_an_error_not_a_fallback(tmp_path, monkeypatch,
                                                                    no_debian, how):
    missing = tmp_path / "typo"
    kwargs = {"folder": missing} if how == "argument" else {}
    if how == "environment":
        monkeypatch.setenv(data.FASHION_MNIST_ENV, str(missing))
    with pytest.raises(FileNotFoundError, match="typo.*no such folder.*apt-get install "
                                                "dataset-fashion-mnist"):
        data.load_fashion_mnist("train", verbose=False, **kwargs)


def test_a_partial_folder_names_the_missing_file(tmp_path, no_debian):
    folder = fake_folder(tmp_path / "only_test", 20, splits=("test",))
    assert len(data.load_fashion_mnist("test", folder=folder, verbose=False)[0]) == 20
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*apt-get install "
                                                "dataset-fashion-mnist.*zalandoresearch"):
        data.load_fashion_mnist("train", folder=folder, verbose=False)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        data.load_fashion_mnist("test", folder=folder, verbose=False)


def test_a_partial_debian_folder_is_an_error_too(tmp_path, monkeypatch, no_debian):
    debian = fake_folder(tmp_path / "debian", 20, splits=("test",))
    monkeypatch.setattr(data, "FASHION_MNIST_DEBIAN", debian)
    with pytest.raises(FileNotFoundError, match="Debian.*train-images-idx3-ubyte"):
        data.load_fashion_mnist("train", verbose=False)


def test_a_damaged_file_is_named(tmp_path, no_debian):
    folder = fake_folder(tmp_path / "fm", 20)
    images = folder / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-40])  # a cut-off download
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: .*gzip.*apt-get install"):
        data.load_fashion_mnist("train", folder=folder, verbose=False)
    images.write_bytes(gzip.compress(_idx(np.zeros((20, 28, 27), np.uint8))))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte: Fashion-MNIST holds 28×28"):
        data.load_fashion_mnist("train", folder=folder, verbose=False)
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(_idx(np.full(20, 10, np.uint8))))
    with pytest.raises(ValueError, match="labels 10..10"):
        data.load_fashion_mnist("test", folder=folder, verbose=False)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"split": "validation"}, ValueError, "split"),
    ({"verbose": 1}, TypeError, "verbose"),
    ({"return_source": "yes"}, TypeError, "return_source"),
])
def test_bad_arguments(no_debian, kwargs, error, match):
    with pytest.raises(error, match=match):
        data.load_fashion_mnist(**kwargs)


# ---------------------------------------------------------------- the full data, where present


@pytest.mark.skipif(not (data.FASHION_MNIST_DEBIAN / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed "
                           "(apt-get install dataset-fashion-mnist; .ci/run installs it)")
def test_the_full_debian_data(monkeypatch):
    monkeypatch.delenv(data.FASHION_MNIST_ENV, raising=False)
    X, y, source = data.load_fashion_mnist("train", verbose=False, return_source=True)
    assert source.origin == "debian" and X.shape == (60000, 1, 28, 28)
    assert np.array_equal(np.bincount(y), np.full(10, 6000))
    Xt, yt = data.load_fashion_mnist("test", verbose=False)
    assert Xt.shape == (10000, 1, 28, 28) and np.array_equal(np.bincount(yt), np.full(10, 1000))
    # the shipped subset holds the same published test set
    Xs, ys = data.load_mnist_idx(data.FASHION_MNIST_SUBSET, "test")
    np.testing.assert_array_equal(Xt, Xs)
    np.testing.assert_array_equal(yt, ys)
