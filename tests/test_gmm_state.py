"""A GaussianMixture.fit that raises leaves the estimator exactly as it was (DESIGN.md's model
protocol): the fit keeps its state in local variables and stores it only once it succeeded."""

import pickle
import warnings

import numpy as np
import pytest

from course_lib import gmm
from course_lib.gmm import GaussianMixture


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.standard_normal((60, 2)) + 5 * k for k in range(3)])


def _state(model) -> bytes:
    return pickle.dumps({k: v for k, v in sorted(vars(model).items())})


def _fitted(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(3, random_state=0, device="cpu", **kw).fit(_data())


def test_bad_data_leave_a_fitted_model_as_it_was():
    model = _fitted()
    before = _state(model)
    X = _data(1)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        model.fit(X)
    assert _state(model) == before


def test_a_refused_warm_start_leaves_the_model_as_it_was():
    model = _fitted(warm_start=True)
    before = _state(model)
    with pytest.raises(ValueError, match="features"):
        model.fit(np.hstack([_data(), _data()]))
    assert _state(model) == before


def test_a_failure_inside_em_leaves_the_model_as_it_was(monkeypatch):
    model = _fitted(max_iter=3)
    before = _state(model)
    calls = []

    def failing_m_step(*args):
        calls.append(1)
        if len(calls) == 2:  # the second EM iteration: parameters already changed locally
            raise FloatingPointError("simulated numerical failure")
        return real(*args)

    real = gmm._m_step
    monkeypatch.setattr(gmm, "_m_step", failing_m_step)
    with pytest.raises(FloatingPointError):
        model.fit(_data(2))
    assert _state(model) == before


def test_a_first_fit_that_raises_leaves_no_fitted_attributes():
    model = GaussianMixture(3, random_state=0, device="cpu")
    before = _state(model)
    with pytest.raises(ValueError, match="n_components"):
        model.fit(_data()[:2])
    assert _state(model) == before
    assert not any(k.endswith("_") for k in vars(model))
