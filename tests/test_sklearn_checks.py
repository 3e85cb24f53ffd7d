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
apply and pass. ``GaussianMixture``'s checks are in tests/test_gmm.py.

The neural models run with a handful of steps so that the whole file takes seconds.
"""

from __future__ import annotations

import re
import warnings
from functools import partial

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from course_lib import mrf
from course_lib.gan import GAN
from course_lib.vae import VAE

CPU = "cpu"


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
        name: ("fit(X, y) makes the VAE conditional: score_samples then needs the labels (and "
               "is a Monte Carlo estimate drawn per batch)",
               r"labels is required: the model is conditional")
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
