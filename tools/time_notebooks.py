"""Time notebooks as a learner's first run would: cold, one at a time.

    .venv/bin/python tools/time_notebooks.py notebooks/05_gan.ipynb solutions/06_iwae.ipynb ...

Each notebook runs in a fresh kernel (nbclient, the course's kernel) with an empty model cache
(a temporary ``COURSE_CACHE_DIR``: every network is trained, nothing is loaded) and
``OMP_NUM_THREADS=1`` unless the environment sets it. Prints, per notebook, the wall time from
kernel start to the last cell, the CPU time of the kernel process and its peak memory (the
kernel's own maximum resident set size, which a cell appended to the run reads), as a Markdown
table. Runs on the CPU (``COURSE_DEVICE=cpu``) unless the environment says otherwise.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

PEAK_CELL = ("import resource as _r\n"
             "print('peak-rss-kib', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)")  # KiB on Linux


def run(path: Path) -> tuple[float, float, float]:
    """Wall and CPU seconds of a cold run of the notebook at ``path``, and its kernel's peak
    resident memory in MiB."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    with tempfile.TemporaryDirectory(prefix="course_cache_") as cache:
        os.environ["COURSE_CACHE_DIR"] = cache
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    peak_kib = int(text.split("peak-rss-kib")[1].split()[0])
    return wall, cpu, peak_kib / 1024


def main(paths: list[str]) -> None:
    if not paths:
        raise SystemExit(__doc__)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import nbclient_fix  # a widget cell could otherwise stall for the whole cell timeout

    nbclient_fix.apply()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("COURSE_DEVICE", "cpu")
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"COURSE_DEVICE={os.environ['COURSE_DEVICE']}, empty model cache for each notebook\n")
    print("| Notebook | Wall (kernel start to last cell) | CPU of the kernel | Peak memory of the kernel |")
    print("|---|---|---|---|")
    for p in paths:
        wall, cpu, peak = run(Path(p).resolve())
        print(f"| `{p}` | {wall:.0f} s | {cpu:.0f} s | {peak:,.0f} MiB |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
