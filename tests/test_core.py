"""course_lib._core: device selection, seeding, validation helpers."""

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
