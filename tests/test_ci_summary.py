"""tools/ci_summary.py: the closing lines of CI (counts over every pytest run, skips with reasons)."""

import subprocess
import sys

from _shared import ROOT

TOOL = ROOT / "tools" / "ci_summary.py"
LOG_OK = """....s.
=========================== short test summary info ============================
SKIPPED [1] tests/test_gmm.py:305: needs a CUDA GPU
12 passed, 1 skipped in 3.21s (0:00:03)
"""
LOG_HTML = "1 passed, 1600 deselected in 9.00s\n"


def run(tmp_path, *logs):
    paths = []
    for i, text in enumerate(logs):
        path = tmp_path / f"log{i}.txt"
        path.write_text(text)
        paths.append(str(path))
    return subprocess.run([sys.executable, str(TOOL), *paths], capture_output=True, text=True)


def test_counts_are_summed_and_every_skip_is_listed(tmp_path):
    res = run(tmp_path, LOG_OK, LOG_HTML)
    assert res.returncode == 0, res.stdout
    assert "needs a CUDA GPU" in res.stdout
    assert res.stdout.strip().splitlines()[-1] == "13 passed, 0 failed, 1 skipped"


def test_a_failure_or_a_run_without_its_summary_fails(tmp_path):
    failed = LOG_OK.replace("12 passed, 1 skipped", "1 failed, 11 passed, 1 skipped")
    assert run(tmp_path, failed).returncode == 1
    res = run(tmp_path, LOG_OK, "....\nKilled\n")
    assert res.returncode == 1 and "no pytest summary line" in res.stdout
