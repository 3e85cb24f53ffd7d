"""Data sets of the course; every one ships inside an installed package (no download).

- ``load_digits``: scikit-learn's 8×8 handwritten digits (1,797 images, 17 grey levels) with a
  fixed, stratified 80/20 train/test split.
- ``ring_of_gaussians`` / ``grid_of_gaussians``: the 2D mixtures used to study mode collapse.
- ``load_binary_image`` and ``flip_noise``: binary images from scikit-image for MRF denoising.
- ``load_image_folder``: a reader's own PNG/JPEG images, in the course's image format.
- ``read_idx`` / ``load_mnist_idx``: MNIST (or Fashion-MNIST) from local IDX files; nothing is
  downloaded.
- ``load_fashion_mnist``: Fashion-MNIST's 28×28 images for the scale-up chapter, from a folder
  the reader names, Debian's package ``dataset-fashion-mnist``, or else the subset (the
  10,000 test images) shipped in ``course_lib/assets/fashion_mnist``.

Credits (the book's page *Licence and credits*, ``book/credits.md``, has the full list): the
digits are the UCI *Optical Recognition of Handwritten Digits* data of E. Alpaydin and
C. Kaynak (1998), as shipped by scikit-learn; the binary images are scikit-image's sample
pictures (horse: Andreas Preuss, CC0; camera: Lav Varshney, CC0; coins: Brooklyn Museum, no
known copyright restrictions; text: Wikipedia, public domain); Fashion-MNIST is by H. Xiao,
K. Rasul and R. Vollgraf (2017, arXiv:1708.07747, Zalando Research, MIT licence; the shipped
subset carries that licence beside it). These data keep their own licences; the course's code
is MIT, its text and figures CC BY 4.0.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._core import (
    as_numpy,
    check_binary,
    check_bool,
    check_choice,
    check_int,
    check_real,
    check_seed,
    file_problem,
)

__all__ = [
    "DIGIT_LEVELS",
    "load_digits",
    "dequantize",
    "dequantized_to_images",
    "ring_of_gaussians",
    "grid_of_gaussians",
    "BINARY_IMAGES",
    "load_binary_image",
    "flip_noise",
    "IMAGE_EXTENSIONS",
    "load_image_folder",
    "read_idx",
    "load_mnist_idx",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_ENV",
    "FASHION_MNIST_DEBIAN",
    "FASHION_MNIST_SUBSET",
    "FashionMNISTSource",
    "load_fashion_mnist",
]

#: Number of grey levels in scikit-learn's digits (integers 0..16).
DIGIT_LEVELS = 17

_SPLIT_SEED = 20240501  # fixed forever: changing it changes every number in the book
_TEST_FRACTION = 0.2


def _digit_split(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the test split: per class, a fixed 20% chosen by a legacy RandomState
    (the digits' split, and that of the shipped Fashion-MNIST subset).

    ``np.random.RandomState`` is frozen by NumPy's compatibility policy, so the split is the
    same on every machine and every NumPy version.
    """
    rng = np.random.RandomState(_SPLIT_SEED)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        n_test = int(round(_TEST_FRACTION * len(idx)))
        test[idx[rng.permutation(len(idx))[:n_test]]] = True
    return test


def load_digits(split: str = "train", *, raw: bool = False, dequantize: bool = False, seed=0):
    """scikit-learn's 8×8 digits as images ``(N, 1, 8, 8)`` and labels ``(N,)``.

    Data credit: scikit-learn's copy of the test set of the UCI Machine Learning Repository's
    *Optical Recognition of Handwritten Digits* (E. Alpaydin and C. Kaynak, Boğaziçi
    University, 1998; 13 writers, 32×32 bitmaps reduced to 8×8 counts of set pixels, 0..16).
    Cite it when you publish results on these digits (``book/credits.md``).

    Parameters
    ----------
    split : {"train", "test", "all"}
        A fixed, stratified split: 1,438 training and 359 test images (80/20 in every class).
    raw : bool
        Return the integer grey levels 0..16 (as float32) instead of values in [0, 1].
    dequantize : bool
        Add uniform noise inside each grey level's bin: ``(level + u) / 17`` with
        ``u ~ U[0, 1)``. A continuous density fitted to dequantised data gives a lower bound
        on the discrete log-likelihood, which :func:`course_lib.metrics.bits_per_pixel` turns
        into bits per pixel of the 17-level digits: the one likelihood scale of the course.
    seed : int
        Seed of the dequantisation noise (ignored otherwise).

    Returns
    -------
    X : np.ndarray, float32, shape (N, 1, 8, 8)
        ``level / 16`` in [0, 1] by default; ``level`` with ``raw=True``; ``(level + u) / 17``
        with ``dequantize=True``.
    y : np.ndarray, int64, shape (N,)
    """
    check_choice(split, "split", ("train", "test", "all"))
    raw = check_bool(raw, "raw")
    dequantize = check_bool(dequantize, "dequantize")
    if raw and dequantize:
        raise ValueError("raw and dequantize cannot both be True: choose one representation")
    from sklearn.datasets import load_digits as _sk_load

    bunch = _sk_load()
    levels = bunch.images.astype(np.float32)  # (1797, 8, 8), integers 0..16
    y = bunch.target.astype(np.int64)
    if split != "all":
        test = _digit_split(y)
        keep = test if split == "test" else ~test
        levels, y = levels[keep], y[keep]
    levels = levels[:, None, :, :]
    if raw:
        X = levels
    elif dequantize:
        X = globals()["dequantize"](levels, seed=seed)
    else:
        X = levels / (DIGIT_LEVELS - 1)
    return np.ascontiguousarray(X, dtype=np.float32), y


def dequantize(levels, *, n_levels: int = DIGIT_LEVELS, seed=0) -> np.ndarray:
    """Map integer levels ``0..n_levels-1`` to ``(level + u) / n_levels``, ``u ~ U[0, 1)``."""
    n_levels = check_int(n_levels, "n_levels", minimum=2)
    arr = as_numpy(levels, "levels", dtype=np.float64)
    if np.any(arr != np.round(arr)) or arr.min() < 0 or arr.max() > n_levels - 1:
        raise ValueError(f"levels must be integers in [0, {n_levels - 1}]")
    rng = np.random.default_rng(check_seed(seed, allow_none=False))
    return ((arr + rng.random(arr.shape)) / n_levels).astype(np.float32)


def dequantized_to_images(Y, *, n_levels: int = DIGIT_LEVELS) -> np.ndarray:
    """Map values on the dequantised scale ``(level + u) / n_levels`` to images in [0, 1].

    Models fitted to ``load_digits(dequantize=True)`` (for a likelihood on the course's scale)
    generate values on that scale; the sample-based scores and the digit classifier use
    ``level / (n_levels - 1)``. The centre of bin ``k``, ``(k + ½) / n_levels``, goes to
    ``k / (n_levels - 1)``; everything in between linearly, and the result is clipped to
    [0, 1]. Rows ``(N, D)`` with ``D = 64`` come back as digit images ``(N, 1, 8, 8)``.
    """
    n_levels = check_int(n_levels, "n_levels", minimum=2)
    arr = as_numpy(Y, "Y", dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 64:
        arr = arr.reshape(-1, 1, 8, 8)
    if arr.ndim != 4:
        raise ValueError(f"Y must be images (N, C, H, W) or digit rows (N, 64), got {arr.shape}")
    out = (n_levels * arr - 0.5) / (n_levels - 1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------- 2D mixtures


def _sample_mixture(centres: np.ndarray, n: int, std: float, seed) -> np.ndarray:
    rng = np.random.default_rng(check_seed(seed))
    which = rng.integers(0, len(centres), size=n)
    return (centres[which] + std * rng.standard_normal((n, 2))).astype(np.float32)


def ring_of_gaussians(n: int, n_modes: int = 8, radius: float = 1.0, std: float = 0.01, seed=0):
    """``n`` points from ``n_modes`` equal-weight isotropic Gaussians on a circle.

    Returns ``(X, centres)``: ``X`` float32 ``(n, 2)``, ``centres`` float64 ``(n_modes, 2)``.
    The course's default (8 modes, radius 1, std 0.01) is the benchmark of the VEEGAN and
    PacGAN papers.
    """
    n = check_int(n, "n", minimum=1)
    n_modes = check_int(n_modes, "n_modes", minimum=1)
    radius = check_real(radius, "radius", minimum=0.0, strict_min=True)
    std = check_real(std, "std", minimum=0.0, strict_min=True)
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _sample_mixture(centres, n, std, seed), centres


def grid_of_gaussians(n: int, side: int = 5, spacing: float = 2.0, std: float = 0.05, seed=0):
    """``n`` points from ``side**2`` equal-weight Gaussians on a square grid centred at 0.

    Returns ``(X, centres)``; the default (5×5, spacing 2, std 0.05) puts the modes at
    ``{-4, -2, 0, 2, 4}²``.
    """
    n = check_int(n, "n", minimum=1)
    side = check_int(side, "side", minimum=1)
    spacing = check_real(spacing, "spacing", minimum=0.0, strict_min=True)
    std = check_real(std, "std", minimum=0.0, strict_min=True)
    coords = (np.arange(side) - (side - 1) / 2) * spacing
    gx, gy = np.meshgrid(coords, coords, indexing="ij")
    centres = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return _sample_mixture(centres, n, std, seed), centres


# ---------------------------------------------------------------- binary images


def _horse():
    from skimage import data

    return ~data.horse()  # skimage's horse is black (False) on white: make the horse 1


def _threshold(name):
    def load():
        from skimage import data, filters

        img = getattr(data, name)()
        if img.ndim == 3:
            from skimage.color import rgb2gray

            img = rgb2gray(img)
        return img > filters.threshold_otsu(img)

    return load


#: Binary images available to :func:`load_binary_image` (all inside scikit-image's wheel).
BINARY_IMAGES = {
    "horse": _horse,
    "camera": _threshold("camera"),
    "coins": _threshold("coins"),
    "text": _threshold("text"),
}


def load_binary_image(name: str = "horse", *, size: int | None = None) -> np.ndarray:
    """A binary image from scikit-image as a ``uint8`` array of 0s and 1s, shape ``(H, W)``.

    ``horse`` is a binary silhouette (328×400, horse = 1); the others are grey photographs
    thresholded at Otsu's level. ``size`` crops the centre to a ``size × size`` square.

    Image credits, as scikit-image's documentation gives them: ``horse``, a silhouette by
    Andreas Preuss (*marauder*) from openclipart, CC0; ``camera``, a photograph by Lav
    Varshney, CC0; ``coins``, Greek coins from Pompeii in the Brooklyn Museum collection, no
    known copyright restrictions; ``text``, from Wikipedia (``File:Corner.png``), public
    domain.
    """
    check_choice(name, "name", tuple(BINARY_IMAGES))
    img = np.asarray(BINARY_IMAGES[name](), dtype=np.uint8)
    if size is not None:
        size = check_int(size, "size", minimum=2, maximum=min(img.shape))
        top = (img.shape[0] - size) // 2
        left = (img.shape[1] - size) // 2
        img = img[top : top + size, left : left + size]
    return np.ascontiguousarray(img)


def flip_noise(image, p: float, seed=0):
    """Flip each pixel of a binary image independently with probability ``p``.

    ``image`` holds {0, 1} (or {-1, +1}); the result has the same values and dtype. This is
    the binary symmetric channel used as the noise model for MRF denoising.
    """
    p = check_real(p, "p", minimum=0.0, maximum=1.0)
    arr = np.asarray(image)
    if np.iscomplexobj(arr):
        raise TypeError(f"image must be real, got complex dtype {arr.dtype}")
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"image must be a non-empty array, got shape {arr.shape}")
    if np.isin(arr, (0, 1)).all():
        zero, one = 0, 1
    else:
        check_binary(arr, "image", values=(-1, 1))
        zero, one = -1, 1
    rng = np.random.default_rng(check_seed(seed))
    flip = rng.random(arr.shape) < p
    out = arr.copy()
    out[flip] = np.where(arr[flip] == one, zero, one).astype(arr.dtype)
    return out


# ---------------------------------------------------------------- a folder of your own images

#: File name endings that :func:`load_image_folder` reads (case-insensitive).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _check_size(size) -> tuple[int, int]:
    """``size`` as ``(height, width)``: an int ``s`` means ``(s, s)``."""
    if isinstance(size, (tuple, list)):
        if len(size) != 2:
            raise ValueError(f"size must be an int or a (height, width) pair, got {size!r}")
        h, w = (check_int(v, f"size[{i}]", minimum=1) for i, v in enumerate(size))
        return h, w
    s = check_int(size, "size", minimum=1)
    return s, s


def _integer_bits(img) -> int:
    """Bits per sample of a grey integer image opened by PIL in mode ``I;16*`` or ``I``, from
    the file, never from its content: the same format always comes out at the same scale.

    ``I;16*``: 16. ``I``: PNG stores at most 16 bits; a TIFF says so in its BitsPerSample
    tag. A 32-bit integer image (or one whose depth the file does not say) is refused with a
    ``ValueError``: its format fixes no brightness scale (2**32 - 1 would make it black)."""
    if img.mode.startswith("I;16"):
        return 16
    bits = None
    if img.format == "PNG":
        bits = 16
    elif hasattr(img, "tag_v2"):  # TIFF
        found = img.tag_v2.get(258)  # BitsPerSample
        bits = int(found[0] if isinstance(found, tuple) else found) if found else None
    if bits in (8, 16):
        return bits
    raise ValueError(f"a {bits or 'unknown'}-bit integer image ({img.format} mode {img.mode}) "
                     "has no fixed brightness scale; save it as an 8- or 16-bit image")


def _image_to_array(img, grayscale: bool) -> np.ndarray:
    """A PIL image as float32 ``(H, W)`` or ``(H, W, 3)`` in [0, 1] (alpha over white)."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit grey: scale by the type
        arr = np.asarray(img, dtype=np.float64)
        top = 2.0 ** _integer_bits(img) - 1.0 if img.mode != "F" else max(1.0, float(arr.max()))
        arr = np.clip(arr / top, 0.0, 1.0).astype(np.float32)
        return arr if grayscale else np.repeat(arr[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    img = img.convert("L" if grayscale else "RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def _fit(arr: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``arr`` to the aspect ratio of ``hw``, then resize it to ``hw`` (area)."""
    from PIL import Image

    h, w = arr.shape[:2]
    th, tw = hw
    if h * tw > w * th:  # too tall: crop rows
        ch, cw = max(1, round(w * th / tw)), w
    else:  # too wide: crop columns
        ch, cw = h, max(1, round(h * tw / th))
    top, left = (h - ch) // 2, (w - cw) // 2
    arr = arr[top : top + ch, left : left + cw]
    if arr.shape[:2] == (th, tw):
        return arr
    channels = [arr] if arr.ndim == 2 else [arr[..., c] for c in range(arr.shape[2])]
    out = [np.asarray(Image.fromarray(c.astype(np.float32), mode="F")
                      .resize((tw, th), Image.Resampling.BOX if ch >= th and cw >= tw
                              else Image.Resampling.BICUBIC), dtype=np.float32)
           for c in channels]
    res = out[0] if arr.ndim == 2 else np.stack(out, axis=2)
    return np.clip(res, 0.0, 1.0)


def load_image_folder(path, size, grayscale: bool = True, *, allow_upscale: bool = False,
                      return_paths: bool = False):
    """Your own images (PNG, JPEG, ...) as the course's images ``(N, C, H, W)`` in [0, 1].

    Every file of ``path`` whose name ends in one of :data:`IMAGE_EXTENSIONS` is read (not
    subfolders; files in name order). Each image is centre-cropped to the aspect ratio of
    ``size`` and resized to it by averaging pixels (area resampling); a transparent background
    becomes white; integer images are scaled by their file's bit depth, never by their
    content (8-bit by 255, 16-bit by 65535; 32-bit integer images are refused).

    Parameters
    ----------
    path : str or Path
        A folder of images.
    size : int or (int, int)
        Output height and width (an int means a square). Every image must be at least this
        large unless ``allow_upscale=True``: enlarging a small image invents detail.
    grayscale : bool
        One channel (luminance, ``C=1``) if True, else RGB (``C=3``).
    return_paths : bool
        Also return the list of files read, in the order of the images.

    Returns
    -------
    X : np.ndarray, float32, shape (N, C, H, W), values in [0, 1]
    paths : list of Path (only with ``return_paths=True``)

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    NotADirectoryError
        ``path`` is a file.
    ValueError
        The folder holds no image file; a file cannot be read as an image (every such file is
        named); ``size`` is not positive; an image is smaller than ``size``.
    """
    grayscale = check_bool(grayscale, "grayscale")
    allow_upscale = check_bool(allow_upscale, "allow_upscale")
    return_paths = check_bool(return_paths, "return_paths")
    hw = _check_size(size)
    files = _image_files(path)
    images = _read_and_fit(files, path, size, hw, grayscale, allow_upscale)
    X = np.stack(images).astype(np.float32)
    X = X[:, None] if grayscale else X.transpose(0, 3, 1, 2)
    X = np.ascontiguousarray(X)
    return (X, files) if return_paths else X


def _image_files(path) -> list:
    """The image files of the folder ``path`` (names ending in :data:`IMAGE_EXTENSIONS`, not
    subfolders), in name order; an error that says why when there is none to read."""
    folder = Path(path)
    if not folder.exists():
        raise FileNotFoundError(f"path={str(path)!r}: no such folder")
    if not folder.is_dir():
        raise NotADirectoryError(f"path={str(path)!r} is a file; give the folder that holds "
                                 "the images")
    files = sorted(f for f in folder.iterdir()
                   if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        others = sorted(f.name for f in folder.iterdir())[:5]
        raise ValueError(
            f"path={str(path)!r} contains no image file (looked for names ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}; subfolders are not searched)"
            + (f"; it holds: {', '.join(others)}" if others else "; it is empty"))
    return files


def _read_and_fit(files, path, size, hw, grayscale: bool, allow_upscale: bool) -> list:
    """Every file read (:func:`_image_to_array`) and fitted to ``hw`` (:func:`_fit`) one at a
    time, so that only the resized images are kept; unreadable files and (unless
    ``allow_upscale``) images smaller than ``hw`` are collected and refused together
    (:func:`_refuse_unusable`), so that a reader fixes them all at once."""
    from PIL import Image, UnidentifiedImageError

    images, bad, small = [], [], []
    for f in files:
        try:
            with Image.open(f) as img:
                img.load()
                arr = _image_to_array(img, grayscale)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            bad.append(f"{f.name} ({type(err).__name__}: {err})")
            continue
        if not allow_upscale and (arr.shape[0] < hw[0] or arr.shape[1] < hw[1]):
            small.append(f"{f.name} is {arr.shape[0]}x{arr.shape[1]}")
            continue
        images.append(_fit(arr, hw))
    _refuse_unusable(files, path, size, hw, bad, small)
    return images


def _refuse_unusable(files, path, size, hw, bad: list, small: list) -> None:
    """One ``ValueError`` naming the files that cannot be read as images, else one naming
    the images smaller than ``size`` (enlarging a small image invents detail)."""
    if bad:
        raise ValueError(f"{len(bad)} of {len(files)} files in {str(path)!r} cannot be read "
                         "as images: " + "; ".join(bad[:10]))
    if small:
        raise ValueError(
            f"size={size!r} asks for {hw[0]}x{hw[1]} pixels but {len(small)} image(s) are "
            f"smaller ({'; '.join(small[:5])}): choose a size of at most the smallest "
            "image, or pass allow_upscale=True")


# ---------------------------------------------------------------- MNIST from IDX files

#: IDX type codes -> big-endian NumPy dtypes (http://yann.lecun.com/exdb/mnist/, "file formats").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the format of MNIST and Fashion-MNIST), gzipped or not.

    The header is two zero bytes, a type code, the number of dimensions ``d`` and ``d``
    big-endian 32-bit sizes; the data follow, big-endian. Returns an array of that shape with
    the native-endian version of the file's type (``uint8`` for MNIST).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the file when
    the header is not IDX or the data are shorter or longer than the header says.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path={str(path)!r}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path.name}: a damaged gzip file ({err})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path.name} is not an IDX file (its first bytes are "
                         f"{raw[:4].hex(' ')}; IDX starts with 00 00, a type code in "
                         f"{sorted(hex(k) for k in _IDX_DTYPES)} and a rank)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path.name}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path.name}: the header announces shape {shape} ({expected} bytes "
                         f"of {dtype.str}) but the file holds {len(raw) - header} bytes of "
                         "data (truncated or not an IDX file)")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))


#: File names tried by :func:`load_mnist_idx` for each split (first found wins), without
#: and with ``.gz``. The second spelling is that of some mirrors.
MNIST_FILES = {
    "train": (("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
              ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")),
    "test": (("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
             ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")),
}


def load_mnist_idx(path, split: str = "train"):
    """MNIST (or Fashion-MNIST) from the four IDX files in a local folder: no download.

    ``path`` is the folder holding ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte``
    (``split="train"``, 60,000 images) or ``t10k-images-idx3-ubyte`` /
    ``t10k-labels-idx1-ubyte`` (``split="test"``, 10,000), each possibly gzipped (``.gz``).

    Returns ``(X, y)``: ``X`` float32 ``(N, 1, 28, 28)`` = grey level / 255 in [0, 1],
    ``y`` int64 ``(N,)``; the same format as :func:`load_digits`.

    Data credits (the files are yours to supply; :func:`load_fashion_mnist` finds or ships
    Fashion-MNIST): Fashion-MNIST, H. Xiao, K. Rasul and R. Vollgraf (2017), "Fashion-MNIST:
    a Novel Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747,
    Zalando Research, MIT licence; MNIST, Y. LeCun, C. Cortes and C. J. C. Burges.
    """
    check_choice(split, "split", tuple(MNIST_FILES))
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"path={str(path)!r}: no such folder (give the folder that "
                                "holds the MNIST IDX files)")

    def find(names):
        for name in names:
            for cand in (folder / name, folder / f"{name}.gz"):
                if cand.is_file():
                    return cand
        raise FileNotFoundError(f"{str(path)!r} has no {names[0]} (or {names[0]}.gz, "
                                f"{names[1]}): the {split} split of MNIST needs it")

    images_file, labels_file = (find(names) for names in MNIST_FILES[split])
    images, labels = read_idx(images_file), read_idx(labels_file)
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(f"{images_file.name} must hold (N, H, W) images and {labels_file.name}"
                         f" (N,) labels; got shapes {images.shape} and {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{images_file.name} holds {len(images)} images but "
                         f"{labels_file.name} {len(labels)} labels")
    if images.dtype != np.uint8:
        raise ValueError(f"{images_file.name} holds {images.dtype} data; MNIST images are uint8")
    X = (images.astype(np.float32) / 255.0)[:, None]
    return np.ascontiguousarray(X), labels.astype(np.int64)


# ---------------------------------------------------------------- Fashion-MNIST (28×28)

#: The ten classes of Fashion-MNIST, in label order (label ``k`` is ``FASHION_MNIST_CLASSES[k]``).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

#: The environment variable that names a folder of the four Fashion-MNIST files.
FASHION_MNIST_ENV = "COURSE_FASHION_MNIST"

#: Where Debian's package ``dataset-fashion-mnist`` puts the four gzipped IDX files.
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")

#: The subset shipped with the package: the published test set (10,000 images and labels,
#: gzipped IDX), each file with its SHA-256 in ``<file>.sha256``, and the data's MIT licence.
FASHION_MNIST_SUBSET = Path(__file__).resolve().parent / "assets" / "fashion_mnist"

_FASHION_MNIST_HOW_TO_GET = (
    f"`apt-get install dataset-fashion-mnist` (Debian, Ubuntu) puts the four files in "
    f"{FASHION_MNIST_DEBIAN}/; or download them from "
    "https://github.com/zalandoresearch/fashion-mnist")

_FASHION_MNIST_ORIGINS = {
    "folder": "the folder named by folder=",
    "environment": f"the folder named by ${FASHION_MNIST_ENV}",
    "debian": "Debian's dataset-fashion-mnist",
    "subset": "the subset shipped with course_lib (80/20 of the published 10,000 test images)",
}


@dataclass(frozen=True)
class FashionMNISTSource:
    """Where :func:`load_fashion_mnist` found its images; ``str()`` is the one line it prints.

    ``origin`` is ``"folder"`` (the argument), ``"environment"`` (:data:`FASHION_MNIST_ENV`),
    ``"debian"`` (:data:`FASHION_MNIST_DEBIAN`) or ``"subset"`` (:data:`FASHION_MNIST_SUBSET`);
    ``is_subset`` says that the images are not the published split of that name.
    """

    origin: str
    folder: Path
    split: str
    n_images: int

    @property
    def is_subset(self) -> bool:
        return self.origin == "subset"

    def __str__(self) -> str:
        line = (f"Fashion-MNIST {self.split}: {self.n_images:,} images from "
                f"{_FASHION_MNIST_ORIGINS[self.origin]}")
        if self.is_subset:
            return line + "; the full data: apt-get install dataset-fashion-mnist"
        return line + f" ({self.folder})"


def _fashion_mnist_folder(folder) -> tuple[str, Path]:
    """``(origin, folder)``: the first of the argument, :data:`FASHION_MNIST_ENV`,
    :data:`FASHION_MNIST_DEBIAN` and the shipped subset that is given (the first two) or that
    exists (Debian's). A folder the reader names is used even if it is missing or damaged,
    so that a typo is an error, never a silent fall back to other data."""
    if folder is not None:
        return "folder", Path(folder)
    named = os.environ.get(FASHION_MNIST_ENV, "").strip()
    if named:
        return "environment", Path(named)
    if FASHION_MNIST_DEBIAN.is_dir():
        return "debian", FASHION_MNIST_DEBIAN
    return "subset", FASHION_MNIST_SUBSET


def _read_fashion_mnist(folder: Path, split: str, origin: str):
    """``load_mnist_idx(folder, split)`` checked to be Fashion-MNIST (28×28 images, labels
    0..9); any problem is raised again with where the folder came from and how to get the
    data."""
    images_name = MNIST_FILES[split][0][0]
    try:
        X, y = load_mnist_idx(folder, split)
        if X.shape[1:] != (1, 28, 28) or (len(y) and not 0 <= y.min() <= y.max() <= 9):
            raise ValueError(f"{images_name}: Fashion-MNIST holds 28×28 images with labels "
                             f"0..9, these files hold {X.shape[2]}×{X.shape[3]} images with "
                             f"labels {y.min()}..{y.max()}")
    except (FileNotFoundError, ValueError) as err:
        raise type(err)(f"Fashion-MNIST from {_FASHION_MNIST_ORIGINS[origin]} "
                        f"({str(folder)!r}) is not usable: {err}. To get the data: "
                        f"{_FASHION_MNIST_HOW_TO_GET}") from None
    return X, y


def _read_fashion_mnist_subset(split: str):
    """The shipped subset, each file verified against its ``.sha256``, split by the fixed
    stratified 80/20 rule of the digits (:func:`_digit_split`): 8,000 ``train`` and 2,000
    ``test`` images, 800 and 200 of each class."""
    for names in MNIST_FILES["test"]:
        path = FASHION_MNIST_SUBSET / f"{names[0]}.gz"
        why = file_problem(path)
        if why is not None:
            raise ValueError(f"{path.name}: the Fashion-MNIST subset shipped with course_lib is "
                             f"damaged ({why}); reinstall course_lib, or use the full data: "
                             f"{_FASHION_MNIST_HOW_TO_GET}")
    X, y = _read_fashion_mnist(FASHION_MNIST_SUBSET, "test", "subset")
    keep = _digit_split(y)
    keep = keep if split == "test" else ~keep
    return np.ascontiguousarray(X[keep]), y[keep]


def load_fashion_mnist(split: str = "train", folder=None, *, verbose: bool = True,
                       return_source: bool = False):
    """Fashion-MNIST: 28×28 grey images of clothes in 10 classes (:data:`FASHION_MNIST_CLASSES`).

    The data: H. Xiao, K. Rasul and R. Vollgraf (2017), "Fashion-MNIST: a Novel Image Dataset
    for Benchmarking Machine Learning Algorithms", arXiv:1708.07747, Zalando Research; MIT
    licence (``book/credits.md``). 60,000 training and 10,000 test images, 256 grey levels.

    Where it looks, in this order (nothing is downloaded):

    1. ``folder``, if given; 2. the folder in the environment variable
       ``COURSE_FASHION_MNIST`` (:data:`FASHION_MNIST_ENV`), if set. A folder named in one of
       these two ways must hold the files of ``split`` (``train-images-idx3-ubyte``,
       ``train-labels-idx1-ubyte``, or ``t10k-…`` for the test split; gzipped or not): a
       missing folder or file is an error, never a silent fall back;
    3. ``/usr/share/datasets/fashion-mnist/`` (:data:`FASHION_MNIST_DEBIAN`), where
       ``apt-get install dataset-fashion-mnist`` puts the four files;
    4. otherwise the subset shipped with ``course_lib`` (:data:`FASHION_MNIST_SUBSET`): the
       published *test* set of 10,000 images, verified against its SHA-256 on every load and
       split by a fixed, stratified rule into ``train`` (8,000 images, 800 a class) and ``test``
       (the other 2,000, 200 a class). It is not the published training set: the printed line
       and ``source.is_subset`` say so.

    Parameters
    ----------
    split : {"train", "test"}
    folder : str or Path, optional
        A folder holding the Fashion-MNIST IDX files.
    verbose : bool
        Print one line saying which data were loaded (``str(source)``).
    return_source : bool
        Also return a :class:`FashionMNISTSource`.

    Returns
    -------
    X : np.ndarray, float32, shape (N, 1, 28, 28), grey level / 255 in [0, 1]
    y : np.ndarray, int64, shape (N,), labels 0..9
    source : FashionMNISTSource (only with ``return_source=True``)

    Raises
    ------
    FileNotFoundError
        A named folder, or a file of ``split`` in it, is missing (the message names the file
        and how to get the data).
    ValueError
        A file is damaged (not IDX, truncated, not 28×28 images with labels 0..9), or the
        shipped subset does not match its checksum; the message names the file.
    """
    check_choice(split, "split", tuple(MNIST_FILES))
    verbose = check_bool(verbose, "verbose")
    return_source = check_bool(return_source, "return_source")
    origin, where = _fashion_mnist_folder(folder)
    if origin == "subset":
        X, y = _read_fashion_mnist_subset(split)
    else:
        X, y = _read_fashion_mnist(where, split, origin)
    source = FashionMNISTSource(origin, where, split, len(X))
    if verbose:
        print(source)
    return (X, y, source) if return_source else (X, y)
