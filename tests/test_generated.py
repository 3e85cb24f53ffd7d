"""Generated files are up to date with their sources (tools/generated.py lists every one).

The rows whose check other test files already run are not run twice: COVERED_ELSEWHERE names
the test file that runs each, and a test proves that file calls the row's check.
"""

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("generated", ROOT / "tools" / "generated.py")
gen = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("generated", gen)
_spec.loader.exec_module(gen)

COVERED_ELSEWHERE = {
    "exercises": ("tests/test_exercises.py", "make_exercises.py"),
    "bad-inputs": ("tests/test_robustness.py", "bad_inputs_table"),
    "glossary": ("tests/test_book_text.py", "sort_glossary.py"),
}
CHECKED_HERE = [g for g in gen.TABLE if g.check and g.name not in COVERED_ELSEWHERE]


@pytest.mark.parametrize("entry", CHECKED_HERE, ids=lambda g: g.name)
def test_generated_file_is_up_to_date(entry):
    ok, out = gen.run_check(entry)
    regen = " && ".join(" ".join(c) for c in entry.regen)
    assert ok, f"{entry.files} is out of date with {entry.source}:\n{out}\nregenerate: {regen}"


@pytest.mark.parametrize("name", sorted(COVERED_ELSEWHERE))
def test_other_rows_are_checked_by_their_test_file(name):
    test_file, marker = COVERED_ELSEWHERE[name]
    assert name in {g.name for g in gen.TABLE}
    assert marker in (ROOT / test_file).read_text(encoding="utf-8"), (
        f"{test_file} no longer runs the check of {name}: run it here instead")


def test_every_row_has_a_check_or_says_why_not():
    for g in gen.TABLE:
        assert g.regen, g.name
        assert g.check or g.why_unchecked, f"{g.name}: no check and no reason"


def test_requirements_check_sees_a_missing_or_changed_pin(monkeypatch, tmp_path):
    fake = tmp_path / "requirements.txt"
    text = (ROOT / "requirements.txt").read_text()
    pins = gen._pins(text.splitlines())
    victim = sorted(n for n in pins if n != "torch")[0]
    lines = [line for line in text.splitlines()
             if not gen._pins([line]).keys() & {victim}]
    fake.write_text("\n".join(lines + ["notapackage==1.0"]) + "\n")
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    problems = gen.check_requirements()
    assert any(victim in p and "not pinned" in p for p in problems), problems
    assert any("notapackage" in p for p in problems), problems


def test_benchmark_check_sees_a_changed_script(monkeypatch, tmp_path):
    manifest = tmp_path / "sources.sha256"
    manifest.write_text(gen.BENCH_SOURCES.read_text())
    monkeypatch.setattr(gen, "BENCH_SOURCES", manifest)
    assert gen.check_benchmarks() == []
    victim = sorted(gen.BENCHMARKS)[0]
    manifest.write_text("\n".join(line for line in manifest.read_text().splitlines()
                                  if not line.endswith(victim)) + "\n")
    assert gen.check_benchmarks() == [
        f"benchmarks/{victim} differs from the script that made its results (or is not in "
        "sources.sha256): rerun it (make bench)"]


def test_classifier_check_sees_a_damaged_checksum(monkeypatch, tmp_path):
    from course_lib import metrics

    shipped = metrics.features._shipped_classifier_path()
    for f in shipped.parent.iterdir():
        if f.is_file():
            (tmp_path / f.name).write_bytes(f.read_bytes())
    monkeypatch.setattr(metrics.features, "_ASSETS", tmp_path)
    assert gen.check_classifier() == []
    (tmp_path / (shipped.name + ".sha256")).write_text("0" * 64 + "\n")
    (tmp_path / "digit_cnn_v0_old.pt").write_bytes(b"x")
    problems = gen.check_classifier()
    assert any(".sha256 does not match" in p for p in problems), problems
    assert any("old weights" in p for p in problems), problems


def test_models_check_sees_a_damaged_or_stray_file(monkeypatch, tmp_path):
    folder = tmp_path / "course_lib" / "assets" / "models"
    folder.mkdir(parents=True)
    (folder / "m.pt").write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    (folder / "m.pt.sha256").write_text(digest + "\n")
    (folder / "models.json").write_text(
        json.dumps({"m": {"file": "m.pt", "sha256": digest}}))
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.check_models() == []
    (folder / "m.pt").write_bytes(b"damaged")
    (folder / "old.pt").write_bytes(b"x")
    problems = gen.check_models()
    assert problems == ["m: m.pt does not match its recorded SHA-256",
                        "weights not in models.json: ['old.pt']"]
