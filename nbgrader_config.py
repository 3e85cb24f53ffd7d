"""nbgrader configuration of the course (run every nbgrader command from the repository root).

The course directory (nbgrader's ``source/``, ``release/``, ``submitted/``, ``autograded/``,
``feedback/`` and ``gradebook.db``) is ``_build/nbgrader`` unless ``NBGRADER_COURSE_ROOT``
names another folder (keep a real class's grades outside ``_build``, which ``make clean``
deletes, but inside the clone, where the formgrader can reach them:
``NBGRADER_COURSE_ROOT=$PWD/grades``, which git ignores). ``python tools/nbgrader_source.py``
fills ``source/`` from ``solutions/``: one assignment per chapter (``ch02``, ``ch03``, ...;
book/instructors.md splits them into weekly assignments ``ch02a``, ``ch02b``, ...). Then, for
example::

    nbgrader generate_assignment ch02      # student version in release/ch02 (as make exercises)
    nbgrader autograde ch02                # grades every submitted/<student>/ch02
    nbgrader generate_feedback ch02        # HTML feedback per student
    nbgrader export                        # grades.csv (ignored by git)

book/instructors.md describes the whole path: roster, due dates, the exchange on a shared
JupyterHub (whose users share a second, small configuration: course id and exchange folder),
release_feedback and the formgrader.
"""

import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "image-generation-first-principles"
c.CourseDirectory.root = os.environ.get(
    "NBGRADER_COURSE_ROOT",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "_build", "nbgrader"))
# nbgrader opens (and creates) <root>/gradebook.db but not the folder: a command run before any
# other in a fresh clone, or in a shell where NBGRADER_COURSE_ROOT is not exported (`nbgrader
# export` after a new login), failed with "sqlite3.OperationalError: unable to open database
# file". Create the folder, so that every command works from the repository root. (If it cannot
# be created, e.g. in a read-only checkout where JupyterLab's nbgrader extension also reads this
# file, nothing is done here: nbgrader itself then reports the folder it cannot open.)
try:
    os.makedirs(c.CourseDirectory.root, exist_ok=True)
except OSError:
    pass

# ClearSolutions keeps nbgrader's default stubs ("# YOUR CODE HERE" + raise
# NotImplementedError()), as `make exercises` does: released notebooks equal exercises/
# (tests/test_nbgrader.py checks it).

# Every exercise runs in seconds on a laptop CPU; allow slow shared machines a margin.
c.Execute.timeout = 300  # per cell
# Grade on the CPU, so that grades do not depend on which machine has a GPU.
os.environ.setdefault("COURSE_DEVICE", "cpu")

# Two warnings nbgrader 0.9 printed on every autograde run, both harmless here:
# - SQLAlchemy 2's SAWarning "Object of type <SubmittedAssignment> not in session, add
#   operation along 'Student.submissions' will not proceed": nbgrader builds a submission
#   before adding it to the session; it adds it right after, and the grades are stored
#   (tests/test_nbgrader.py reads them back from the gradebook).
# - ipykernel's "Kernel is running over TCP without encryption": the grading kernel talks to
#   nbgrader over the machine's loopback interface, with messages signed by a per-kernel key.
#   The kernel's own log is cut to errors; a failing cell still shows in the notebook.
import warnings  # noqa: E402

warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session")
c.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
