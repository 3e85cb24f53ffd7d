"""The table of bad calls and what each must get (issue 12), and the runner of one case.

Shared by ``tests/test_robustness.py``, which runs every case as a test, and
``tools/bad_inputs_table.py``, which runs them to write the page ``book/bad_inputs.md``: the
one table serves both, and neither imports the other's file. This module imports only
``course_lib`` and the scientific stack (no pytest), so the tool runs outside pytest.

Each row names the function, what is wrong with the input, the call, the exception it must
raise and a text its message must contain (usually the argument's name). A row with
``gap=...`` is a known gap (the owner of the module is told what to change): it is an
expected failure in the tests and is left out of the page. Modules are imported inside the
calls, so a row for a module not yet written fails alone.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from course_lib import _core, data, metrics, viz  # noqa: E402
from course_lib import grading as grading_base  # noqa: E402
from course_lib.grading import GradingError  # noqa: E402


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
    Case("gan", "GAN.fit", "`checkpoint=3` (not a path)",
         lambda: _tiny_gan().fit(_points(8), checkpoint=3), TypeError, "checkpoint"),
    Case("gan", "GAN.fit", "`checkpoint_every=0`",
         lambda: _tiny_gan().fit(_points(8), checkpoint_every=0), ValueError,
         "checkpoint_every"),
    Case("gan", "GAN.fit", "a `checkpoint` file left by a run with other hyperparameters",
         lambda: _in_temp_dir(_other_run_checkpoint), ValueError,
         "checkpoint: run.pt holds the state of another run"),
    Case("gan", "GAN.fit", "a damaged `checkpoint` file",
         lambda: _in_temp_dir(_damaged_checkpoint), ValueError, "checkpoint: run.pt is not a readable checkpoint"),
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
    Case("vae", "VAE.fit", '`architecture="conv"` with flat rows (N, 64)',
         lambda: _vae().VAE(architecture="conv", epochs=1).fit(_digits(16).reshape(16, 64)),
         ValueError, "architecture='conv' needs images"),
    Case("vae", "VAE", 'a prior per class (`conditional_prior`) with `prior="mixture"`',
         lambda: _tiny_vae(prior="mixture", conditional_prior=True).fit(_digits(4), [0, 1, 0, 1]),
         ValueError, "conditional_prior=True needs prior='vamp'"),
    Case("vae", "VAE.fit", "a prior per class (`conditional_prior`), 10 classes, 5 components",
         lambda: _tiny_vae(n_components=5, conditional_prior=True).fit(_digits(20),
                                                                        np.arange(20) % 10),
         ValueError, "n_components >= the number of classes"),
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
    # ------------------------------------------------------------------ the chapters' equations
    Case("gan", "optimal_discriminator", "`p=None`",
         lambda: _gan().optimal_discriminator(None, np.ones(3)), TypeError, "p"),
    Case("gan", "optimal_discriminator", "a negative density",
         lambda: _gan().optimal_discriminator(np.array([0.5, -0.1]), np.ones(2)), ValueError, "p"),
    Case("gan", "jensen_shannon", "a NaN density",
         lambda: _gan().jensen_shannon(np.ones(3), np.array([1.0, np.nan, 1.0]), 0.1),
         ValueError, "q"),
    Case("gan", "jensen_shannon", "densities whose divergence overflows float64",
         lambda: _gan().jensen_shannon(np.array([1e300, 0.0]), np.array([0.0, 1e300]), 1e10),
         ValueError, "overflows"),
    Case("gan", "density_ratio_logit", "a zero density (its log is taken)",
         lambda: _gan().density_ratio_logit(np.array([0.0, 1.0]), np.ones(2)), ValueError, "p"),
    Case("gan", "acceptance_probability", "logits on the `meta` device",
         lambda: _gan().acceptance_probability(torch.zeros(3, device="meta"), 0.0), ValueError,
         "logits"),
    Case("gan", "acceptance_probability", "`log_m=None`",
         lambda: _gan().acceptance_probability(torch.zeros(3), None), TypeError, "log_m"),
    Case("vae", "gaussian_kl", "a complex mean",
         lambda: _vae().gaussian_kl(np.array([1 + 1j]), np.zeros(1)), TypeError, "mean"),
    Case("vae", "reparameterize", "`eps` of dates",
         lambda: _vae().reparameterize(np.zeros(2), np.zeros(2), _dates()[0]), TypeError, "eps"),
    Case("vae", "iwae_log_likelihood", "a NaN log-weight",
         lambda: _vae().iwae_log_likelihood(torch.tensor([[0.0, float("nan")]])), ValueError,
         "log_weights"),
    Case("vae", "iwae_curve", "empty log-weights",
         lambda: _vae().iwae_curve(np.zeros((0, 4)), [1]), ValueError, "log_weights"),
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


def _other_run_checkpoint():
    """The checkpoint of a run of the tiny GAN (as a stopped run leaves it), then a GAN with
    another learning rate pointed at the file."""
    from course_lib.training import RunCheckpoint

    RunCheckpoint("run.pt", _tiny_gan(), _points(8)).save(1, {}, {})
    return _tiny_gan().set_params(lr=1e-4).fit(_points(8), checkpoint="run.pt")


def _damaged_checkpoint():
    Path("run.pt").write_bytes(b"half a file")
    return _tiny_gan().fit(_points(8), checkpoint="run.pt")


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
