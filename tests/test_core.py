"""course_lib._core: device selection, seeding, validation helpers."""

import warnings

import numpy as np
import pytest
import torch

import course_lib
from course_lib import _core


def test_get_device_cpu(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert course_lib.get_device() == torch.device("cpu")


def test_get_device_auto(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert course_lib.get_device().type == expected


def test_get_device_cuda_without_gpu_raises(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="COURSE_DEVICE=cuda"):
        course_lib.get_device()


def test_get_device_unknown_value(monkeypatch):
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE"):
        course_lib.get_device()


def test_seed_everything_reproducible():
    import random

    def draw():
        return (random.random(), np.random.rand(), torch.rand(1).item())

    course_lib.seed_everything(123)
    a = draw()
    course_lib.seed_everything(123)
    b = draw()
    course_lib.seed_everything(124)
    c = draw()
    assert a == b
    assert a != c


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True])
def test_seed_everything_rejects_bad_seed(bad):
    with pytest.raises((TypeError, ValueError), match="seed"):
        course_lib.seed_everything(bad)


def test_as_tensor_checks():
    t = _core.as_tensor(np.ones((2, 3)), "X", ndim=2)
    assert t.dtype == torch.float32 and t.shape == (2, 3)
    with pytest.raises(ValueError, match="X must have 2 dimensions"):
        _core.as_tensor(np.ones(3), "X", ndim=2)
    with pytest.raises(ValueError, match="X contains NaN"):
        _core.as_tensor([1.0, float("nan")], "X")
    with pytest.raises(ValueError, match="X must be <= 1"):
        _core.as_tensor([0.5, 2.0], "X", max_value=1.0)
    with pytest.raises(TypeError, match="X must hold numbers"):
        _core.as_tensor(["a", "b"], "X")
    with pytest.raises(ValueError, match="X is empty"):
        _core.as_tensor(np.zeros((0, 2)), "X")


def test_check_images_range():
    with pytest.raises(ValueError, match="images must be >= 0"):
        _core.check_images(-np.ones((1, 1, 2, 2)), "images")
    with pytest.raises(ValueError, match="images must have 4 dimensions"):
        _core.check_images(np.ones((2, 2)), "images")


def test_check_real_and_int():
    assert _core.check_real(2, "beta", minimum=0, strict_min=True) == 2.0
    with pytest.raises(ValueError, match="beta must be > 0"):
        _core.check_real(0.0, "beta", minimum=0, strict_min=True)
    with pytest.raises(ValueError, match="beta must be finite"):
        _core.check_real(float("inf"), "beta")
    with pytest.raises(TypeError, match="n must be an integer"):
        _core.check_int(2.0, "n")


def test_resolve_device_rejects_garbage():
    with pytest.raises(ValueError, match="device"):
        _core.resolve_device("not-a-device")


@pytest.mark.parametrize("bad", ["gpu", 12345, 0, True, 1.0, "meta", "cuda:x", ["cpu"]])
def test_resolve_device_names_the_argument(bad):
    with pytest.raises(ValueError, match="model_device"):
        _core.resolve_device(bad, name="model_device")


def test_resolve_device_cuda_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for value in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(RuntimeError, match="device="):
            _core.resolve_device(value)


def test_check_seed_range_and_types():
    assert _core.check_seed(0) == 0 and _core.check_seed(2**64 - 1) == 2**64 - 1
    assert _core.check_seed(np.int64(7)) == 7 and _core.check_seed(torch.tensor(3)) == 3
    assert _core.check_seed(None) is None
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="random_state must be in"):
            _core.check_seed(bad, "random_state")
    for bad in (1.0, "1", True, np.bool_(False), torch.tensor(1.0), [1]):
        with pytest.raises(TypeError, match="seed must be"):
            _core.check_seed(bad)


def test_make_generator_checks_seed_and_device():
    a = torch.rand(2, generator=_core.make_generator(2**64 - 1))
    b = torch.rand(2, generator=_core.make_generator(2**64 - 1))
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="seed"):
        _core.make_generator(2**64)
    with pytest.raises(ValueError, match="device"):
        _core.make_generator(0, "gpu")


def test_seed_everything_accepts_numpy_ints_and_huge_seeds():
    course_lib.seed_everything(np.int32(5))
    course_lib.seed_everything(2**64 - 1)


def test_check_bool():
    assert _core.check_bool(True, "flag") is True
    assert _core.check_bool(np.bool_(False), "flag") is False
    for bad in ("False", "True", 0, 1, None, [], np.array([True])):
        with pytest.raises(TypeError, match="flag must be True or False"):
            _core.check_bool(bad, "flag")


def test_progress_flag_is_checked():
    assert _core.progress([1, 2], enabled=False) == [1, 2]
    with pytest.raises(TypeError, match="progress must be True or False"):
        _core.progress([1, 2], enabled="False")


@pytest.mark.parametrize("x", [np.ones(2) + 0j, torch.ones(2, dtype=torch.complex128),
                               [1 + 2j, 3.0]])
def test_complex_input_is_refused(x):
    with pytest.raises(TypeError, match="X must be real"):
        _core.as_tensor(x, "X")
    with pytest.raises(TypeError, match="X must be real"):
        _core.as_numpy(x, "X")


def test_check_real_scalars():
    assert _core.check_real(torch.tensor(2.5), "t") == 2.5
    assert _core.check_real(np.array(3), "t") == 3.0
    for bad in (1j, np.complex64(1), torch.tensor(1j), torch.tensor(True), "1.0", None):
        with pytest.raises(TypeError, match="t must be a real number"):
            _core.check_real(bad, "t")


def test_check_binary_refuses_complex():
    with pytest.raises(TypeError, match="image must be real"):
        _core.check_binary(np.zeros(3, complex), "image")


def test_check_choice_with_an_array_value():
    with pytest.raises(ValueError, match="split must be one of"):
        _core.check_choice(np.array(["train", "test"]), "split", ("train", "test"))


def test_a_read_only_array_is_taken_without_a_warning_and_copied():
    # np.load(..., mmap_mode="r") gives such arrays; PyTorch warns about them and cannot own them
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    a.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = _core.as_tensor(a, "X")
    t[0, 0] = 100.0  # writing to the tensor does not touch the caller's read-only array
    assert a[0, 0] == 0.0 and t.shape == (3, 2)


# ---------------------------------------------------------------- the tests' own device fixture


@pytest.mark.parametrize("value", [None, "", "cpu", " CPU "])
def test_tests_run_on_the_cpu_unless_told_otherwise(value):
    from _shared import device_for_tests

    assert device_for_tests(value) == "cpu"


def test_tests_asked_for_cuda_without_a_gpu_fail_clearly(monkeypatch):
    from _shared import device_for_tests

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="COURSE_DEVICE=cuda.*sees none"):
        device_for_tests("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_for_tests("cuda") == "cuda"
    assert device_for_tests("auto") == "cuda"
    with pytest.raises(ValueError, match="COURSE_DEVICE"):
        device_for_tests("gpu")


def test_the_device_fixture_follows_course_device(device, monkeypatch):
    import os

    from _shared import device_for_tests

    assert device == device_for_tests(os.environ.get("COURSE_DEVICE"))
    # conftest.py sets COURSE_DEVICE=cpu when it is unset: code left at device=None agrees
    assert course_lib.get_device().type == device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_for_tests("auto") == "cpu"
