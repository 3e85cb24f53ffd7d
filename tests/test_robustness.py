"""Bad inputs and faults: every public function answers them with a clear error, never a
silent wrong result (issue 12).

Three parts:

1. ``CASES``, a table of single bad calls. Each row names the function, what is wrong with the
   input, the call, the exception it must raise and a text its message must contain (usually
   the argument's name). The page ``book/bad_inputs.md`` is generated from this table by
   ``tools/bad_inputs_table.py``; :func:`test_bad_inputs_page_is_in_sync` keeps them equal.
   A row with ``gap=...`` is a known gap (the owner of the module is told what to change):
   it is an expected failure (``xfail``, not strict, so that the fix does not break this
   file) and it is left out of the page.
2. ``ARRAY_ARGUMENTS``, a table of functions taking one array argument; property-based tests
   (``hypothesis``) poison a valid array in many ways (NaN, ±inf at any position, complex,
   wrong rank, strings) and check the refusal names the argument.
3. Faults: a learner's function that never returns or mutates its inputs, unwritable cache
   folders, a device that does not exist.

A new module (GAN, VAE) joins by adding rows to ``CASES`` and ``ARRAY_ARGUMENTS``; modules are
imported inside the calls, so a row for a module not yet written fails alone.

The tables are built at collection time, before any fixture: their calls leave ``device`` at
``None``, which reads ``COURSE_DEVICE``, and tests/conftest.py makes that the tests' device (the
CPU unless ``COURSE_DEVICE=cuda``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from course_lib import _core, data, metrics, viz  # noqa: E402
from course_lib import grading as grading_base  # noqa: E402
from course_lib.grading import GradingError  # noqa: E402

# Not from tests/_shared.py: tools/bad_inputs_table.py loads this file outside pytest.
ROOT = Path(__file__).resolve().parent.parent

# Deterministic, quick, and no example database written into the checkout.
settings.register_profile(
    "course", max_examples=25, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("course")


# ===================================================================== 1. the table of cases


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad call and what it must get."""

    module: str  # section of the page: "data", "metrics", "viz", "core", "grading", ...
    function: str  # the function as a reader calls it
    bad: str  # what is wrong with the input, in words (markdown)
    call: Callable[[], object]  # makes the call
    raises: type[BaseException] | tuple[type[BaseException], ...]
    names: str  # text the error message must contain (the argument's name, usually)
    gap: str | None = None  # known gap: who should change what (the row then xfails)

    @property
    def id(self) -> str:
        return f"{self.function}: {self.bad}"


def _digits(n=20, seed=0):
    return np.random.default_rng(seed).random((n, 1, 8, 8))


def _points(n=20, d=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


_SPINS = np.zeros((4, 4), dtype=np.uint8)


def _learner_identity(x):
    return x


CASES: list[Case] = [
    # ------------------------------------------------------------------ course_lib._core
    Case("core", "get_device()", "`COURSE_DEVICE=tpu`", lambda: _with_env(
        "COURSE_DEVICE", "tpu", _core.get_device), ValueError, "COURSE_DEVICE"),
    Case("core", "resolve_device", '`device="gpu"`',
         lambda: _core.resolve_device("gpu"), ValueError, "device"),
    Case("core", "resolve_device", "`device=12345` (an int)",
         lambda: _core.resolve_device(12345), ValueError, "device"),
    Case("core", "resolve_device", '`device="meta"`',
         lambda: _core.resolve_device("meta"), ValueError, "device"),
    Case("core", "resolve_device", '`device="cuda"` with no GPU',
         lambda: _without_gpu(lambda: _core.resolve_device("cuda")), RuntimeError, "device"),
    Case("core", "seed_everything", "`seed=-1`",
         lambda: _core.seed_everything(-1), ValueError, "seed"),
    Case("core", "seed_everything", "`seed=2**64` (too large for PyTorch)",
         lambda: _core.seed_everything(2**64), ValueError, "seed"),
    Case("core", "seed_everything", '`seed="0"` (a string)',
         lambda: _core.seed_everything("0"), TypeError, "seed"),
    Case("core", "seed_everything", "`seed=1.5`",
         lambda: _core.seed_everything(1.5), TypeError, "seed"),
    Case("core", "seed_everything", "`seed=True`",
         lambda: _core.seed_everything(True), TypeError, "seed"),
    Case("core", "check_bool", '`"False"` (a string) as a flag',
         lambda: _core.check_bool("False", "progress"), TypeError, "progress"),
    Case("core", "check_bool", "`0` as a flag",
         lambda: _core.check_bool(0, "progress"), TypeError, "progress"),
    Case("core", "as_tensor", "a complex array",
         lambda: _core.as_tensor(np.ones(3) + 0j, "X"), TypeError, "X must be real"),
    Case("core", "as_tensor", "a complex tensor",
         lambda: _core.as_tensor(torch.ones(3, dtype=torch.complex64), "X"), TypeError,
         "X must be real"),
    Case("core", "as_tensor", "a ragged nested list",
         lambda: _core.as_tensor([[1, 2], [3]], "X"), TypeError, "X"),
    Case("core", "as_tensor", "a string",
         lambda: _core.as_tensor("1, 2", "X"), TypeError, "X"),
    Case("core", "as_tensor", "timedeltas",
         lambda: _core.as_tensor(np.array([1, 2], dtype="timedelta64[s]"), "X"), TypeError, "X"),
    Case("core", "check_real", "`1j`",
         lambda: _core.check_real(1j, "beta"), TypeError, "beta"),
    Case("core", "check_real", "a complex 0-d tensor",
         lambda: _core.check_real(torch.tensor(1 + 0j), "beta"), TypeError, "beta"),
    Case("core", "as_tensor", "a tensor on the `meta` device (a shape, no values)",
         lambda: _core.as_tensor(torch.zeros(3, device="meta"), "X"), ValueError, "X"),
    Case("core", "as_real_array", "`None`",
         lambda: _core.as_real_array(None, "x"), TypeError, "x"),
    Case("core", "as_real_array", "dates and times",
         lambda: _core.as_real_array(_dates(), "x"), TypeError, "x must hold real numbers"),
    Case("core", "as_real_array", "a negative density",
         lambda: _core.as_real_array([0.5, -0.1], "p", nonnegative=True), ValueError,
         "p must be >= 0"),
    Case("core", "as_real_array", "a NaN density",
         lambda: _core.as_real_array([0.5, np.nan], "p", finite=False, nonnegative=True),
         ValueError, "p contains NaN"),
    Case("core", "write_files", "a full disk (the writer fails half-way)",
         lambda: _in_temp_dir(lambda: _on_a_full_disk(
             lambda: _core.write_files({Path("w.pt"): b"x" * 1000}))), OSError,
         "could not write 1,000 bytes in the folder ."),
    Case("core", "write_files", "a full disk inside `torch.save`",
         lambda: _in_temp_dir(lambda: _on_a_full_disk(
             lambda: _core.write_files({Path("w.pt"): b"x" * 1000}), "iostream")), OSError,
         "(no space left; 0 bytes free): RuntimeError"),
    # ------------------------------------------------------------------ course_lib.data
    Case("data", "load_digits", '`split="validation"`',
         lambda: data.load_digits("validation"), ValueError, "split"),
    Case("data", "load_digits", '`raw="False"` (a string)',
         lambda: data.load_digits(raw="False"), TypeError, "raw"),
    Case("data", "load_digits", "`dequantize=True, seed=-1`",
         lambda: data.load_digits(dequantize=True, seed=-1), ValueError, "seed"),
    Case("data", "dequantize", "complex levels",
         lambda: data.dequantize(np.array([1 + 1j])), TypeError, "levels"),
    Case("data", "dequantize", "a level between grey levels (1.5)",
         lambda: data.dequantize(np.array([1.5])), ValueError, "levels"),
    Case("data", "ring_of_gaussians", "`n=0`",
         lambda: data.ring_of_gaussians(0), ValueError, "n must be >= 1"),
    Case("data", "ring_of_gaussians", "`n=2.5`",
         lambda: data.ring_of_gaussians(2.5), TypeError, "n must be an integer"),
    Case("data", "ring_of_gaussians", "`std=nan`",
         lambda: data.ring_of_gaussians(10, std=float("nan")), ValueError, "std"),
    Case("data", "ring_of_gaussians", "`std=1j`",
         lambda: data.ring_of_gaussians(10, std=1j), TypeError, "std"),
    Case("data", "ring_of_gaussians", "`seed=-1`",
         lambda: data.ring_of_gaussians(10, seed=-1), ValueError, "seed"),
    Case("data", "grid_of_gaussians", "`side=0`",
         lambda: data.grid_of_gaussians(10, side=0), ValueError, "side"),
    Case("data", "load_binary_image", '`name="zebra"`',
         lambda: data.load_binary_image("zebra"), ValueError, "name"),
    Case("data", "load_binary_image", "`size=10**6` (larger than the image)",
         lambda: data.load_binary_image(size=10**6), ValueError, "size"),
    Case("data", "load_binary_image", '`size="64"` (a string)',
         lambda: data.load_binary_image(size="64"), TypeError, "size"),
    Case("data", "flip_noise", "`p=1.5`",
         lambda: data.flip_noise(_SPINS, 1.5), ValueError, "p must be <= 1"),
    Case("data", "flip_noise", "`p=nan`",
         lambda: data.flip_noise(_SPINS, float("nan")), ValueError, "p must be finite"),
    Case("data", "flip_noise", "an image with values other than {0, 1} or {-1, +1}",
         lambda: data.flip_noise(np.full((4, 4), 2), 0.1), ValueError, "image"),
    Case("data", "flip_noise", "an empty image",
         lambda: data.flip_noise(np.zeros((0, 4)), 0.1), ValueError, "image"),
    Case("data", "flip_noise", "a complex image",
         lambda: data.flip_noise(np.zeros((4, 4), complex), 0.1), TypeError, "image"),
    Case("data", "load_image_folder", "a 32-bit integer TIFF (no fixed brightness scale)",
         lambda: _in_temp_dir(lambda: _image_folder_call(np.full((8, 8), 200, np.int32))),
         ValueError, "32-bit integer image"),
    # ------------------------------------------------------------------ course_lib.gmm
    Case("gmm", "GaussianMixture.fit", "unit spread at 1e16 (float64 rounds it to steps of 2)",
         lambda: _gmm_fit(_points(50) + 1e16), ValueError, "rounded away"),
    Case("gmm", "GaussianMixture.fit", "float32 data with unit spread at 1e6",
         lambda: _gmm_fit((_points(50) + 1e6).astype(np.float32)), ValueError, "rounded away"),
    Case("gmm", "GaussianMixture.fit", "a spread of 1e294 at 1e300 (squares overflow)",
         lambda: _gmm_fit(1e300 + 1e294 * _points(50)), ValueError, "Rescale the data"),
    Case("gmm", "GaussianMixture.fit", "complex data",
         lambda: _gmm_fit(_points(50) + 0j), ValueError, "Complex data not supported"),
    # ------------------------------------------------------------------ course_lib.mrf
    Case("mrf", "integrated_autocorrelation_time", "`x=None`",
         lambda: _mrf().integrated_autocorrelation_time(None), TypeError, "x"),
    Case("mrf", "integrated_autocorrelation_time", "a trace of dates",
         lambda: _mrf().integrated_autocorrelation_time(_dates()), TypeError, "x"),
    Case("mrf", "integrated_autocorrelation_time", "a trace on the `meta` device",
         lambda: _mrf().integrated_autocorrelation_time(torch.zeros(20, device="meta")),
         ValueError, "x is a tensor on the 'meta' device"),
    Case("mrf", "effective_sample_size", "an empty trace",
         lambda: _mrf().effective_sample_size(np.zeros(0)), ValueError, "x needs at least 2"),
    Case("mrf", "effective_sample_size", "a trace of strings",
         lambda: _mrf().effective_sample_size(np.array(["1", "2", "3"])), TypeError, "x"),
    Case("mrf", "gelman_rubin", "one chain",
         lambda: _mrf().gelman_rubin(_points(20, 1)), ValueError, "at least 2"),
    Case("mrf", "gelman_rubin", "NaN in a chain",
         lambda: _mrf().gelman_rubin(np.full((20, 2), np.nan)), ValueError, "x contains NaN"),
    Case("mrf", "ais_standard_error", "complex log weights",
         lambda: _mrf().ais_standard_error(np.zeros(4) + 0j), TypeError, "log_w must be real"),
    Case("mrf", "ais_standard_error", "`log_w=None`",
         lambda: _mrf().ais_standard_error(None), TypeError, "log_w"),
    Case("mrf", "ais_standard_error", "one chain",
         lambda: _mrf().ais_standard_error([0.0]), ValueError, "at least 2 chains"),
    # ------------------------------------------------------------------ course_lib.metrics
    Case("metrics", "gaussian_log_likelihood", "complex `X`",
         lambda: metrics.gaussian_log_likelihood(_points() + 0j, np.zeros(2), np.eye(2)),
         TypeError, "X must be real"),
    Case("metrics", "gaussian_log_likelihood", "NaN in `X`",
         lambda: metrics.gaussian_log_likelihood(np.full((3, 2), np.nan), np.zeros(2),
                                                 np.eye(2)), ValueError, "X contains NaN"),
    Case("metrics", "gaussian_log_likelihood", "a covariance that is not positive definite",
         lambda: metrics.gaussian_log_likelihood(_points(), np.zeros(2), -np.eye(2)),
         ValueError, "cov"),
    Case("metrics", "gaussian_log_likelihood", "`mean` of the wrong length",
         lambda: metrics.gaussian_log_likelihood(_points(), np.zeros(3), np.eye(2)),
         ValueError, "mean"),
    Case("metrics", "bits_per_pixel", "`n_pixels=0`",
         lambda: metrics.bits_per_pixel(-100.0, 0), ValueError, "n_pixels"),
    Case("metrics", "bits_per_pixel", "a NaN log-likelihood",
         lambda: metrics.bits_per_pixel(float("nan"), 64), ValueError, "log_likelihood"),
    Case("metrics", "frechet_distance", "complex `mu1`",
         lambda: metrics.frechet_distance(np.zeros(2) + 0j, np.eye(2), np.zeros(2), np.eye(2)),
         TypeError, "mu1"),
    Case("metrics", "frechet_distance", "a non-symmetric `sigma1`",
         lambda: metrics.frechet_distance(np.zeros(2), np.array([[1.0, 2.0], [0.0, 1.0]]),
                                          np.zeros(2), np.eye(2)), ValueError, "sigma1"),
    Case("metrics", "fid", "images with values above 1",
         lambda: metrics.fid(_digits() * 2, _digits()), ValueError, "must be <= 1"),
    Case("metrics", "fid", "images of shape (N, 1, 9, 9)",
         lambda: metrics.fid(np.random.default_rng(0).random((5, 1, 9, 9)), _digits()),
         ValueError, "(N, 1, 8, 8)"),
    Case("metrics", "fid", "one real sample",
         lambda: metrics.fid(_points()[:1], _points()), ValueError, "real"),
    Case("metrics", "fid", "complex features",
         lambda: metrics.fid(_points() + 0j, _points()), TypeError, "real must be real"),
    Case("metrics", "fid", '`device="gpu"` with features',
         lambda: metrics.fid(_points(), _points(), device="gpu"), ValueError, "device"),
    Case("metrics", "digit_features", '`device="gpu"`',
         lambda: metrics.digit_features(_digits(), device="gpu"), ValueError, "device"),
    Case("metrics", "digit_features", "`device=12345`",
         lambda: metrics.digit_features(_digits(), device=12345), ValueError, "device"),
    Case("metrics", "kid", "`n_subsets=0`",
         lambda: metrics.kid(_points(), _points(), n_subsets=0), ValueError, "n_subsets"),
    Case("metrics", "kid", "`seed=-1`",
         lambda: metrics.kid(_points(), _points(), seed=-1), ValueError, "seed"),
    Case("metrics", "precision_recall", "`k` larger than the sets",
         lambda: metrics.precision_recall(_points(), _points(), k=100), ValueError, "k"),
    Case("metrics", "mode_coverage", "`std=0`",
         lambda: metrics.mode_coverage(_points(), _points()[:3], 0.0), ValueError, "std"),
    Case("metrics", "nearest_neighbour_distance", "different numbers of features",
         lambda: metrics.nearest_neighbour_distance(_points(), _points(5, 3)), ValueError,
         "features"),
    Case("metrics", "memorisation_ratio", "NaN samples",
         lambda: metrics.memorisation_ratio(np.full((3, 2), np.nan), _points(), _points()),
         ValueError, "samples"),
    Case("metrics", "classifier_accuracy", '`split="val"`',
         lambda: metrics.classifier_accuracy("val"), ValueError, "split"),
    Case("metrics", "kid", "features near 1e300 (the cubic kernel overflows)",
         lambda: metrics.kid(1e300 * _points(), _points(), n_subsets=2), ValueError,
         "real, fake: KID overflows float64"),
    Case("metrics", "kid", "`real=None`",
         lambda: metrics.kid(None, _points()), TypeError, "real"),
    Case("metrics", "kid", "features on the `meta` device",
         lambda: metrics.kid(torch.zeros(20, 2, device="meta"), _points()), ValueError, "real"),
    Case("metrics", "nearest_neighbour_distance", "dates and times",
         lambda: metrics.nearest_neighbour_distance(_dates(), _points()), TypeError, "samples"),
    Case("metrics", "nearest_neighbour_distance", "a tensor on the `meta` device",
         lambda: metrics.nearest_neighbour_distance(torch.zeros(5, 2, device="meta"), _points()),
         ValueError, "samples"),
    Case("metrics", "memorisation_ratio", "`train=None`",
         lambda: metrics.memorisation_ratio(_points(), None, _points()), TypeError, "train"),
    Case("metrics", "mean_pairwise_distance", "no rows",
         lambda: metrics.mean_pairwise_distance(np.zeros((0, 2))), ValueError, "X is empty"),
    Case("metrics", "mean_pairwise_distance", "one row",
         lambda: metrics.mean_pairwise_distance(np.zeros((1, 2))), ValueError, "X needs at least 2"),
    Case("metrics", "mean_pairwise_distance", "complex rows",
         lambda: metrics.mean_pairwise_distance(_points() + 0j), TypeError, "X must be real"),
    # ------------------------------------------------------------------ course_lib.viz
    Case("viz", "image_grid", "a 2D array", lambda: viz.image_grid(np.zeros((4, 4))),
         ValueError, "X must have 3 or 4 dimensions"),
    Case("viz", "image_grid", "three channels",
         lambda: viz.image_grid(np.zeros((2, 3, 4, 4))), ValueError, "one channel"),
    Case("viz", "image_grid", "`nrow=0`", lambda: viz.image_grid(_digits(), nrow=0),
         ValueError, "nrow"),
    Case("viz", "show_images", "NaN pixels",
         lambda: viz.show_images(np.full((2, 1, 4, 4), np.nan)), ValueError, "X contains NaN"),
    Case("viz", "plot_points", "three columns", lambda: viz.plot_points(np.zeros((4, 3))),
         ValueError, "2 columns"),
    Case("viz", "plot_points", "complex points", lambda: viz.plot_points(_points() + 0j),
         TypeError, "X must be real"),
    Case("viz", "plot_density", "`n=1`",
         lambda: viz.plot_density(lambda g: g[:, 0], (0, 1), (0, 1), n=1), ValueError, "n"),
    Case("viz", "plot_density", "`log_density` returning NaN",
         lambda: viz.plot_density(lambda g: np.full(len(g), np.nan), (0, 1), (0, 1), n=5),
         ValueError, "log_density"),
    Case("viz", "plot_gaussian_ellipses", "2 means, 3 covariances",
         lambda: viz.plot_gaussian_ellipses(np.zeros((2, 2)), np.stack([np.eye(2)] * 3)),
         ValueError, "covariances"),
    Case("viz", "plot_gaussian_ellipses", "NaN weights",
         lambda: viz.plot_gaussian_ellipses(np.zeros((1, 2)), np.eye(2)[None],
                                            weights=[np.nan]), ValueError, "weights"),
    Case("viz", "plot_history", "a key not in the history",
         lambda: viz.plot_history({"a": [1, 2]}, keys=["b"]), ValueError, "keys"),
    Case("viz", "plot_history", '`logy="False"` (a string)',
         lambda: viz.plot_history({"a": [1, 2]}, logy="False"), TypeError, "logy"),
    Case("viz", "plot_history", "complex values",
         lambda: viz.plot_history({"a": [1j, 2]}), TypeError, "history"),
    # ------------------------------------------------------------------ course_lib.grading
    Case("grading", "call_learner", "not a function",
         lambda: grading_base.call_learner(42, what="fit_gaussian"), GradingError,
         "fit_gaussian should be a function"),
    Case("grading", "call_learner", "`raise NotImplementedError()` left in",
         lambda: grading_base.call_learner(_not_implemented, what="fit_gaussian"), GradingError,
         "not implemented yet"),
    Case("grading", "call_learner", "a function that never returns",
         lambda: grading_base.call_learner(_endless, what="half_sweep", time_limit=0.3),
         GradingError, "did not return within 0.3 seconds"),
    Case("grading", "check_shape", "`None` (a missing `return`)",
         lambda: grading_base.check_shape(None, (3,), "mean"), GradingError, "forget a `return`"),
    Case("grading", "check_shape", "the wrong shape",
         lambda: grading_base.check_shape(np.zeros(4), (3,), "mean"), GradingError,
         "mean has shape (4,), expected (3,)"),
    Case("grading", "check_shape", "a complex answer",
         lambda: grading_base.check_shape(np.zeros(3) + 1j, (3,), "mean"), GradingError,
         "mean is complex"),
    Case("grading", "check_shape", "a string",
         lambda: grading_base.check_shape("0.5", (), "mean"), GradingError, "string"),
    Case("grading", "check_close", "NaN in the answer",
         lambda: grading_base.check_close([1.0, np.nan], [1.0, 2.0], "cov"), GradingError,
         "cov contains NaN"),
    Case("grading", "check_close", "a complex tensor",
         lambda: grading_base.check_close(torch.ones(2, dtype=torch.complex64), np.ones(2),
                                        "cov"), GradingError, "cov is complex"),
    Case("grading", "check_probability", "a NaN p-value",
         lambda: grading_base.check_probability(float("nan"), "p-value"), GradingError,
         "p-value is nan"),
    Case("grading", "check_probability", "a p-value of 1.5",
         lambda: grading_base.check_probability(1.5, "p-value"), GradingError, "p-value is 1.5"),
    Case("grading", "check_scalar", "an array where one number is expected",
         lambda: grading_base.check_scalar(np.zeros(3), "FID"), GradingError,
         "FID should be one number"),
    # ------------------------------------------------------------------ GAN, VAE
    Case("gan", "GAN", "`latent_dim=0`",
         lambda: _gan().GAN(latent_dim=0, n_steps=1).fit(_digits(16)), ValueError, "latent_dim"),
    Case("gan", "GAN", '`loss="hinge"`',
         lambda: _gan().GAN(loss="hinge", n_steps=1).fit(_digits(16)), ValueError, "loss"),
    Case("gan", "GAN", '`progress="no"` (a string)',
         lambda: _gan().GAN(n_steps=1, progress="no").fit(_digits(16)), TypeError, "progress"),
    Case("gan", "GAN", "`random_state=-1`",
         lambda: _gan().GAN(n_steps=1, random_state=-1).fit(_digits(16)), ValueError,
         "random_state"),
    Case("gan", "GAN.fit", "NaN images",
         lambda: _gan().GAN(n_steps=1).fit(_nan_digits()), ValueError, "X contains NaN"),
    Case("gan", "GAN.fit", "images with values above 1",
         lambda: _gan().GAN(n_steps=1).fit(2 * _digits(16)), ValueError, "X"),
    Case("gan", "GAN.fit", "3 labels for 16 images",
         lambda: _gan().GAN(n_steps=1).fit(_digits(16), np.zeros(3, int)), ValueError, "y"),
    Case("gan", "GAN.sample", "before fit", lambda: _gan().GAN().sample(3), NotFittedError,
         "not fitted"),
    Case("gan", "GAN.fit", "a complex array",
         lambda: _tiny_gan().fit(_points(8) + 0j), TypeError, "X must be real"),
    Case("gan", "GAN.fit", "a sparse matrix",
         lambda: _tiny_gan().fit(_sparse(_points(8))), TypeError, "sparse input is not supported"),
    Case("gan", "GAN.fit", "no rows (shape (0, 2))",
         lambda: _tiny_gan().fit(np.zeros((0, 2))), ValueError, "X: Found array with 0 sample(s)"),
    Case("gan", "GAN.fit", "one sample", lambda: _tiny_gan().fit(_points(1)), ValueError,
         "got 1 sample"),
    Case("gan", "GAN.fit", "labels 0.5 and 1.5", lambda: _tiny_gan().fit(_points(2), [0.5, 1.5]),
         ValueError, "y must hold class labels"),
    Case("gan", "GAN.sample", "labels for a model fitted without labels",
         lambda: _fitted_models()["gan"].sample(2, labels=[0, 1]), ValueError, "labels"),
    Case("gan", "GAN.sample", "a label not seen by fit",
         lambda: _fitted_models()["cgan"].sample(2, labels=[0, 7]), ValueError, "labels"),
    Case("gan", "GAN.sample", "labels of shape (2, 1) for 2 samples",
         lambda: _fitted_models()["cgan"].sample(2, labels=[[0], [1]]), ValueError,
         r"labels must be one class label or an array of shape (2,)"),
    Case("vae", "VAE", "`latent_dim=0`",
         lambda: _vae().VAE(latent_dim=0, epochs=1).fit(_digits(16)), ValueError, "latent_dim"),
    Case("vae", "VAE", '`likelihood="poisson"`',
         lambda: _vae().VAE(likelihood="poisson", epochs=1).fit(_digits(16)), ValueError,
         "likelihood"),
    Case("vae", "VAE.fit", "NaN images",
         lambda: _vae().VAE(epochs=1).fit(_nan_digits()), ValueError, "X contains NaN"),
    Case("vae", "VAE.fit", "grey levels above 1 for the discretised logistic",
         lambda: _vae().VAE(epochs=1).fit(2 * _digits(16)), ValueError, "X must be in [0, 1]"),
    Case("vae", "VAE.fit", "grey images for the Bernoulli decoder",
         lambda: _vae().VAE(likelihood="bernoulli", epochs=1).fit(_digits(16)), ValueError,
         "X must contain only 0 and 1"),
    Case("vae", "VAE.sample", "before fit", lambda: _vae().VAE().sample(3), NotFittedError,
         "not fitted"),
    Case("vae", "VAE.sample", "labels of shape (2, 1) for 2 samples",
         lambda: _fitted_models()["cvae"].sample(2, labels=[[0], [1]]), ValueError,
         r"labels must be one class label or an array of shape (2,)"),
    Case("vae", "VAE", '`progress="no"` (a string)',
         lambda: _vae().VAE(epochs=1, progress="no").fit(_digits(16)), TypeError, "progress"),
    Case("vae", "VAE.sample", '`draw="False"` (a string)',
         lambda: _fitted_vae().sample(2, draw="False"), TypeError, "draw"),
    Case("vae", "VAE.fit", "a complex array",
         lambda: _tiny_vae().fit(_digits(8) + 0j), TypeError, "X must be real"),
    Case("vae", "VAE.fit", "a sparse matrix",
         lambda: _tiny_vae(likelihood="gaussian").fit(_sparse(_points(8))), TypeError,
         "sparse input is not supported"),
    Case("vae", "VAE.fit", "one sample", lambda: _tiny_vae().fit(_digits(1)), ValueError,
         "X: Found array with 1 sample(s)"),
    Case("vae", "VAE.fit", "a NaN label",
         lambda: _tiny_vae().fit(_digits(4), [0, 1, np.nan, 1]), ValueError, "y contains NaN"),
    Case("vae", "VAE.score_samples", "images of another size (6×6 for a model fitted on 8×8)",
         lambda: _fitted_vae().score_samples(_digits(2)[:, :, :6, :6], k=4), ValueError,
         "X has 36 features, but VAE is expecting 64"),
    Case("vae", "VAE.elbo", "labels for a model fitted without labels",
         lambda: _fitted_vae().elbo(_digits(2), labels=[0, 1]), ValueError, "labels"),
    Case("vae", "VAE.elbo", "a label not seen by fit",
         lambda: _fitted_models()["cvae"].elbo(_uniform((2, 1, 4, 4)), labels=[0, 7]),
         ValueError, "labels"),
]


def _sparse(x):
    import scipy.sparse

    return scipy.sparse.csr_matrix(x)


def _fitted_vae():
    return _vae().VAE(epochs=1, hidden=(8,), latent_dim=2, progress=False,
                      random_state=0).fit(_digits(16))


def _gan():
    from course_lib import gan

    return gan


def _vae():
    from course_lib import vae

    return vae


def _nan_digits():
    x = _digits(16)
    x[0, 0, 0, 0] = np.nan
    return x


def _dates():
    return np.arange(40).astype("datetime64[s]").reshape(20, 2)


def _mrf():
    from course_lib import mrf

    return mrf


def _gmm_fit(X):
    from course_lib.gmm import GaussianMixture

    return GaussianMixture(2, random_state=0, device="cpu").fit(X)


def _in_temp_dir(fn):
    """Run ``fn`` in a fresh temporary working folder (so that messages show relative paths,
    the same on every machine)."""
    import os
    import tempfile

    old = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)
        try:
            return fn()
        finally:
            os.chdir(old)


def _image_folder_call(array):
    from PIL import Image

    Path("images").mkdir()
    Image.fromarray(array).save("images/deep.tif")
    return data.load_image_folder("images", 8)


def _on_a_full_disk(fn, kind="enospc"):
    """``fn()`` with the cache writer failing as on a full disk, and a disk with 0 bytes free."""
    import errno
    import os
    import shutil

    def write(fd, payload):
        if kind == "iostream":
            raise RuntimeError("basic_ios::clear: iostream error")
        os.write(fd, payload[: len(payload) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_write, real_usage = _core._write_all, shutil.disk_usage
    _core._write_all = write
    shutil.disk_usage = lambda path: shutil._ntuple_diskusage(10**9, 10**9, 0)
    try:
        return fn()
    finally:
        _core._write_all, shutil.disk_usage = real_write, real_usage


def _with_env(name, value, fn):
    import os

    old = os.environ.get(name)
    os.environ[name] = value
    try:
        return fn()
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _without_gpu(fn):
    real = torch.cuda.is_available
    torch.cuda.is_available = lambda: False
    try:
        return fn()
    finally:
        torch.cuda.is_available = real


def _not_implemented(*args):
    raise NotImplementedError()


def _endless(*args):
    while True:
        pass


def run_case(case: Case) -> BaseException | None:
    """Make the call; return the exception it raised (``None`` if it raised nothing)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case.call()
    except Exception as exc:  # noqa: BLE001 - the point is to look at any exception
        return exc
    finally:
        plt.close("all")
    return None


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(reason=f"known gap: {case.gap}", strict=False)] if case.gap \
            else []
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_bad_input_is_refused_clearly(case: Case):
    exc = run_case(case)
    assert exc is not None, f"{case.id} was accepted"
    assert isinstance(exc, case.raises), (
        f"{case.id} raised {type(exc).__name__}: {exc}, expected {case.raises}"
    )
    assert case.names in str(exc), f"{case.id}: the message {str(exc)!r} lacks {case.names!r}"


def test_case_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]


def _load_table_tool():
    spec = importlib.util.spec_from_file_location("bad_inputs_table",
                                                  ROOT / "tools" / "bad_inputs_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bad_inputs_page_is_in_sync():
    tool = _load_table_tool()
    page = ROOT / "book" / "bad_inputs.md"
    assert page.read_text(encoding="utf-8") == tool.render(CASES, run_case), (
        "book/bad_inputs.md is out of date: run `.venv/bin/python tools/bad_inputs_table.py`"
    )


# ===================================================================== 2. property-based


@dataclasses.dataclass(frozen=True)
class ArrayArgument:
    """A function of one array argument, a valid shape for it and the argument's name."""

    function: str
    call: Callable[[object], object]
    shape: tuple[int, ...]
    name: str
    low: float = 0.0  # valid values lie in [low, high]
    high: float = 1.0
    any_rank: bool = False  # the function takes arrays of any rank
    try_valid: bool = True  # False where a valid call is slow (trains the digit classifier)
    valid: Callable[[], np.ndarray] | None = None  # a valid array (default: all (low+high)/2)
    bounded: bool = False  # values outside [low, high] are refused
    refuses_empty: bool = True  # an array with no rows is refused
    labels: bool = False  # class labels: strings are valid labels, so only NaN/inf/complex


ARRAY_ARGUMENTS: list[ArrayArgument] = [
    ArrayArgument("core.as_tensor", lambda x: _core.as_tensor(x, "X"), (3, 2), "X",
                  any_rank=True),
    ArrayArgument("core.check_images", lambda x: _core.check_images(x, "images"), (2, 1, 3, 3),
                  "images", bounded=True),
    ArrayArgument("data.dequantize", lambda x: data.dequantize(x), (2, 3), "levels", 0, 0,
                  any_rank=True),
    ArrayArgument("metrics.gaussian_log_likelihood",
                  lambda x: metrics.gaussian_log_likelihood(x, np.zeros(2), np.eye(2)), (5, 2), "X"),
    ArrayArgument("metrics.frechet_distance (mu1)",
                  lambda x: metrics.frechet_distance(x, np.eye(3), np.zeros(3), np.eye(3)), (3,),
                  "mu1"),
    ArrayArgument("metrics.digit_features", lambda x: metrics.digit_features(x),
                  (2, 1, 8, 8), "X", try_valid=False),
    ArrayArgument("metrics.fid (features)", lambda x: metrics.fid(x, _points(6, 3)), (6, 3),
                  "real"),
    ArrayArgument("metrics.nearest_neighbour_distance",
                  lambda x: metrics.nearest_neighbour_distance(x, _points(6, 3)), (4, 3), "samples"),
    ArrayArgument("metrics.mode_coverage",
                  lambda x: metrics.mode_coverage(x, _points(3), 0.1), (6, 2), "samples"),
    ArrayArgument("viz.image_grid", lambda x: viz.image_grid(x), (3, 4, 4), "X"),
    ArrayArgument("viz.plot_points", lambda x: viz.plot_points(x), (6, 2), "X"),
    # ------------------------------------------------------------ GAN, VAE (tiny)
    ArrayArgument("gan.GAN.fit (images)", lambda x: _tiny_gan().fit(x), (8, 1, 4, 4), "X",
                  valid=lambda: _uniform((8, 1, 4, 4)), bounded=True),
    ArrayArgument("gan.GAN.fit (points)", lambda x: _tiny_gan().fit(x), (8, 2), "X",
                  valid=lambda: _uniform((8, 2))),
    ArrayArgument("gan.GAN.fit (y)", lambda y: _tiny_gan().fit(_uniform((4, 2)), y), (4,), "y",
                  valid=lambda: np.array([0, 1, 0, 1]), labels=True),
    ArrayArgument("gan.GAN.logits", lambda x: _fitted_models()["gan"].logits(x), (3, 1, 4, 4),
                  "X", bounded=True),
    ArrayArgument("gan.GAN.sample (labels)",
                  lambda y: _fitted_models()["cgan"].sample(4, labels=y), (4,), "labels",
                  valid=lambda: np.array([0, 1, 1, 0]), labels=True),
    ArrayArgument("vae.VAE.fit", lambda x: _tiny_vae().fit(x), (8, 1, 4, 4), "X",
                  valid=lambda: _uniform((8, 1, 4, 4)), bounded=True),
    ArrayArgument("vae.VAE.fit (Gaussian decoder, points)",
                  lambda x: _tiny_vae(likelihood="gaussian").fit(x), (8, 3), "X",
                  valid=lambda: _uniform((8, 3))),
    ArrayArgument("vae.VAE.fit (y)", lambda y: _tiny_vae().fit(_uniform((4, 2)), y), (4,), "y",
                  valid=lambda: np.array([0, 1, 0, 1]), labels=True),
    ArrayArgument("vae.VAE.elbo", lambda x: _fitted_models()["vae"].elbo(x), (3, 1, 4, 4), "X",
                  bounded=True),
    ArrayArgument("vae.VAE.log_likelihood",
                  lambda x: _fitted_models()["vae"].log_likelihood(x, k=4), (3, 1, 4, 4), "X",
                  bounded=True),
    ArrayArgument("vae.VAE.score_samples", lambda x: _fitted_models()["vae"].score_samples(x, k=4),
                  (3, 1, 4, 4), "X", bounded=True),
    ArrayArgument("vae.VAE.encode", lambda x: _fitted_models()["vae"].encode(x), (3, 1, 4, 4),
                  "X", bounded=True),
    ArrayArgument("vae.VAE.decode", lambda z: _fitted_models()["vae"].decode(z), (3, 2), "Z",
                  valid=lambda: np.zeros((3, 2))),
    ArrayArgument("vae.VAE.elbo (labels)",
                  lambda y: _fitted_models()["cvae"].elbo(_uniform((4, 1, 4, 4)), labels=y), (4,),
                  "labels", valid=lambda: np.array([0, 1, 1, 0]), labels=True),
]


def _uniform(shape, seed=0):
    return np.random.default_rng(seed).random(shape)


def _tiny_gan():
    from course_lib.gan import GAN

    return GAN(n_steps=1, batch_size=4, hidden=4, rejection=False, random_state=0, progress=False)


def _tiny_vae(**kw):
    from course_lib.vae import VAE

    return VAE(epochs=1, hidden=(4,), latent_dim=2, batch_size=4, random_state=0, progress=False,
               **kw)


_FITTED: dict = {}


def _fitted_models() -> dict:
    """Tiny GAN and VAE models, unconditional and conditional, fitted once per session."""
    if not _FITTED:
        X, y = _uniform((8, 1, 4, 4)), np.array([0, 1] * 4)
        _FITTED.update(gan=_tiny_gan().fit(X), cgan=_tiny_gan().fit(X, y),
                       vae=_tiny_vae().fit(X), cvae=_tiny_vae().fit(X, y))
    return _FITTED


def _base(arg: ArrayArgument) -> np.ndarray:
    """The valid array that the properties below spoil."""
    if arg.valid is not None:
        return np.asarray(arg.valid())
    return np.full(arg.shape, (arg.low + arg.high) / 2, dtype=np.float64)

_POISON = st.sampled_from([np.nan, np.inf, -np.inf])


@st.composite
def _poisoned(draw, arg: ArrayArgument):
    """A valid array with one entry replaced by NaN or ±inf, as an array, tensor or list."""
    arr = _base(arg).astype(np.float64)
    flat_index = draw(st.integers(0, arr.size - 1))
    arr.reshape(-1)[flat_index] = draw(_POISON)
    kind = draw(st.sampled_from(["numpy", "float32", "tensor", "list"]))
    if kind == "float32":
        return arr.astype(np.float32)
    if kind == "tensor":
        return torch.from_numpy(arr)
    return arr.tolist() if kind == "list" else arr


def _assert_refused(arg: ArrayArgument, x, errors=(ValueError, TypeError)):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arg.call(x)
    except errors as exc:
        assert arg.name in str(exc), f"{arg.function}: {str(exc)!r} does not name {arg.name!r}"
    else:
        pytest.fail(f"{arg.function} accepted {x!r}")
    finally:
        plt.close("all")


@pytest.mark.parametrize("arg", [a for a in ARRAY_ARGUMENTS if a.try_valid],
                         ids=lambda a: a.function)
def test_valid_array_is_accepted(arg: ArrayArgument):
    """The base of the properties below: the unpoisoned array is fine (for the arguments whose
    valid call is quick: ``try_valid=False`` marks a slow one, whose refusals come first)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arg.call(_base(arg))
    plt.close("all")


@pytest.mark.parametrize("arg", ARRAY_ARGUMENTS, ids=lambda a: a.function)
@settings(max_examples=15)
@given(data=st.data())
def test_non_finite_entry_is_refused(arg: ArrayArgument, data):
    _assert_refused(arg, data.draw(_poisoned(arg)))


@pytest.mark.parametrize("arg", ARRAY_ARGUMENTS, ids=lambda a: a.function)
@settings(max_examples=6)
@given(imag=st.floats(-2, 2, allow_nan=False), as_tensor=st.booleans())
def test_complex_array_is_refused(arg: ArrayArgument, imag, as_tensor):
    """Even with a zero imaginary part: casting would drop it without a word. (A complex
    label array may also be refused as an unknown label type, a ``ValueError``.)"""
    x = _base(arg) + 1j * imag
    _assert_refused(arg, torch.from_numpy(x) if as_tensor else x,
                    errors=(TypeError, ValueError) if arg.labels else TypeError)


@pytest.mark.parametrize("arg", ARRAY_ARGUMENTS, ids=lambda a: a.function)
@settings(max_examples=8)
@given(extra=st.sampled_from([-1, 1]), text=st.booleans())
def test_wrong_rank_or_strings_are_refused(arg: ArrayArgument, extra, text):
    if arg.labels:
        return  # strings are labels too; a label array's rank is each model's own rule
    if text:
        x = np.full(arg.shape, "0.5")
    elif extra < 0:
        x = np.full(arg.shape[1:] or (), 0.5) if len(arg.shape) > 1 else np.float64(0.5)
    else:
        x = np.full((1, *arg.shape), 0.5)
    if not text and arg.any_rank:
        return
    _assert_refused(arg, x)


@pytest.mark.parametrize("arg", [a for a in ARRAY_ARGUMENTS if a.refuses_empty and not a.any_rank],
                         ids=lambda a: a.function)
@settings(max_examples=4)
@given(axis=st.integers(0, 3), as_tensor=st.booleans())
def test_empty_array_is_refused(arg: ArrayArgument, axis, as_tensor):
    """No rows (or, for arrays of rank 2 or more, no entries along another axis)."""
    shape = list(arg.shape)
    shape[axis % len(shape)] = 0
    x = np.zeros(shape)
    _assert_refused(arg, torch.from_numpy(x) if as_tensor else x)


@pytest.mark.parametrize("arg", [a for a in ARRAY_ARGUMENTS if a.bounded],
                         ids=lambda a: a.function)
@settings(max_examples=8)
@given(data=st.data())
def test_out_of_range_entry_is_refused(arg: ArrayArgument, data):
    arr = _base(arg).astype(np.float64)
    flat_index = data.draw(st.integers(0, arr.size - 1))
    above = data.draw(st.booleans())
    margin = data.draw(st.floats(1e-3, 1e6))
    arr.reshape(-1)[flat_index] = arg.high + margin if above else arg.low - margin
    _assert_refused(arg, arr, errors=ValueError)


# ---------------------------------------------------------------- flags, seeds, devices

_NOT_BOOL = st.one_of(
    st.text(max_size=6), st.integers(), st.floats(), st.none(),
    st.lists(st.booleans(), max_size=2),
)


@given(_NOT_BOOL)
def test_check_bool_takes_only_booleans(value):
    with pytest.raises(TypeError, match="flag_name must be True or False"):
        _core.check_bool(value, "flag_name")


@given(st.booleans())
def test_check_bool_keeps_booleans(value):
    assert _core.check_bool(value, "f") is value
    assert _core.check_bool(np.bool_(value), "f") is value


@given(st.integers(0, _core.MAX_SEED))
def test_check_seed_accepts_every_valid_seed(seed):
    assert _core.check_seed(seed) == seed
    assert _core.check_seed(np.uint64(seed)) == seed
    g1, g2 = _core.make_generator(seed), _core.make_generator(seed)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=_core.MAX_SEED + 1)))
def test_check_seed_refuses_out_of_range(seed):
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*64 - 1\]"):
        _core.check_seed(seed)
    with pytest.raises(ValueError, match="random_state"):
        _core.make_generator(seed, name="random_state")


@given(st.one_of(st.floats(), st.text(max_size=4), st.booleans(), st.complex_numbers()))
def test_check_seed_refuses_non_integers(seed):
    with pytest.raises(TypeError, match="seed must be"):
        _core.check_seed(seed)


def test_check_seed_none():
    assert _core.check_seed(None) is None
    with pytest.raises(TypeError, match="seed"):
        _core.check_seed(None, allow_none=False)


_VALID_DEVICE_TEXT = {"cpu", "auto"}


@given(st.text(max_size=8))
def test_resolve_device_refuses_unknown_names(text):
    norm = text.strip().lower()
    if norm in _VALID_DEVICE_TEXT or norm.startswith("cuda") or norm.startswith("cpu"):
        return
    with pytest.raises(ValueError, match="device"):
        _core.resolve_device(text)


@given(st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=2)))
def test_resolve_device_refuses_non_strings(value):
    with pytest.raises(ValueError, match="my_device"):
        _core.resolve_device(value, name="my_device")


def test_resolve_device_accepts_the_documented_forms(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    for value in (None, "auto", "cpu", " CPU ", torch.device("cpu")):
        assert _core.resolve_device(value) == torch.device("cpu")


def test_resolve_device_cuda_index_past_the_last_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match="device='cuda:3'"):
        _core.resolve_device("cuda:3")


# ---------------------------------------------------------------- grading: statistics


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_check_probability_never_passes_nan_or_out_of_range(value):
    if math.isfinite(value) and 0 <= value <= 1:
        assert grading_base.check_probability(value, "p") == value
    else:
        with pytest.raises(GradingError, match="p is"):
            grading_base.check_probability(value, "p")


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=6), st.data())
def test_check_close_never_passes_a_non_finite_answer(values, data):
    expected = np.array(values)
    answer = expected.copy()
    answer[data.draw(st.integers(0, len(values) - 1))] = data.draw(_POISON)
    with pytest.raises(GradingError, match="answer contains"):
        grading_base.check_close(answer, expected, "answer")


# ===================================================================== 3. faults


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=5))
def test_learner_cannot_mutate_the_graders_inputs(values):
    x = np.array(values)
    t = torch.tensor(values)
    nested = {"x": x.copy(), "l": [t.clone()]}
    before = (x.copy(), t.clone(), nested["x"].copy(), nested["l"][0].clone())

    def vandal(a, b, c):
        a[...] = 99
        b.zero_()
        c["x"][...] = -1
        c["l"][0].fill_(7)
        c["new"] = 1
        return a

    out = grading_base.call_learner(vandal, x, t, nested)
    assert np.all(out == 99)  # the learner saw a real, writable array
    np.testing.assert_array_equal(x, before[0])
    assert torch.equal(t, before[1])
    np.testing.assert_array_equal(nested["x"], before[2])
    assert torch.equal(nested["l"][0], before[3])
    assert set(nested) == {"x", "l"}


def test_call_learner_copies_non_leaf_tensors():
    y = torch.ones(3, requires_grad=True) * 2  # deepcopy refuses non-leaf tensors
    out = grading_base.call_learner(lambda a: a.add_(1), y)
    assert torch.equal(out, torch.full((3,), 3.0)) and torch.equal(y, torch.full((3,), 2.0))


def _swallowing_loop():
    while True:
        try:
            time.sleep(0.01)
        except:  # noqa: E722 - what a learner may write
            pass


def _catching_loop():
    while True:
        try:
            sum(range(1000))
        except Exception:
            pass


@pytest.mark.parametrize("fn", [_endless, _swallowing_loop, _catching_loop])
def test_time_limit_stops_endless_learners_on_the_main_thread(fn):
    trace = sys.gettrace()
    start = time.monotonic()
    with pytest.raises(GradingError, match="did not return within 0.2 seconds"):
        grading_base.call_learner(fn, what="your function", time_limit=0.2)
    assert time.monotonic() - start < 5
    assert sys.gettrace() is trace  # the trace function used to stop it is removed


def test_time_limit_off_the_main_thread():
    """Where SIGALRM cannot be used (another thread), the call runs in a helper thread."""
    import threading

    result = {}

    def grader():
        try:
            grading_base.call_learner(_endless, what="f", time_limit=0.2)
        except GradingError as exc:
            result["error"] = str(exc)

    t = threading.Thread(target=grader)
    t.start()
    t.join(10)
    assert "did not return within 0.2 seconds" in result["error"]


def test_time_limit_keeps_results_and_errors():
    assert grading_base.call_learner(lambda a: a + 1, 1, time_limit=5) == 2
    with pytest.raises(KeyError):
        grading_base.call_learner(lambda: {}["missing"], time_limit=5)
    with pytest.raises(ValueError, match="time_limit"):
        grading_base.call_learner(_learner_identity, 1, time_limit=-1)


def test_cache_dir_prefers_a_writable_env_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "c"))
    assert _core.cache_dir() == tmp_path / "c"


def _unwritable(tmp_path, name):
    """A path nobody can create, even root: a folder below a regular file."""
    blocker = tmp_path / f"{name}-is-a-file"
    blocker.write_text("")
    return blocker / "sub"


def test_cache_dir_falls_back_to_a_temporary_folder_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(_unwritable(tmp_path, "env")))
    monkeypatch.setattr(_core, "_REPO_CACHE", _unwritable(tmp_path, "repo"))
    monkeypatch.setenv("HOME", str(_unwritable(tmp_path, "home")))
    monkeypatch.setattr(_core, "_TEMP_CACHE", [])
    with pytest.warns(UserWarning) as record:
        path = _core.cache_dir()
    text = " ".join(str(w.message) for w in record)
    assert "COURSE_CACHE_DIR" in text and "temporary folder" in text
    assert path.is_dir() and _core._usable_dir(path)
    monkeypatch.delenv("COURSE_CACHE_DIR")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not at every call
        assert _core.cache_dir() == path  # one temporary folder per process


def test_cache_dir_uses_home_when_the_checkout_is_read_only(tmp_path, monkeypatch):
    monkeypatch.delenv("COURSE_CACHE_DIR", raising=False)
    monkeypatch.setattr(_core, "_REPO_CACHE", _unwritable(tmp_path, "repo"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _core.cache_dir() == tmp_path / "home" / ".cache" / "course_lib"
