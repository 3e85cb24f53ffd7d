"""Every generated file of the course, the command that regenerates it, and a quick staleness check.

    .venv/bin/python tools/generated.py list            # the table below, as text
    .venv/bin/python tools/generated.py check [NAME]    # exit 1 if a checkable file is stale
    .venv/bin/python tools/generated.py regen [NAME]    # regenerate (what `make regen` runs)

A file in this table is never edited by hand: change its source and regenerate it. ``check``
runs the checks that take seconds (``tests/test_generated.py`` runs them in ``make test``, and
so in CI); the rows whose check is ``None`` cannot be checked quickly (a benchmark takes
minutes, a timing depends on the machine) and say so in ``why_unchecked``. ``regen`` runs every
row's command, the slow ones included (``make regen`` takes about as long as ``make bench``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


@dataclass(frozen=True)
class Generated:
    name: str
    files: str  # the generated files, as a reader would look for them
    source: str  # what they are made from
    regen: list[list[str]]  # the commands that regenerate them, run from the repository root
    check: list[str] | None = None  # a command that exits 1 when they are stale (seconds)
    why_unchecked: str = ""
    notes: list[str] = field(default_factory=list)


def _py(*args: str) -> list[str]:
    return [PY, *args]


# Each benchmark with the flags that make it write its results file. The screenings
# (gan_modes.py, gan_digits.py, vae_prior.py) print one line per run; their results files are
# those lines, stage by stage, under headers naming the runs: their commands here rerun the
# defaults' rows (every setting of a screening takes hours; each script's docstring lists them).
BENCHMARKS = {"gmm_vs_sklearn.py": [], "mrf_gibbs.py": ["--save"], "mrf_cluster.py": ["--save"],
              "gan_modes.py": [], "vae_digits.py": ["--save"],
              "gan_digits.py": ["--settings", "default", "--seeds", "0", "1", "2"],
              "vae_prior.py": ["--settings", "default", "--seeds", "0,1,2"],
              "vae_collapse.py": ["--save"], "vae_gaps.py": ["--save"],
              "vae_dequant_bound.py": ["--save"], "gmm_exact.py": ["--save"],
              "quality_vs_compute.py": [], "gan_kid_floor.py": [],
              "fashion_floor.py": ["--save"], "fashion_gmm.py": ["--save"],
              "fashion_mrf.py": ["--save"], "fashion_models.py": ["--train", "--save"],
              "fashion_gan_screen.py": ["--settings", "base", "r1-10", "--save"],
              "fashion_cvae_prior.py": ["--save"], "fashion_vae_ladder.py": ["--save"],
              "fashion_vae_screen.py": ["--save"]}
EXTRA_BENCH_RUNS = [["gmm_vs_sklearn.py", "--em-drops"]]  # Chapter 3's EM drops table

TABLE = [
    Generated(
        "exercises", "exercises/*.ipynb", "solutions/*.ipynb (nbgrader ClearSolutions)",
        [_py("tools/make_exercises.py")], check=_py("tools/make_exercises.py", "--check")),
    Generated(
        "bad-inputs", "book/bad_inputs.md", "the cases of tests/bad_input_cases.py, run",
        [_py("tools/bad_inputs_table.py")], check=_py("tools/bad_inputs_table.py", "--check")),
    Generated(
        "glossary", "book/glossary.md (row order)", "its own rows, sorted case-insensitively",
        [_py("tools/sort_glossary.py")], check=_py("tools/sort_glossary.py", "--check")),
    Generated(
        "classifier", "course_lib/assets/digit_cnn_*.pt, .sha256, digit_cnn.json; "
        "fashion_cnn_*.pt, .sha256, fashion_cnn.json",
        "course_lib.metrics.features (_CLASSIFIER_CONFIG, DigitCNN, _train_classifier) and "
        "course_lib.metrics.fashion (_FASHION_CONFIG, FashionCNN, _train_fashion; trained on "
        "Debian's full Fashion-MNIST, minutes of CPU)",
        [_py("tools/ship_classifier.py"), _py("tools/ship_classifier.py", "--dataset", "fashion")],
        check=_py("tools/generated.py", "_check-classifier")),
    Generated(
        "models", "course_lib/assets/models/*.pt, .sha256, models.json",
        "GAN() and VAE() defaults on the digits (tools/ship_models.py); the Fashion-MNIST "
        "models of Chapter 8 are trained by the same tool from `make bench` "
        "(benchmarks/fashion_models.py --train, hours of CPU)",
        [_py("tools/ship_models.py", "gan_digits", "cgan_digits", "vae_digits", "cvae_digits",
             "vae_digits_normal_prior")],
        check=_py("tools/generated.py", "_check-models"),
        notes=["the check compares files, checksums and records; `tools/ship_models.py --check` "
               "refits every model (minutes; the Fashion models over an hour each) and compares its "
               "scores with the record"]),
    Generated(
        "requirements", "requirements.txt", "the installed .venv (`make freeze`)",
        [["make", "freeze"]], check=_py("tools/generated.py", "_check-requirements")),
    Generated(
        "benchmarks", "benchmarks/results/*.txt", "benchmarks/*.py (`make bench`; "
        "gan_modes.py prints its lines, which its results file collects under a header)",
        [_py(f"benchmarks/{s}", *flags) for s, flags in BENCHMARKS.items()]
        + [_py(f"benchmarks/{s}", *flags) for s, *flags in EXTRA_BENCH_RUNS],
        check=_py("tools/generated.py", "_check-benchmarks"),
        notes=["the check proves only that every benchmark has a results file made by the "
               "script as it is now; the numbers take minutes to remake"]),
    Generated(
        "timings", "README.md 'Measured timings', book/instructors.md timing table",
        "tools/time_notebooks.py and a fresh-clone `.ci/run`, on the 2-core CPU",
        [_py("tools/time_notebooks.py", *sorted(str(p.relative_to(ROOT)) for p in
                                                 (ROOT / "notebooks").glob("*.ipynb")))],
        why_unchecked="wall times depend on the machine and its load; the regen command prints "
                      "a table to paste by hand"),
]


# ---------------------------------------------------------------------------- the quick checks


def check_classifier() -> list[str]:
    """The shipped feature networks (the digit classifier, the Fashion-MNIST network)."""
    from course_lib.metrics import fashion, features

    return (_check_network("digit_cnn", features._shipped_classifier_path(),
                           features._CLASSIFIER_CONFIG, "metrics.features._CLASSIFIER_CONFIG", "")
            + _check_network("fashion_cnn", fashion._shipped_fashion_path(),
                             fashion._FASHION_CONFIG, "metrics.fashion._FASHION_CONFIG",
                             " --dataset fashion"))


def _check_network(stem: str, path: Path, config: dict, where: str, flags: str) -> list[str]:
    """One shipped network: the file its configuration names exists, its .sha256 and
    <stem>.json agree with its bytes, and no stale weights lie beside it."""
    if not path.exists():
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        return [f"{shown} (named by {where}) is missing: run tools/ship_classifier.py{flags}"]
    problems = []
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    stored = path.with_name(path.name + ".sha256").read_text().split()[0]
    if stored != digest:
        problems.append(f"{path.name}.sha256 does not match the file")
    meta = json.loads((path.parent / f"{stem}.json").read_text())
    if meta.get("file") != path.name or meta.get("sha256") != digest:
        problems.append(f"{stem}.json names another file or checksum")
    if meta.get("config") != config:
        problems.append(f"{stem}.json's config differs from {where}")
    stale = sorted(p.name for p in path.parent.glob(f"{stem}_*.pt") if p != path)
    if stale:
        problems.append(f"old weights beside the current ones: {stale} (delete them)")
    return problems


def check_models() -> list[str]:
    """Every shipped model named in models.json exists, matches its SHA-256 (in the record and
    in its .sha256 file), and no stray weights lie beside them."""
    folder = ROOT / "course_lib" / "assets" / "models"
    index = folder / "models.json"
    records = json.loads(index.read_text()) if index.exists() else {}
    problems = []
    for name, rec in sorted(records.items()):
        path = folder / rec["file"]
        if not path.exists():
            problems.append(f"{name}: {path.relative_to(ROOT)} is missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        side = path.with_name(path.name + ".sha256")
        if rec["sha256"] != digest or not side.exists() or side.read_text().split()[0] != digest:
            problems.append(f"{name}: {path.name} does not match its recorded SHA-256")
    named = {rec["file"] for rec in records.values()}
    stray = sorted(p.name for p in folder.glob("*.pt") if p.name not in named) \
        if folder.exists() else []
    if stray:
        problems.append(f"weights not in models.json: {stray}")
    return problems


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return pins


def check_requirements() -> list[str]:
    """requirements.txt pins exactly what the .venv has (torch included), nothing more or less."""
    freeze = subprocess.run([PY, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    have = _pins(freeze)
    want = _pins((ROOT / "requirements.txt").read_text().splitlines())
    have["torch"] = have.get("torch", "").split("+")[0]  # the CPU wheel's local "+cpu" tag
    problems = [f"{n}: requirements.txt pins {v}, the environment has {have.get(n, 'nothing')}"
                for n, v in sorted(want.items()) if have.get(n) != v]
    problems += [f"{n}=={v} is installed but not pinned in requirements.txt (run make freeze)"
                 for n, v in sorted(have.items()) if n not in want]
    return problems


#: The SHA-256 of each benchmark script as it was when its results were made: `regen benchmarks`
#: rewrites it after the runs, and the check compares it with the scripts as they are now.
BENCH_SOURCES = ROOT / "benchmarks" / "results" / "sources.sha256"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _bench_manifest() -> dict[str, str]:
    if not BENCH_SOURCES.exists():
        return {}
    pairs = (line.split() for line in BENCH_SOURCES.read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {name: digest for digest, name in pairs}


def write_bench_manifest() -> None:
    lines = ["# SHA-256 of each benchmark script when its results in this folder were made",
             "# (written by `tools/generated.py regen benchmarks`, checked by `... check`)"]
    lines += [f"{_digest(ROOT / 'benchmarks' / s)}  {s}" for s in BENCHMARKS]
    BENCH_SOURCES.write_text("\n".join(lines) + "\n")


def check_benchmarks() -> list[str]:
    """Every benchmark (`make bench` runs this table's commands) has a results file, made by
    the script as it is now (its SHA-256 is the one recorded when the results were written)."""
    problems = []
    results = [p.name for p in (ROOT / "benchmarks" / "results").glob("*.txt")]
    recorded = _bench_manifest()
    for script in BENCHMARKS:
        stem = script.removesuffix(".py")
        if not any(n.startswith(stem + "_") for n in results):
            problems.append(f"benchmarks/{script} has no results file in benchmarks/results/")
        if recorded.get(script) != _digest(ROOT / "benchmarks" / script):
            problems.append(f"benchmarks/{script} differs from the script that made its results "
                            f"(or is not in {BENCH_SOURCES.name}): rerun it (make bench)")
    return problems


_INTERNAL = {"_check-classifier": check_classifier, "_check-models": check_models, "_check-requirements": check_requirements,
             "_check-benchmarks": check_benchmarks}


# ---------------------------------------------------------------------------- command line


def _select(names: list[str]) -> list[Generated]:
    if not names:
        return TABLE
    known = {g.name: g for g in TABLE}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown generated-file names {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


def run_check(entry: Generated) -> tuple[bool, str]:
    """(ok, output) of one row's check."""
    if entry.check is None:
        return True, f"not checked: {entry.why_unchecked}"
    res = subprocess.run(entry.check, cwd=ROOT, capture_output=True, text=True)
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["list", "check", "regen", *_INTERNAL])
    parser.add_argument("names", nargs="*", help="rows of the table (default: all)")
    args = parser.parse_args(argv)
    if args.action in _INTERNAL:
        problems = _INTERNAL[args.action]()
        for p in problems:
            print(p)
        if not problems:
            print("up to date")
        return 1 if problems else 0
    rows = _select(args.names)
    if args.action == "list":
        for g in rows:
            how = " && ".join(" ".join(Path(c).name if c == PY else c for c in cmd)
                              for cmd in g.regen)
            print(f"{g.name:13s} {g.files}\n{'':13s} from {g.source}\n{'':13s} regen: {how}")
            print(f"{'':13s} check: "
                  + ("yes" if g.check else f"no ({g.why_unchecked})"))
        return 0
    if args.action == "check":
        failed = 0
        for g in rows:
            ok, out = run_check(g)
            failed += not ok
            print(f"[{'ok' if ok else 'STALE'}] {g.name}: {out.splitlines()[-1] if out else ''}")
            if not ok:
                print("    " + out.replace("\n", "\n    "))
        return 1 if failed else 0
    for g in rows:  # regen
        for cmd in g.regen:
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, cwd=ROOT, check=True)
        if g.name == "benchmarks":
            write_bench_manifest()
    return 0


if __name__ == "__main__":
    sys.exit(main())
