"""The self-check quizzes (course_lib.quiz): the right answers score full marks, wrong ones do
not, the feedback says why and where to read, and every question points at a section that
exists in its chapter."""

from __future__ import annotations

import json
import re

import pytest
from _shared import ROOT

from course_lib import quiz


def _key(chapter) -> str:
    return "".join(q.answer for q in quiz.questions(chapter))


def _wrong(chapter) -> str:
    """For every question a letter that is not its answer."""
    return "".join(next(c for c in "abcd" if c != q.answer) for q in quiz.questions(chapter))


def test_every_chapter_has_a_quiz_of_well_formed_questions():
    assert quiz.chapters() == (1, 2, 3, 4, 5, 6, 7, 8)
    for chapter in quiz.chapters():
        qs = quiz.questions(chapter)
        assert len(qs) >= 4, chapter
        for q in qs:
            assert len(q.choices) >= 3 and len(set(q.choices)) == len(q.choices), q.prompt
            assert q.answer in quiz.LETTERS[: len(q.choices)], q.prompt
            assert q.why and q.section, q.prompt
    # Always answering the same letter must not pass any quiz.
    for letter in "abcd":
        for chapter in quiz.chapters():
            assert not quiz.check(chapter, letter * len(quiz.questions(chapter))).passed


@pytest.mark.parametrize("chapter", [1, 2, 3, 4, 5, 6, 7, 8])
def test_right_answers_score_full_marks(chapter):
    result = quiz.check(chapter, _key(chapter))
    assert result.passed and result.score == result.max_score == len(quiz.questions(chapter))
    assert result.wrong == ()
    assert all("✔" in line for line in result.feedback)
    assert f"{result.max_score}/{result.max_score}" in str(result)


@pytest.mark.parametrize("chapter", [1, 2, 3, 4, 5, 6, 7, 8])
def test_wrong_answers_score_zero_and_say_why(chapter):
    qs = quiz.questions(chapter)
    result = quiz.check(chapter, _wrong(chapter))
    assert result.score == 0 and not result.passed
    assert result.wrong == tuple(range(1, len(qs) + 1))
    for q, line in zip(qs, result.feedback, strict=True):
        assert "✘" in line and q.why in line
        assert q.section.replace("`", "").replace("$", "") in line


def test_one_wrong_answer_costs_one_point_and_is_named():
    key = list(_key(3))
    key[1] = next(c for c in "abcd" if c != key[1])
    result = quiz.check(3, key)
    assert result.score == result.max_score - 1 and result.wrong == (2,)
    assert "✘" in result.feedback[1] and "✔" in result.feedback[0]


def test_answer_formats():
    key = _key(4)
    assert quiz.check("4", key.upper()).passed
    assert quiz.check(4, ", ".join(key)).passed
    assert quiz.check(4, list(key)).passed
    assert quiz.check(4, {i + 1: a for i, a in enumerate(key)}).passed
    partial = quiz.check(4, {1: key[0]})  # the others unanswered
    assert partial.score == 1 and "not answered" in partial.feedback[1]
    skipped = quiz.check(4, [None] + list(key[1:]))
    assert skipped.wrong == (1,)


@pytest.mark.parametrize("chapter, answers, match", [
    (9, "abcd", "no quiz"),
    ("x", "abcd", "chapter number"),
    (3, "abc", "5 questions"),
    (3, "abcdef", "5 questions"),
    (3, "abcde", "choices are a, b, c, d"),
    (3, ["a", "b", "c", "d", "ab"], "one letter"),
    (3, {0: "a"}, "do not exist"),
])
def test_bad_input_is_refused_with_a_message(chapter, answers, match):
    with pytest.raises(ValueError, match=match):
        quiz.check(chapter, answers)
    with pytest.raises(TypeError):
        quiz.check(3, 12345)


def _headings(chapter: int) -> set[str]:
    """The headings of the chapter's page(s) and notebook(s)."""
    texts = [p.read_text(encoding="utf-8") for p in (ROOT / "book").glob(f"{chapter:02d}_*.md")]
    for nb in (ROOT / "notebooks").glob(f"{chapter:02d}*.ipynb"):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        texts += ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return {m.strip() for t in texts for m in re.findall(r"^#{1,6} +(.+)$", t, flags=re.M)}


@pytest.mark.parametrize("chapter", [1, 2, 3, 4, 5, 6, 7, 8])
def test_every_question_names_a_section_of_its_chapter(chapter):
    headings = _headings(chapter)
    assert headings, f"no page found for chapter {chapter}"
    for q in quiz.questions(chapter):
        assert q.section in headings, (
            f"Chapter {chapter}: {q.prompt!r} points at section {q.section!r}, which is not a "
            "heading of the chapter (renamed? check that the question is still right)")


def test_static_renderings_show_every_choice_and_no_answer():
    for chapter in quiz.chapters():
        for text in (quiz.to_markdown(chapter), quiz.to_text(chapter)):
            for q in quiz.questions(chapter):
                assert q.prompt in text and all(c in text for c in q.choices)
                assert q.why not in text


def test_widget_grades_the_chosen_answers():
    pytest.importorskip("ipywidgets")
    box = quiz.show(5)
    key = _key(5)
    for radio, letter in zip(box.radios, key, strict=True):
        radio.value = letter
    box.button.click()
    assert f"{len(key)}/{len(key)}" in box.result.value
    box.radios[0].value = next(c for c in "abcd" if c != key[0])
    box.button.click()
    assert f"{len(key) - 1}/{len(key)}" in box.result.value and "✘" in box.result.value


def test_the_summaries_page_shows_every_chapters_quiz():
    """book/summaries.md has a section per chapter and renders that chapter's quiz."""
    page = (ROOT / "book" / "summaries.md").read_text(encoding="utf-8")
    for chapter in quiz.chapters():
        assert re.search(rf"^## Chapter {chapter}: ", page, flags=re.M), chapter
        assert f"Markdown(quiz.to_markdown({chapter}))" in page, chapter
    shown = {int(n) for n in re.findall(r"quiz\.to_markdown\((\d+)\)", page)}
    assert shown == set(quiz.chapters())
