"""The evaluation protocol: one way to score every generator of digits in the course.

:func:`evaluate` draws :data:`EVAL_DRAWS` independent sets of :data:`EVAL_SIZE` images from a
model, scores each against the **test split** with every score of :data:`EVAL_METRICS` (the
formulas of :mod:`course_lib.metrics.formulas` on the features of
:mod:`course_lib.metrics.features`), and returns an :class:`Evaluation`: mean ± standard
deviation over the draws. :func:`evaluate_floor` gives the real-vs-real floor,
:func:`separated` says when two models differ by more than their spread, and
:func:`comparison_table` lays several evaluations out as a :class:`Table` (HTML in a
notebook, Markdown in text).

``dataset="fashion"`` applies the same scores to 28×28 Fashion-MNIST images, on the features
of :mod:`course_lib.metrics.fashion`'s network, in :data:`FASHION_EVAL_DRAWS` draws of
:data:`FASHION_EVAL_SIZE` images; the digits stay the default, unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

import numpy as np
import torch

from .._core import check_choice, check_int, check_real, check_seed, resolve_device
from ..data import load_digits, load_fashion_mnist
from .fashion import (
    _check_fashion_images,
    _fashion_cnn_features,
    _fashion_labels_of_features,
    _fashion_path,
)
from .features import (
    _check_digit_images,
    _classifier_path,
    _cnn_features,
    _labels_of_features,
)
from .formulas import (
    _as_rows,
    _kth_neighbour_radius,
    _nearest_distances_by_products,
    _precision_recall,
    _rank,
    fid,
    kid,
    mean_pairwise_distance,
    nearest_neighbour_distance,
)

# ===================================================================== its constants
#
# One protocol for every chapter: the same reference set, the same set sizes for real and
# generated images, several independent draws, mean ± standard deviation. Its constants are
# fixed here once for the whole course (and documented on the book's evaluation page).

#: Generated images per draw: the size of the digits test split, so that real and generated
#: sets always have the same size.
EVAL_SIZE = 359
#: Independent draws of a generated set; every score is reported as mean ± std over them.
EVAL_DRAWS = 10
#: Seed of the first draw (draw ``d`` uses ``EVAL_SEED + d``).
EVAL_SEED = 0
#: Fashion-MNIST (``dataset="fashion"``): generated images per draw, and the size of the
#: reference set, drawn once (seed ``EVAL_SEED``) from the test split, so that real and
#: generated sets have the same size. FID's upward bias shrinks as 1/size, and its 128 × 128
#: feature covariance needs many more images than features; 2,000 is also the whole test split
#: of the shipped subset, so every machine compares sets of one size.
FASHION_EVAL_SIZE = 2000
#: Independent draws for Fashion-MNIST: half the digits' 10, since one draw of 2,000 28×28
#: images costs seconds of CPU (its distances to the 60,000 training images above all) where
#: one of 359 digits costs a fraction of one.
FASHION_EVAL_DRAWS = 5
#: The datasets the protocol scores (``evaluate(..., dataset=...)``).
EVAL_DATASETS = ("digits", "fashion")
#: The scores of the protocol, in the order of its tables.
EVAL_METRICS = ("fid", "kid", "precision", "recall", "classes", "diversity", "memorisation")
#: The same scores in two groups, for tables that must fit a page's text column
#: (``comparison_table(..., groups=EVAL_GROUPS)``): distance to the test split, then coverage,
#: diversity and originality.
EVAL_GROUPS = (("fid", "kid", "precision", "recall"), ("classes", "diversity", "memorisation"))
#: What each score measures and which way is better (for tables and the book page).
EVAL_DESCRIPTIONS = {
    "fid": "Fréchet distance of CNN features to the test split (lower is better)",
    "kid": "kernel distance (unbiased MMD², cubic kernel) to the test split (lower is better; 0 = same distribution)",
    "precision": "fraction of generated images inside the test split's k-NN manifold (higher: more realistic)",
    "recall": "fraction of test images inside the generated set's k-NN manifold (higher: more diverse)",
    "classes": "digit classes (of 10) that receive at least half their share of the samples",
    "diversity": "mean pixel-space distance between two generated images",
    "memorisation": "median NN distance to the train split, relative to the test split's (≈1 generalises, →0 copies)",
}

# ===================================================================== scoring one draw

_REFERENCE_MEMO: dict = {}  # (classifier file, device) -> dict of reference quantities
_PR_K = 3  # the k of precision and recall in the protocol (Kynkäänniemi et al.'s choice)


@dataclass(frozen=True)
class _Dataset:
    """What the protocol needs of one dataset: its splits, its feature network, its draws."""

    load: Callable  # split -> (images, labels)
    reference_size: int | None  # test images the protocol compares with (None: all)
    features: Callable  # (images, device) -> float32 features tensor (checks the images)
    labels: Callable  # (features, device) -> class labels
    check: Callable  # (images, name, device) -> float32 tensor, or a clear error
    network_path: Callable  # () -> the feature network's cache file (names the reference)
    nearest: Callable  # (images, train images) -> distance to the nearest, float64 (N,)
    size: int  # images per draw (default)
    draws: int  # draws (default)
    shape: str  # the images' shape, for messages


def _fast_nearest(samples: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Nearest-neighbour distances in pixel space through matrix products (28×28 images
    against the 60,000 training images: see ``_nearest_distances_by_products``)."""
    x, r = (torch.from_numpy(_as_rows(a, name)) for a, name in
            ((samples, "samples"), (reference, "reference")))
    return _nearest_distances_by_products(x, r).numpy()


def _dataset(name: str) -> _Dataset:
    """The protocol's :class:`_Dataset` called ``name`` (one of :data:`EVAL_DATASETS`)."""
    check_choice(name, "dataset", EVAL_DATASETS)
    if name == "digits":
        return _Dataset(load_digits, None, _cnn_features, _labels_of_features,
                        _check_digit_images, _classifier_path, nearest_neighbour_distance,
                        EVAL_SIZE, EVAL_DRAWS, "(N, 1, 8, 8)")
    return _Dataset(lambda split: load_fashion_mnist(split, verbose=False), FASHION_EVAL_SIZE,
                    _fashion_cnn_features, _fashion_labels_of_features, _check_fashion_images,
                    _fashion_path, _fast_nearest, FASHION_EVAL_SIZE, FASHION_EVAL_DRAWS,
                    "(N, 1, 28, 28)")


def _reference_split(ds: _Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The test images (and labels) the draws are compared with: the whole test split, or
    ``ds.reference_size`` of them drawn once with seed ``EVAL_SEED``."""
    X, y = ds.load("test")
    if ds.reference_size is None or len(X) <= ds.reference_size:
        return X, y
    keep = np.sort(np.random.default_rng(EVAL_SEED).choice(len(X), ds.reference_size,
                                                            replace=False))
    return X[keep], y[keep]


def _reference(ds: _Dataset, device) -> dict:
    """Test-split features, class shares and the memorisation reference, computed once."""
    key = (str(ds.network_path()), str(device))
    if key not in _REFERENCE_MEMO:
        X_test, y_test = _reference_split(ds)
        X_train, _ = ds.load("train")
        features = ds.features(X_test, device).cpu().numpy().astype(np.float64)
        _REFERENCE_MEMO[key] = {
            "features": features,
            "radius": _kth_neighbour_radius(torch.from_numpy(features), _PR_K),
            "class_share": np.bincount(y_test, minlength=10) / len(y_test),
            "test": X_test,
            "train": X_train,
            "nn_test_train": float(np.median(ds.nearest(X_test, X_train))),
        }
    return _REFERENCE_MEMO[key]


def _score_draw(fake: np.ndarray, ref: dict, ds: _Dataset, device) -> dict:
    """Every score of the protocol for one generated set of images."""
    features = ds.features(fake, device)  # one pass of the CNN: features and labels
    ff = features.cpu().numpy().astype(np.float64)
    fr = ref["features"]
    k_mean, _ = kid(fr, ff, n_subsets=1, subset_size=min(len(fr), len(ff)))
    precision, recall = _precision_recall(torch.from_numpy(fr), torch.from_numpy(ff), _PR_K,
                                          ref["radius"])
    counts = np.bincount(ds.labels(features, device), minlength=10)
    classes = int((counts >= 0.5 * ref["class_share"] * len(fake)).sum())
    nn_fake = float(np.median(ds.nearest(fake, ref["train"])))
    return {
        "fid": fid(fr, ff),
        "kid": k_mean,
        "precision": precision,
        "recall": recall,
        "classes": float(classes),
        "diversity": mean_pairwise_distance(fake),
        "memorisation": nn_fake / ref["nn_test_train"],
    }


# ===================================================================== the results and their tables


class Evaluation:
    """Scores of one model under the course's evaluation protocol: every draw kept.

    ``ev["fid"]`` is ``(mean, std)`` over the draws; ``ev.draws["fid"]`` the values;
    ``ev.format("fid")`` a string ``"12.3 ± 0.4"``. In a notebook it displays as a table.
    """

    def __init__(self, draws: dict, name: str = "model", n_draws: int = 0, size: int = 0):
        self.draws = {k: np.asarray(v, dtype=np.float64) for k, v in draws.items()}
        self.name = name
        self.n_draws = n_draws
        self.size = size

    def __getitem__(self, metric: str) -> tuple[float, float]:
        v = self.draws[metric]
        return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0

    def __iter__(self):
        return iter(self.draws)

    def keys(self):
        return self.draws.keys()

    def mean(self, metric: str) -> float:
        return self[metric][0]

    def std(self, metric: str) -> float:
        return self[metric][1]

    def format(self, metric: str, digits: int | None = None) -> str:
        """``"mean ± std"`` with a sensible number of digits for the metric."""
        m, s = self[metric]
        if digits is None:
            digits = {"fid": 1, "kid": 1, "classes": 1, "diversity": 2}.get(metric, 3)
        return f"{m:.{digits}f} ± {s:.{digits}f}"

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={self.format(k)}" for k in self.draws)
        return f"Evaluation({self.name!r}: {body}; {self.n_draws} draws of {self.size})"

    def _repr_html_(self) -> str:
        return comparison_table({self.name: self})._repr_html_()


class Table:
    """A small table that shows as one HTML table in a notebook and as Markdown in text.

    ``columns``: header names; ``rows``: dict row label -> list of cell strings.
    ``groups``: None (one table), or the columns split into groups (sequences of column names,
    each column in exactly one group): then it shows as one table per group, each with the
    row labels, one under the other, so that a table with many columns fits a page's text
    column. The title goes above the first.
    """

    def __init__(self, columns, rows: dict, title: str = "", groups=None):
        self.columns = list(columns)
        self.rows = {str(k): [str(c) for c in v] for k, v in rows.items()}
        self.title = title
        if groups is not None:
            groups = [list(g) for g in groups]
            flat = [c for g in groups for c in g]
            if (any(not g for g in groups) or sorted(flat) != sorted(self.columns)
                    or len(set(flat)) != len(flat)):
                raise ValueError(f"groups must split the columns {self.columns} into non-empty "
                                 f"groups, each column in exactly one; got {groups}")
        self.groups = groups

    def _parts(self):
        """[(columns, rows)] for each table shown: one, or one per group."""
        if self.groups is None:
            return [(self.columns, self.rows)]
        index = {c: i for i, c in enumerate(self.columns)}
        return [(g, {k: [v[index[c]] for c in g] for k, v in self.rows.items()})
                for g in self.groups]

    def __str__(self) -> str:
        tables = []
        for columns, rows in self._parts():
            head = ["", *columns]
            lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            lines += ["| " + " | ".join([k, *v]) + " |" for k, v in rows.items()]
            tables.append("\n".join(lines))
        return (self.title + "\n\n" if self.title else "") + "\n\n".join(tables)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        tables = []
        for i, (columns, rows) in enumerate(self._parts()):
            head = "".join(f"<th>{escape(c)}</th>" for c in ["", *columns])
            body = "".join(
                "<tr><th>" + escape(k) + "</th>" + "".join(f"<td>{escape(c)}</td>" for c in v)
                + "</tr>"
                for k, v in rows.items()
            )
            caption = f"<caption>{escape(self.title)}</caption>" if self.title and i == 0 else ""
            tables.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
                          "</table>")
        return "\n".join(tables)


def comparison_table(evaluations: dict, metrics=EVAL_METRICS, title: str = "",
                     groups=None) -> Table:
    """One row per model, one column per score, cells ``"mean ± std"`` (:class:`Table`).

    ``groups``: show the scores as several tables, e.g. :data:`EVAL_GROUPS` (two tables of
    four and three scores, which fit a page's text column where seven do not).
    """
    metrics = list(metrics)
    rows = {name: [ev.format(m) for m in metrics] for name, ev in evaluations.items()}
    return Table(metrics, rows, title=title, groups=groups)


def separated(a, b, metric: str, n_sigma: float = 2.0) -> bool:
    """True when the means of ``metric`` differ by more than ``n_sigma`` times their spread.

    ``a`` and ``b`` are :class:`Evaluation` objects, or recorded results: anything whose
    ``[metric]`` is a ``(mean, std)`` pair, such as a row of a benchmark's JSON file.

    The spread is ``sqrt(std_a² + std_b²)`` with the per-draw standard deviations: a
    conservative rule (the standard error of a mean over ``EVAL_DRAWS`` draws is about three
    times smaller). The book interprets only differences for which this is True.
    """
    n_sigma = check_real(n_sigma, "n_sigma", minimum=0.0)
    (ma, sa), (mb, sb) = a[metric], b[metric]
    return abs(ma - mb) > n_sigma * math.hypot(sa, sb)


# ===================================================================== the protocol


def _draw(sampler, d: int, size: int, seed: int):
    """Draw ``d``'s images: ``sampler(size, seed + d)``, or the ``d``-th slice of an array."""
    if callable(sampler):
        out = sampler(size, (seed + d) % 2**64)  # a valid seed, even from seed = 2**64 - 1
        if isinstance(out, tuple):  # e.g. GaussianMixture.sample returns (X, y)
            out = out[0]
        return out
    return sampler[d * size : (d + 1) * size]


def _checked_draw(sampler, d: int, size: int, seed: int, ds: _Dataset) -> np.ndarray:
    """Draw ``d`` as ``size`` images of the dataset in [0, 1] (a NumPy array), or a clear error."""
    images = _draw(sampler, d, size, seed)
    fake = ds.check(images, f"draw {d} of the sampler", "cpu").numpy()
    if len(fake) != size:
        raise ValueError(f"sampler returned {len(fake)} images for draw {d}, expected {size}")
    return fake


def _score_draws(sampler, n_draws: int, size: int, seed: int, ds: _Dataset, device) -> dict:
    """Every score of every draw: ``{metric: [value of draw 0, 1, ...]}``."""
    ref = _reference(ds, device)
    draws: dict[str, list] = {k: [] for k in EVAL_METRICS}
    previous = None
    for d in range(n_draws):
        fake = _checked_draw(sampler, d, size, seed, ds)
        if previous is not None and np.array_equal(previous, fake):
            raise ValueError(
                "sampler returned identical images for two seeds: it must draw fresh images "
                "for each seed (e.g. pass the seed on to the model's sample method)"
            )
        previous = fake
        for k, v in _score_draw(fake, ref, ds, device).items():
            draws[k].append(v)
    return draws


def evaluate(
    sampler,
    *,
    name: str = "model",
    n_draws: int | None = None,
    size: int | None = None,
    seed: int = EVAL_SEED,
    device=None,
    dataset: str = "digits",
) -> Evaluation:
    """The course's evaluation protocol for a generator of 8×8 digits (or of Fashion-MNIST).

    ``n_draws`` times, draw ``size`` images and score them against the **test split** (359
    real images never used for training): FID, KID, precision and recall on the digit CNN's
    features, the number of digit classes covered (by the digit classifier), the diversity
    (mean pairwise pixel distance) and the memorisation ratio against the train split. Every
    score is reported as mean ± standard deviation over the draws (:class:`Evaluation`), so
    that a difference between two models can be compared with the spread of each.

    Parameters
    ----------
    sampler : a function ``sampler(n, seed)`` returning ``n`` images ``(n, 1, 8, 8)`` in
        [0, 1] (or a tuple whose first item they are) that draws fresh images for every
        ``seed``; or an array of at least ``n_draws * size`` images, cut into ``n_draws``
        disjoint sets.
    name : label of the model in tables.
    n_draws : >= 2 (default :data:`EVAL_DRAWS`). size : >= 10 (default :data:`EVAL_SIZE`;
        FID needs a covariance; precision/recall need neighbours).
    seed : draw ``d`` calls ``sampler(size, seed + d)`` (modulo 2**64, so that every seed
        the course accepts, up to 2**64 - 1, gives valid seeds).
    dataset : ``"digits"`` (the default) or ``"fashion"``: 28×28 images ``(n, 1, 28, 28)``
        scored on the Fashion-MNIST network's features (``metrics.fashion``) against
        :data:`FASHION_EVAL_SIZE` images of ``load_fashion_mnist("test")``, by default in
        :data:`FASHION_EVAL_DRAWS` draws of :data:`FASHION_EVAL_SIZE`.

    Raises ``ValueError`` when a draw has the wrong shape or values outside [0, 1] (clip the
    samples first: the scores compare images, not raw model outputs), when two draws are
    identical (the sampler ignores its seed, and the spread would be a lie), or for a
    ``dataset`` not in :data:`EVAL_DATASETS`.
    """
    ds = _dataset(dataset)
    n_draws = check_int(ds.draws if n_draws is None else n_draws, "n_draws", minimum=2)
    size = check_int(ds.size if size is None else size, "size", minimum=10)
    seed = check_seed(seed, allow_none=False)
    device = resolve_device(device)
    if not callable(sampler):
        if _rank(sampler) != 4 or len(sampler) < n_draws * size:
            raise ValueError(
                f"sampler must be a function sampler(n, seed) or at least n_draws*size = "
                f"{n_draws * size} images {ds.shape}"
            )
    draws = _score_draws(sampler, n_draws, size, seed, ds, device)
    return Evaluation(draws, name=name, n_draws=n_draws, size=size)


def evaluate_floor(*, n_draws: int | None = None, size: int | None = None,
                   seed: int = EVAL_SEED, device=None, dataset: str = "digits") -> Evaluation:
    """The real-vs-real floor: :func:`evaluate` of a "model" that returns random training images.

    Each draw takes ``size`` distinct images of the train split: real images from the same
    distribution as the test split, so their scores are the best a generator can expect at
    this set size (FID is biased upwards at small sizes; KID is not). Their memorisation ratio
    is 0 by construction: they *are* training images. ``dataset`` and the defaults of
    ``n_draws`` and ``size`` are :func:`evaluate`'s.
    """
    X_train, _ = _dataset(dataset).load("train")

    def real(n, s):
        rng = np.random.default_rng(s)
        return X_train[rng.choice(len(X_train), n, replace=False)]

    return evaluate(real, name="real (floor)", n_draws=n_draws, size=size, seed=seed,
                    device=device, dataset=dataset)
