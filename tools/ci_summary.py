"""Sum up the pytest runs of one CI run: counts, every skipped test and why.

    python tools/ci_summary.py LOG [LOG ...]

Each LOG is the captured output of one pytest run (with ``-rs`` or ``-ra``, as pyproject.toml's
``addopts`` sets). Prints each run's closing counts, then every SKIPPED line with its reason,
then one line ``N passed, N failed, N skipped`` over all runs. Exits 1 if a log has no pytest
summary (a run that crashed before it) or if any test failed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")
CLOSING = re.compile(r"^=*\s*(\d+ (passed|failed|skipped|errors?|deselected).*) in [\d.]+s")


def summarise(text: str) -> tuple[dict[str, int], list[str]] | None:
    closing = [m.group(1) for line in text.splitlines() if (m := CLOSING.match(line.strip()))]
    if not closing:
        return None
    counts: dict[str, int] = {}
    for n, kind in COUNT.findall(closing[-1]):
        kind = "errors" if kind.startswith("error") else kind
        counts[kind] = counts.get(kind, 0) + int(n)
    skipped = [line.strip() for line in text.splitlines() if line.startswith("SKIPPED")]
    return counts, skipped


def main(argv: list[str]) -> int:
    total: dict[str, int] = {}
    skipped_all: list[str] = []
    broken = []
    for name in argv:
        result = summarise(Path(name).read_text(encoding="utf-8", errors="replace"))
        if result is None:
            broken.append(name)
            continue
        counts, skipped = result
        print(f"{name}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        for k, v in counts.items():
            total[k] = total.get(k, 0) + v
        skipped_all += skipped
    print(f"\nSkipped tests ({total.get('skipped', 0)}), and why:")
    for line in skipped_all:
        print("  " + line)
    if not skipped_all:
        print("  none")
    for name in broken:
        print(f"{name}: no pytest summary line (the run did not finish)")
    failed = total.get("failed", 0) + total.get("errors", 0)
    print(f"\n{total.get('passed', 0)} passed, {failed} failed, {total.get('skipped', 0)} skipped")
    return 1 if failed or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
