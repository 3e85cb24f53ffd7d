"""course_lib.data: a folder of the reader's images, and MNIST from local IDX files.

Every file is created by the test in tmp_path (no download, no shipped fixture).
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from PIL import Image

from course_lib import data


def _save(path, arr, mode=None):
    Image.fromarray(arr, mode=mode).save(path)
    return path


@pytest.fixture
def folder(tmp_path):
    """Three images: a 40x60 grey PNG gradient, a 50x50 RGB JPEG, a 32x32 RGBA PNG."""
    grad = np.tile(np.linspace(0, 255, 60).astype(np.uint8), (40, 1))
    _save(tmp_path / "a.png", grad)
    rgb = np.zeros((50, 50, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    _save(tmp_path / "b.JPG", rgb)
    rgba = np.zeros((32, 32, 4), np.uint8)  # fully transparent: becomes white
    _save(tmp_path / "c.png", rgba)
    (tmp_path / "notes.txt").write_text("not an image, ignored")
    (tmp_path / "sub").mkdir()
    _save(tmp_path / "sub" / "d.png", grad)  # subfolders are not read
    return tmp_path


def test_folder_shape_dtype_range(folder):
    X, paths = data.load_image_folder(folder, 16, return_paths=True)
    assert X.shape == (3, 1, 16, 16) and X.dtype == np.float32
    assert 0.0 <= X.min() and X.max() <= 1.0
    assert [p.name for p in paths] == ["a.png", "b.JPG", "c.png"]
    # the gradient runs left to right; the crop keeps the centre columns
    assert np.all(np.diff(X[0, 0, 0]) >= 0) and X[0, 0, 0, -1] > X[0, 0, 0, 0]
    # red has luminance 0.299; transparent becomes white
    assert X[1].mean() == pytest.approx(0.299, abs=0.02)
    assert X[2].min() == pytest.approx(1.0)


def test_folder_rgb_and_rectangular(folder):
    X = data.load_image_folder(str(folder), (8, 12), grayscale=False)
    assert X.shape == (3, 3, 8, 12)
    red = X[1]
    assert red[0].mean() > 0.95 and red[1].mean() < 0.05 and red[2].mean() < 0.05


def test_folder_16_bit(tmp_path):
    arr = np.full((20, 20), 65535 // 2, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "deep.png")
    X = data.load_image_folder(tmp_path, 10)
    assert X[0].mean() == pytest.approx(0.5, abs=0.01)


def test_folder_missing_and_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.load_image_folder(tmp_path / "nope", 8)
    f = _save(tmp_path / "x.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(NotADirectoryError, match="is a file"):
        data.load_image_folder(f, 8)


def test_folder_empty_or_no_images(tmp_path):
    with pytest.raises(ValueError, match="no image file.*empty"):
        data.load_image_folder(tmp_path, 8)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no image file.*readme.txt"):
        data.load_image_folder(tmp_path, 8)


def test_folder_unreadable_files_are_named(folder):
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    (folder / "text.jpg").write_text("hello")
    with pytest.raises(ValueError, match=r"2 of 5 files .*broken\.png.*text\.jpg"):
        data.load_image_folder(folder, 8)


def test_folder_impossible_size(folder):
    with pytest.raises(ValueError, match="smaller.*c.png is 32x32.*allow_upscale"):
        data.load_image_folder(folder, 33)
    X = data.load_image_folder(folder, 33, allow_upscale=True)
    assert X.shape == (3, 1, 33, 33) and 0 <= X.min() and X.max() <= 1
    for bad in (0, -3, (8, 0)):
        with pytest.raises(ValueError, match="size"):
            data.load_image_folder(folder, bad)
    for bad in (2.5, "8", (8, 8, 8)):
        with pytest.raises((TypeError, ValueError), match="size"):
            data.load_image_folder(folder, bad)
    with pytest.raises(TypeError, match="grayscale"):
        data.load_image_folder(folder, 8, grayscale="yes")


def test_folder_feeds_a_model(folder):
    """The output is what the course's models take: a GMM fits and samples in that shape."""
    from course_lib.gmm import GaussianMixture

    X = data.load_image_folder(folder, 4)
    X = np.concatenate([X, X + 0.01], axis=0)
    model = GaussianMixture(n_components=1, covariance_type="diag", random_state=0).fit(X)
    samples, _ = model.sample(2)
    assert samples.shape == (2, 1, 4, 4)


# ---------------------------------------------------------------- IDX


def _idx_bytes(arr: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: ">u1", 0x0B: ">i2", 0x0D: ">f4"}[code]
    head = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(dtype).tobytes()


def test_read_idx_types_and_gzip(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(a))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), a)
    s = np.array([-2, 300, 7], dtype=np.int16)
    (tmp_path / "s.gz").write_bytes(gzip.compress(_idx_bytes(s, 0x0B)))
    out = data.read_idx(tmp_path / "s.gz")
    np.testing.assert_array_equal(out, s)
    assert out.dtype == np.int16 and out.dtype.isnative
    f = np.array([[0.5, -1.25]], dtype=np.float32)
    (tmp_path / "f").write_bytes(_idx_bytes(f, 0x0D))
    np.testing.assert_array_equal(data.read_idx(tmp_path / "f"), f)


def test_read_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "missing")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n....")
    with pytest.raises(ValueError, match="png is not an IDX file"):
        data.read_idx(tmp_path / "png")
    good = _idx_bytes(np.zeros((3, 4), np.uint8))
    (tmp_path / "short").write_bytes(good[:-1])
    with pytest.raises(ValueError, match=r"shape \(3, 4\).*11 bytes"):
        data.read_idx(tmp_path / "short")


def _mnist_folder(tmp_path, n=5, gz=False, labels_n=None):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=labels_n or n, dtype=np.uint8)
    for stem, arr in (("t10k-images-idx3-ubyte", imgs), ("t10k-labels-idx1-ubyte", labels)):
        raw = _idx_bytes(arr)
        if gz:
            (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(raw))
        else:
            (tmp_path / stem).write_bytes(raw)
    return imgs, labels


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_idx(tmp_path, gz):
    imgs, labels = _mnist_folder(tmp_path, gz=gz)
    X, y = data.load_mnist_idx(tmp_path, split="test")
    assert X.shape == (5, 1, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X[:, 0] * 255, imgs, atol=1e-4)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.load_mnist_idx(tmp_path / "nope")
    _mnist_folder(tmp_path, n=4, labels_n=3)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        data.load_mnist_idx(tmp_path, split="train")
    with pytest.raises(ValueError, match="4 images but .* 3 labels"):
        data.load_mnist_idx(tmp_path, split="test")
    with pytest.raises(ValueError, match="split"):
        data.load_mnist_idx(tmp_path, split="validation")
