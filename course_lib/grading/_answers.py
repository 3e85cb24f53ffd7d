"""The learner's answers as arrays, and the comparisons of the checks.

:func:`check_shape`, :func:`check_close`, :func:`check_finite`, :func:`check_scalar`,
:func:`as_number` and :func:`check_probability` accept only real numbers (plain NumPy arrays,
torch tensors, Python and NumPy numbers, lists of them): complex values, NaN/inf, strings,
object arrays and objects with ``__array__`` are refused with a message naming what is
wrong. A statistic goes through one of them before it is compared with a threshold, so that
a NaN (for which every comparison is False) can never pass.

Also here: the inputs and the rule that several chapters' checks share
(:func:`extreme_covariances`, :func:`check_log_determinant_rule`).
"""

from __future__ import annotations

import numpy as np
import torch

from ._messages import GradingError


def _describe(value) -> str:
    try:
        text = repr(value)
    except Exception:  # a learner's object whose repr fails
        text = "?" * 100
    return f"{type(value).__name__} {text}" if len(text) < 60 else type(value).__name__


_NUMPY_SCALARS = (np.integer, np.floating, np.bool_)


def _leaf_to_numpy(value, what: str) -> np.ndarray:
    """One answer that is not a list: an exact ndarray, tensor or number, as an ndarray.

    Only the plain types are accepted (``type(x) is np.ndarray``, ``torch.Tensor`` or
    ``torch.nn.Parameter``, Python and NumPy numbers): a subclass or an object with
    ``__array__`` runs the learner's code when it is converted, and could fetch its values
    from the grader at that moment."""
    t = type(value)
    if t is torch.Tensor or t is torch.nn.Parameter:
        if value.is_complex():
            raise GradingError(f"{what} is complex (dtype {value.dtype}): expected real "
                               "numbers. A square root or logarithm of a negative number?")
        if value.device.type == "meta":
            raise GradingError(f"{what} is a tensor on the 'meta' device, which holds no "
                               "values: compute it on the CPU (or the GPU)")
        if value.layout != torch.strided:
            raise GradingError(f"{what} is a {value.layout} tensor: return a dense one "
                               "(.to_dense())")
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.dtype != torch.float64:
            value = value.to(torch.float64)
        return value.numpy()
    if t is np.ndarray:
        if value.dtype.kind == "c":
            raise GradingError(f"{what} is complex (dtype {value.dtype}): expected real "
                               "numbers. A square root or logarithm of a negative number?")
        if value.dtype.kind not in "biuf":
            raise GradingError(f"{what}: expected numbers, got an array of dtype "
                               f"{value.dtype}")
        return value
    if t is bool:
        raise GradingError(f"{what}: expected a number, got the bool {value!r}")
    if t in (int, float) or (isinstance(value, _NUMPY_SCALARS)
                             and t.__module__ == "numpy"):
        return np.asarray(value)
    if t is complex or isinstance(value, np.complexfloating):
        raise GradingError(f"{what} is complex ({value!r}): expected real numbers. A square "
                           "root or logarithm of a negative number?")
    if isinstance(value, (str, bytes)):
        raise GradingError(f"{what}: expected numbers, got the string {value!r}")
    raise GradingError(f"{what}: expected a NumPy array, a torch tensor or a number, got "
                       f"{_describe(value)}")


def _to_numpy(value, what: str) -> np.ndarray:
    """The learner's answer as a float64 array.

    Accepted: a NumPy array of real numbers, a torch tensor (on any device), a Python or
    NumPy number, and lists or tuples of these. Refused with a :class:`GradingError`: None,
    complex values, strings, object arrays, and any other object (a subclass, an object with
    ``__array__``), whose conversion would run code of the learner's."""
    if value is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    if type(value) in (list, tuple):
        def convert(v, depth):
            if depth > 32:
                raise GradingError(f"{what}: lists nested too deeply")
            if type(v) in (list, tuple):
                return [convert(x, depth + 1) for x in v]
            return _leaf_to_numpy(v, what)
        try:
            arr = np.array(convert(value, 0), dtype=np.float64)
        except (TypeError, ValueError) as exc:  # e.g. a ragged list
            raise GradingError(f"{what}: expected an array of numbers, got "
                               f"{_describe(value)} ({exc})") from exc
        return arr
    return np.asarray(_leaf_to_numpy(value, what), dtype=np.float64)


def as_number(value, what: str) -> float:
    """One real number (a Python or NumPy number, a one-element array or tensor) as a float;
    NaN and infinity are kept (the caller decides). Strings, bools and other objects are
    refused with a :class:`GradingError`."""
    arr = _to_numpy(value, what)
    if arr.size != 1:
        raise GradingError(f"{what} should be one number, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


def check_tuple(result, names: tuple[str, ...], what: str) -> tuple:
    """The learner's ``result`` (a tuple or list of ``len(names)`` answers) as a tuple; a
    :class:`GradingError` naming the answers expected otherwise."""
    if isinstance(result, (tuple, list)) and len(result) == len(names):
        return tuple(result)
    got = (f"{type(result).__name__} of length {len(result)}"
           if isinstance(result, (tuple, list)) else _describe(result))
    raise GradingError(f"{what} should return {'a pair' if len(names) == 2 else 'a triple'} "
                       f"({', '.join(names)}), got {got}")


def _first_bad(arr: np.ndarray) -> str:
    bad = ~np.isfinite(arr)
    n_bad = int(bad.sum())
    if arr.ndim == 0:
        return f"is {arr.item()}"
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    kinds = sorted({"NaN" if np.isnan(v) else "inf" for v in arr[bad].ravel()[:1000]})
    return (f"contains {' and '.join(kinds)} ({n_bad} of {arr.size} values; the first at "
            f"index {idx} is {arr[idx]})")


def check_finite(value, what: str, *, hint: str = "") -> np.ndarray:
    """The answer as a float64 array; raise unless every value is a finite real number."""
    arr = _to_numpy(value, what)
    if not np.all(np.isfinite(arr)):
        hint = hint or ("look for a division by zero, a log of 0 or an overflow "
                        "(exp of a large number)")
        raise GradingError(f"{what} {_first_bad(arr)}: expected finite numbers. Hint: {hint}")
    return arr


def check_shape(value, shape, what: str, *, finite: bool = False, hint: str = "") -> np.ndarray:
    """Convert to a real float array and raise unless its shape is ``shape``.

    Complex values, strings and objects are always refused. With ``finite=True`` NaN/inf are
    refused too (``hint``: the hint of that message); the default leaves them to the caller, which can then give a hint specific to
    the exercise (``check_close``, ``check_scalar`` and ``check_probability`` always refuse
    them)."""
    arr = _to_numpy(value, what)  # None included: "did you forget a `return`?"
    if arr.shape != tuple(shape):
        raise GradingError(f"{what} has shape {arr.shape}, expected {tuple(shape)}")
    if finite:
        check_finite(arr, what, hint=hint)
    return arr


def check_close(value, expected, what: str, *, rtol: float = 1e-5, atol: float = 1e-8, hint=""):
    """Raise unless ``value`` matches ``expected`` in shape and within tolerance.

    ``value`` must be real and finite; ``expected`` (the reference) may hold ``±inf`` where the
    answer must hold the same infinity (e.g. a log-probability of exactly 0).
    """
    expected = _to_numpy(expected, "expected")
    arr = check_shape(value, expected.shape, what, finite=False)
    inf_expected = np.isinf(expected)
    if np.isnan(expected).any():
        raise ValueError("check_close: the reference contains NaN (a bug in the grader)")
    if np.any(np.isnan(arr) | (np.isinf(arr) & ~inf_expected)):
        check_finite(np.where(inf_expected, 0.0, arr), what, hint=hint)
    if inf_expected.any() and not np.array_equal(arr[inf_expected], expected[inf_expected]):
        idx = tuple(int(i) for i in np.argwhere(inf_expected & (arr != expected))[0])
        raise GradingError(f"{what} is wrong.\nAt index {idx}: got {arr[idx]:.6g}, expected "
                           f"{expected[idx]}" + (f". Hint: {hint}" if hint else ""))
    a = np.where(inf_expected, 0.0, arr)
    e = np.where(inf_expected, 0.0, expected)
    if not np.allclose(a, e, rtol=rtol, atol=atol):
        err = np.abs(a - e)
        where = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape)) if err.ndim else ()
        msg = (
            f"{what} is wrong.\nThe largest difference is {err.max():.3g}, at index {where}: "
            f"got {arr[where]:.6g}, expected {expected[where]:.6g}"
        )
        raise GradingError(msg + (f". Hint: {hint}" if hint else ""))
    return arr


def check_scalar(value, what: str, *, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    """The answer as one finite real number (a Python/NumPy number, a 0-d or one-element
    array or tensor), within ``[minimum, maximum]`` when given; a :class:`GradingError`
    otherwise. Use it before comparing a learner's statistic with a threshold."""
    x = float(check_finite(as_number(value, what), what))
    if minimum is not None and x < minimum:
        raise GradingError(f"{what} is {x:.6g}, below its smallest possible value {minimum}")
    if maximum is not None and x > maximum:
        raise GradingError(f"{what} is {x:.6g}, above its largest possible value {maximum}")
    return x


def check_probability(value, what: str) -> float:
    """One finite number in [0, 1] (a probability, a p-value): NaN never passes."""
    return check_scalar(value, what, minimum=0.0, maximum=1.0)


# ===================================================================== shared inputs


def extreme_covariances(rng):
    """(X, mean, cov, description): 64-D Gaussians whose determinant is outside float64's
    range, small variances (det about 1e-352, 0.0 in float64) and large ones (about 1e+353,
    inf), so that ``log(det(cov))`` is infinite while ``slogdet`` or a Cholesky factor is
    exact. The same rule ("no explicit determinant") as exercise 2.1's check."""
    out = []
    for variances, description in ((np.geomspace(1e-8, 1e-3, 64), "small variances"),
                                   (np.geomspace(1e3, 1e8, 64), "large variances")):
        q, _ = np.linalg.qr(rng.standard_normal((64, 64)))
        cov = (q * variances) @ q.T
        cov = (cov + cov.T) / 2
        mean = rng.uniform(-1, 1, size=64)
        X = rng.multivariate_normal(mean, cov, size=5)
        out.append((X, mean, cov, description))
    return out


def check_log_determinant_rule(got, expected, cov, what: str, description: str) -> None:
    """The rule of every exercise that evaluates a Gaussian density: never an explicit
    determinant. ``got`` is the answer on a covariance whose determinant under- or
    overflows; a non-finite answer gets the hint, a finite one is compared."""
    got = check_shape(got, expected.shape, what)
    if not np.all(np.isfinite(got)):
        exponent = np.linalg.slogdet(cov)[1] / np.log(10)
        raise GradingError(
            f"{what} is not finite ({description}). Hint: det Σ is about 10^{exponent:.0f}, "
            "outside the range of float64, so det() gives 0 or inf and its log is infinite. "
            "Never compute an explicit determinant: take log det Σ = 2 Σ log diag(L) from "
            "the Cholesky factor L (or np.linalg.slogdet)")
    check_close(got, expected, f"{what} ({description})", rtol=1e-6, atol=1e-6,
                hint="the small cases passed, so look for a numerically fragile step: solve "
                     "with the Cholesky factor and take log det Σ from it")
