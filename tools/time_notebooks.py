"""Time notebooks as a learner's first run would: cold, one at a time.

    .venv/bin/python tools/time_notebooks.py notebooks/05_gan.ipynb solutions/06_iwae.ipynb ...

Each notebook runs in a fresh kernel (nbclient, the course's kernel) with an empty model cache
(a temporary ``COURSE_CACHE_DIR``: every network is trained, nothing is loaded) and
``OMP_NUM_THREADS=1`` unless the environment sets it. Prints, per notebook, the wall time from
kernel start to the last cell and the CPU time of the kernel process, as a Markdown table. Runs
on the CPU (``COURSE_DEVICE=cpu``) unless the environment says otherwise.
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


def run(path: Path) -> tuple[float, float]:
    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="course_cache_") as cache:
        os.environ["COURSE_CACHE_DIR"] = cache
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(paths: list[str]) -> None:
    if not paths:
        raise SystemExit(__doc__)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("COURSE_DEVICE", "cpu")
    print(f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, "
          f"COURSE_DEVICE={os.environ['COURSE_DEVICE']}, empty model cache for each notebook\n")
    print("| Notebook | Wall (kernel start to last cell) | CPU of the kernel |")
    print("|---|---|---|")
    for p in paths:
        wall, cpu = run(Path(p).resolve())
        print(f"| `{p}` | {wall:.0f} s | {cpu:.0f} s |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
