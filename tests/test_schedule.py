"""The order in which `make test` hands files to its two workers (tests/conftest.py)."""

from _shared import ROOT
from conftest import RUN_FIRST


def test_every_file_to_run_first_exists():
    missing = [path for path in RUN_FIRST if not (ROOT / path).is_file()]
    assert not missing, f"tests/conftest.py RUN_FIRST names files that are gone: {missing}"


def test_the_slow_files_come_first_in_this_session(request):
    files = list(dict.fromkeys(item.nodeid.split("::")[0] for item in request.session.items))
    slow = [path for path in files if path in RUN_FIRST]
    assert files[:len(slow)] == sorted(slow, key=RUN_FIRST.index)


def test_make_test_keeps_the_order():
    makefile = (ROOT / "Makefile").read_text()
    assert "--dist loadfile --no-loadscope-reorder" in makefile, (
        "without --no-loadscope-reorder xdist sorts the files by their number of tests")
