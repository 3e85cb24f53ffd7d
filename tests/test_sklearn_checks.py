"""scikit-learn's own estimator checks on the course's estimators (issue 12).

Every check that scikit-learn yields for an estimator runs here as one test. A check that cannot
apply to what the estimator takes is listed in ``EXPECTED_FAILURES`` with a one-line reason and
a pattern: the test then asserts that the check *fails*, and fails for that reason (the
estimator's own refusal, matched on its message), so the list cannot go stale or hide another
failure. Everything else must pass.

Why the Markov random fields skip most data checks: scikit-learn feeds real-valued tabular
data, and they take ±1 spin lattices (``IsingModel``), one ``{0, 1}`` image
(``BinaryDenoiser``) or ``{0, 1}`` images ``(N, C, H, W)`` (``PairwiseMRF``); they refuse such
data with a clear error, which is what their rows check. The API checks, the checks of
refused input (complex, sparse, empty, object dtype, 1-D) and the checks of the constructor
apply and pass; :func:`test_binary_model_fit_on_its_own_data` asks the skipped data checks'
questions (fit returns self, leaves the hyperparameters alone, is idempotent, pickles,
takes read-only, F-ordered and other-dtype arrays) on valid data. ``GaussianMixture``'s checks
are in tests/test_gmm.py.

The neural models run with a handful of steps so that the whole file takes seconds.
"""

from __future__ import annotations

import copy
import pickle
import re
import warnings
from functools import partial

import numpy as np
import pytest
from _shared import CPU
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import estimator_checks_generator
from sklearn.utils.validation import check_is_fitted

from course_lib import mrf
from course_lib.gan import GAN
from course_lib.vae import VAE

# The whole file stays on the CPU, whatever COURSE_DEVICE says: scikit-learn's checks compare
# refits, pickles and batches bit for bit (or to 1e-7), which the course promises on the CPU
# only; and the estimators below are built at collection time, before any fixture.
pytestmark = pytest.mark.cpu_only("scikit-learn's estimator checks: bit-for-bit comparisons, "
                                  "promised on the CPU only")


@pytest.fixture(autouse=True)
def _on_the_cpu(monkeypatch):
    """The estimators left at ``device=None`` (IsingModel, BinaryDenoiser) follow
    COURSE_DEVICE: the CPU here too."""
    monkeypatch.setenv("COURSE_DEVICE", CPU)


class _PairwiseMRFUnder2DChecks(mrf.PairwiseMRF):
    """PairwiseMRF with ``two_d_array`` switched on: its tags truly say it takes no 2-D array,
    and scikit-learn then runs no check at all. With the tag on, the checks run and the 2-D
    data are refused (listed below)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        return tags


ESTIMATORS = {
    "IsingModel": mrf.IsingModel(),
    "BinaryDenoiser": mrf.BinaryDenoiser(),
    "PairwiseMRF": _PairwiseMRFUnder2DChecks(device=CPU),
    "GAN": GAN(n_steps=5, rejection_steps=5, batch_size=16, hidden=8, random_state=0,
               device=CPU, progress=False),
    # the Gaussian decoder takes real-valued data, as the checks generate them
    "VAE": VAE(likelihood="gaussian", epochs=1, hidden=(8,), latent_dim=2, random_state=0,
               device=CPU, progress=False),
}

# checks that fit on the generated real-valued data: they cannot apply to binary models
_DATA_CHECKS = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_methods_sample_order_invariance",
    "check_methods_subset_invariance", "check_dict_unchanged", "check_fit_idempotent",
    "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
    "check_array_api_input",  # runs with SCIPY_ARRAY_API=1, which `make test` sets
]


def _binary_model(reason: str, refusal: str, too_small: str) -> dict[str, tuple[str, str]]:
    rows = {name: (reason, refusal) for name in _DATA_CHECKS}
    # (1, 10) and (10, 1) arrays: one lattice / image, smaller than the 2×2 minimum
    rows["check_fit2d_1sample"] = ("a 1×10 array is smaller than the 2×2 minimum", too_small)
    rows["check_fit2d_1feature"] = ("a 10×1 array is smaller than the 2×2 minimum", too_small)
    return rows


#: estimator -> {check: (reason, regex its failure must match)}
EXPECTED_FAILURES: dict[str, dict[str, tuple[str, str]]] = {
    "IsingModel": _binary_model("the check's data are real numbers, not ±1 spins",
                                r"samples must contain only the values \(-1, 1\)",
                                r"samples: the lattice must be at least 2×2"),
    "BinaryDenoiser": _binary_model("the check's data are real numbers, not a {0, 1} image",
                                    r"noisy must contain only the values \(0, 1\)",
                                    r"noisy must be at least 2×2"),
    "PairwiseMRF": {
        **{name: ("the check's data are 2-D; the model takes images (N, C, H, W)",
                  r"X must have 4 dimensions") for name in _DATA_CHECKS},
        "check_fit2d_1sample": ("2-D data; images (N, C, H, W) expected",
                                r"X must have 4 dimensions"),
        "check_fit2d_1feature": ("2-D data; images (N, C, H, W) expected",
                                 r"X must have 4 dimensions"),
    },
    "GAN": {},
    "VAE": {
        name: ("fit(X, y) makes the VAE conditional: score_samples then estimates "
               "log p(x) = log Σ_y p(y) p(x|y) by IWAE, a Monte Carlo estimate whose draws "
               "follow the order of the rows, so reordered or fewer rows get other draws",
               r"score_samples of VAE is not invariant")
        for name in ("check_methods_sample_order_invariance", "check_methods_subset_invariance")
    },
}


def _check_name(check) -> str:
    while isinstance(check, partial):
        check = check.func
    return check.__name__


def _all_checks():
    for key, estimator in ESTIMATORS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checks = list(estimator_checks_generator(estimator, legacy=True, mark=None))
        for est, check in checks:
            yield pytest.param(key, est, check, id=f"{key}-{_check_name(check)}")


@pytest.mark.parametrize("key, estimator, check", list(_all_checks()))
def test_sklearn_check(key, estimator, check):
    expected = EXPECTED_FAILURES[key].get(_check_name(check))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if expected is None:
            check(estimator)
            return
        reason, pattern = expected
        with pytest.raises(Exception) as info:  # noqa: PT011 - the message is matched below
            check(estimator)
    # the check fails because the estimator refuses the check's data, as the reason says
    chain, exc = [], info.value
    while exc is not None:  # scikit-learn wraps some refusals in an AssertionError
        chain.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    assert any(re.search(pattern, text) for text in chain), (
        f"{key}.{_check_name(check)} was expected to fail ({reason}) with /{pattern}/, "
        f"but failed with: {chain}"
    )


def test_expected_failures_name_real_checks():
    """Every listed check exists for its estimator (a renamed check would hide nothing)."""
    for key, estimator in ESTIMATORS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names = {_check_name(c) for _, c in estimator_checks_generator(estimator, mark=None)}
        assert set(EXPECTED_FAILURES[key]) <= names, set(EXPECTED_FAILURES[key]) - names
        assert len(names) >= 40, (key, len(names))


def test_tags_declare_the_inputs():
    assert mrf.IsingModel().__sklearn_tags__().input_tags.three_d_array
    assert not mrf.PairwiseMRF().__sklearn_tags__().input_tags.two_d_array
    for est in (*ESTIMATORS.values(), mrf.PairwiseMRF()):
        tags = est.__sklearn_tags__()
        assert not tags.input_tags.sparse and not tags.input_tags.allow_nan
        assert not tags.target_tags.required
    assert ESTIMATORS["VAE"].__sklearn_tags__().estimator_type == "density_estimator"


# ----------------------------------------------------------------------------------------------
# The data checks above cannot feed the binary models their own kind of data; these tests ask
# the same questions (what scikit-learn's check_estimators_fit_returns_self,
# check_dont_overwrite_parameters, check_estimators_overwrite_params, check_fit_idempotent,
# check_estimators_pickle, check_readonly_memmap_input, check_estimators_dtypes,
# check_f_contiguous_array_estimator and check_fit_check_is_fitted ask) on valid input.


def _ising_data():
    return mrf.IsingModel(beta=0.3).sample(6, (8, 8), seed=0, device=CPU).numpy()


def _noisy_image():
    rng = np.random.default_rng(0)
    clean = np.zeros((16, 16), dtype=np.int64)
    clean[4:12, 4:12] = 1
    return np.where(rng.random(clean.shape) < 0.1, 1 - clean, clean)


def _binary_images():
    return (np.random.default_rng(0).random((20, 1, 4, 4)) < 0.4).astype(np.float64)


#: (model, valid data, fit keywords, its fitted state as a dict of arrays, one output)
_BINARY_MODELS = {
    "IsingModel": (lambda: mrf.IsingModel(), _ising_data, {},
                   lambda m: {"beta_": m.beta_, "h_": m.h_},
                   lambda m: m.pseudo_log_likelihood(_ising_data())),
    "BinaryDenoiser": (lambda: mrf.BinaryDenoiser(), _noisy_image, {"n_iter": 3, "n_sweeps": 5},
                       lambda m: {"noise_rate_": m.noise_rate_},
                       lambda m: m.denoise(_noisy_image(), "icm")),
    "PairwiseMRF": (lambda: mrf.PairwiseMRF(device=CPU), _binary_images, {"n_epochs": 20},
                    lambda m: {"W_": m.W_.numpy(), "b_": m.b_.numpy()},
                    lambda m: m.pseudo_log_likelihood(_binary_images(), reduction="none")),
}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]), err_msg=k)


@pytest.mark.parametrize("key", list(_BINARY_MODELS))
def test_binary_model_fit_on_its_own_data(key, tmp_path):
    make, data, kw, state, output = _BINARY_MODELS[key]
    model = make()
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    params = copy.deepcopy(model.get_params())
    public = {k for k in vars(model) if not k.startswith("_")}
    assert model.fit(data(), **kw) is model  # fit returns self
    check_is_fitted(model)
    assert model.get_params() == params  # hyperparameters untouched
    added = {k for k in vars(model) if not k.startswith("_")} - public
    assert all(k.endswith("_") for k in added), added  # only fitted attributes added
    first, out = state(model), output(model)

    _same(state(make().fit(data(), **kw)), first)  # a fresh fit: the same
    _same(state(model.fit(data(), **kw)), first)  # a refit (idempotent, starts clean)
    clone_ = pickle.loads(pickle.dumps(model))  # pickled: same state, same answers
    _same(state(clone_), first)
    np.testing.assert_array_equal(np.asarray(output(clone_)), np.asarray(out))

    x = data()
    path = tmp_path / "x.npy"
    np.save(path, x)
    readonly = np.load(path, mmap_mode="r")  # a read-only memory map, as in scikit-learn
    _same(state(make().fit(readonly, **kw)), first)
    _same(state(make().fit(np.asfortranarray(x), **kw)), first)  # F-contiguous
    for dtype in (np.float32, np.int8, np.int64):  # other dtypes holding the same values
        _same(state(make().fit(x.astype(dtype), **kw)), first)
