"""The messages of the checks: :class:`GradingError`, :class:`GradingWarning` and the layout
every message follows (:func:`format_message`): a short first line with what is wrong, the
hint on the lines after it, so that ``nbgrader validate``, which cuts lines at 90 columns,
shows all of it."""

from __future__ import annotations

import textwrap

#: Width of a message's first line and of the lines after it. ``nbgrader validate`` shows
#: each line of a failed cell's traceback indented by 4 and cut at 87 characters; the
#: traceback's last line is ``GradingError: <first line>``, so the first line gets 69
#: characters and each following line 83. The feedback page shows them in a box that does
#: not wrap.
FIRST_LINE_WIDTH = 69
LINE_WIDTH = 83


def format_message(message: str) -> str:
    """A check's message laid out for ``nbgrader validate`` and the feedback page.

    The first line says what is wrong (at most :data:`FIRST_LINE_WIDTH` characters); the hint
    (from ``"Hint: "`` on) and any further details follow on lines of at most
    :data:`LINE_WIDTH` characters. Line breaks already in ``message`` start new paragraphs.
    """
    text = str(message).strip()
    paragraphs = []
    for para in text.split("\n"):
        head, sep, hint = para.partition(" Hint: ")
        if not sep and para.startswith("Hint: "):
            head, hint, sep = "", para[len("Hint: "):], True
        if head.strip():
            paragraphs.append(head.strip())
        if sep:
            paragraphs.append("Hint: " + hint.strip())
    lines: list[str] = []
    for para in paragraphs:
        if not lines:
            first = textwrap.wrap(para, FIRST_LINE_WIDTH, break_on_hyphens=False) or [""]
            lines.append(first[0])
            rest = para[len(first[0]):].strip()
            if rest:
                lines += textwrap.wrap(rest, LINE_WIDTH, break_on_hyphens=False)
        else:
            lines += textwrap.wrap(para, LINE_WIDTH, break_on_hyphens=False,
                                   subsequent_indent="  ")
    return "\n".join(lines)


class GradingError(AssertionError):
    """Raised by a check when the learner's answer is missing or wrong.

    The message is laid out by :func:`format_message`: a short first line with what is
    wrong, the hint on the following lines.
    """

    def __init__(self, message: str = ""):
        super().__init__(format_message(message))


class GradingWarning(UserWarning):
    """A check found (and undid) something the learner's code did that is not an error of the
    answer itself: the global random state reseeded, a library function replaced in an
    earlier cell."""
