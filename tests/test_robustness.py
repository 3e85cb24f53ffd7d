"""Bad inputs and faults: every public function answers them with a clear error, never a
silent wrong result (issue 12).

Three parts:

1. ``CASES`` (in ``tests/bad_input_cases.py``), a table of single bad calls. Each row names the function, what is wrong with the
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

from course_lib import _core, data, metrics, viz  # noqa: E402
from course_lib import grading as grading_base  # noqa: E402
from course_lib.grading import GradingError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

# Deterministic, quick, and no example database written into the checkout.
settings.register_profile(
    "course", max_examples=25, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("course")


# ===================================================================== 1. the table of cases


# The table lives in tests/bad_input_cases.py, shared with tools/bad_inputs_table.py.
from bad_input_cases import (  # noqa: E402
    CASES,
    Case,
    _endless,
    _fitted_models,
    _learner_identity,
    _points,
    _tiny_gan,
    _tiny_vae,
    _uniform,
    run_case,
)


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
    """Where SIGALRM cannot be used (another thread), a trace function with a deadline stops
    the call, in the caller's thread."""
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
