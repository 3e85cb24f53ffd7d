"""course_lib._core.check_params: hyperparameters checked from a declared table, in order,
with the messages of the check_* functions."""

import numpy as np
import pytest

from course_lib._core import Flag, Float, Int, OneOf, Seed, check_params


class _Estimator:
    table = {
        "k": Int(minimum=1),
        "tol": Float(minimum=0.0),
        "rate": Float(minimum=0.0, maximum=1.0, strict_max=True),
        "kind": OneOf(("a", "b")),
        "flag": Flag(),
        "random_state": Seed(random_state=True),
    }

    def __init__(self, **kw):
        self.__dict__.update(dict(k=2, tol=1e-3, rate=0.5, kind="a", flag=False,
                                  random_state=None), **kw)


def test_good_values_come_back_converted():
    checked = check_params(_Estimator(k=np.int64(3), tol=1), _Estimator.table)
    assert checked == dict(k=3, tol=1.0, rate=0.5, kind="a", flag=False, random_state=None)
    assert type(checked["k"]) is int


@pytest.mark.parametrize("kw, error, message", [
    (dict(k=0), ValueError, "k must be >= 1, got 0"),
    (dict(k=True), TypeError, "k must be an integer"),
    (dict(tol=float("inf")), ValueError, "tol must be finite"),
    (dict(rate=1.0), ValueError, "rate must be < 1.0"),
    (dict(kind="c"), ValueError, "kind must be one of ['a', 'b']"),
    (dict(flag=0), TypeError, "flag must be True or False"),
    (dict(random_state=-1), ValueError, "random_state must be in [0, 2**64 - 1]"),
])
def test_each_rule_names_the_argument(kw, error, message):
    with pytest.raises(error) as info:
        check_params(_Estimator(**kw), _Estimator.table)
    assert message in str(info.value)


def test_first_bad_value_in_table_order_is_reported():
    with pytest.raises(ValueError, match="^k "):
        check_params(_Estimator(k=0, kind="c"), _Estimator.table)


def test_a_random_state_object_is_accepted_only_when_declared():
    rs = np.random.RandomState(0)
    assert check_params(_Estimator(random_state=rs), _Estimator.table)["random_state"] is rs
    with pytest.raises(TypeError):
        Seed()(rs, "seed")
