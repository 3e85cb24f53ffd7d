"""The shipped digit models are what tools/ship_models.py makes: refit with the tool's code,
each scores within the spread of its record (minutes: the slowest test file).

The Fashion-MNIST models of Chapter 8 take an hour or more each to refit on one core (the GAN's
160,000 steps about eight), too long for `make test`: `tools/ship_models.py --check gan_fashion ...` does it by hand, and
tests/test_fashion_models.py checks their records against the tool's recipes."""

import importlib.util
import sys

import pytest
from _shared import ROOT

from course_lib.training import shipped_records

_spec = importlib.util.spec_from_file_location("ship_models", ROOT / "tools" / "ship_models.py")
ship_models = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("ship_models", ship_models)
_spec.loader.exec_module(ship_models)

pytestmark = [pytest.mark.slow, pytest.mark.cpu_only("the records were made on the CPU with "
                                                     "one thread, as the tool does")]


def test_every_shipped_model_is_in_the_tool():
    assert set(shipped_records()) == set(ship_models.MODELS)


@pytest.mark.parametrize("name", sorted(n for n, (_, spec, _) in ship_models.MODELS.items()
                                         if spec.get("dataset", "digits") == "digits"))
def test_the_tool_reproduces_the_shipped_scores(name):
    rows = ship_models.compare(name)
    assert {k for k, *_ in rows} >= set(ship_models.SCORES)
    different = [(k, shipped, refit) for k, shipped, refit, ok in rows if not ok]
    assert not different, f"{name}: refit differs from the record beyond the spread: {different}"
