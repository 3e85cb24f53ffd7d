# Image Generation from First Principles: every target bootstraps what it needs, once.
#   make book       execute every notebook and build the HTML book (_build/html/index.html)
#   make test       unit tests + every notebook (nbval) + exercise tests, on the CPU
#   make test-gpu   the same with COURSE_DEVICE=cuda (fails clearly without a GPU)
#   make browser-test  the built book (last `make book`) opened page by page in headless Chromium, offline,
#                   at desktop and phone width (needs Debian's `chromium`; .ci/run installs it)
#   make lab        JupyterLab on the notebooks, with the course's kernel
#   make exercises  regenerate exercises/ from solutions/ (nbgrader ClearSolutions)
#   make student-release DEST=dir  the repository without its answers, for a graded class, checked
#   make check-student-release DEST=dir  fail if a student release holds solution content
#   make bench      the side-by-side benchmarks (rewrites benchmarks/results/)
#   make regen      regenerate every generated file (tools/generated.py lists them)
#   make check-generated  fail if a generated file is out of date (the quick checks)
#   make lint       ruff

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
PYTEST_WORKERS ?= 2
PYTEST_PAR := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
# One BLAS/torch thread per pytest worker: two workers on two cores; more threads only contend.
# SCIPY_ARRAY_API=1 lets scikit-learn's array-API estimator check run instead of skipping.
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 SCIPY_ARRAY_API=1

.PHONY: all venv npm book browser-test test test-unit test-notebooks test-exercises test-gpu lab exercises \
        bench regen check-generated lint clean freeze check-python student-release check-student-release

all: test

check-python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { \
	  echo "error: $(PYTHON) not found. Install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }

# The virtual environment is rebuilt only when requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml | check-python
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "error: '$(PYTHON) -m venv' failed;" \
	  "on Debian or Ubuntu install the python3.11-venv package"; exit 1; }; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	@touch $@

venv: $(STAMP)

# MathJax and the ipywidgets manager, served from node_modules so that the book reads offline.
$(NPM_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

npm: $(NPM_STAMP)

# One thread, as in `make test`: PyTorch's results depend on the number of threads (the order of
# floating-point sums), and the chapters' prose quotes the one-thread numbers that the tests check.
book: $(STAMP) $(NPM_STAMP)
	$(BIN)/python tools/offline_assets.py
	$(TEST_ENV) PATH="$(CURDIR)/$(BIN):$$PATH" COURSE_DEVICE=$${COURSE_DEVICE:-cpu} \
	  $(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tools/offline_assets.py --check _build/html
	@echo "The book is at file://$(CURDIR)/_build/html/index.html"

# Screenshots of every page go to _build/screenshots (not committed). Tests the last build
# (`make book` first after a change); builds the book only when there is none, so that CI's
# `make book` followed by `make browser-test` executes the notebooks once. It also runs the
# tests marked `book_html` (they read the built HTML), which `make test` leaves out.
browser-test: $(STAMP)
	@test -f _build/html/index.html || $(MAKE) book
	COURSE_REQUIRE_BOOK=1 $(BIN)/python -m pytest tests -m book_html -q -p no:cacheprovider
	$(BIN)/python tools/browser_check.py _build/html

test-unit: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest tests $(PYTEST_PAR) -q

test-notebooks: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest --nbval-lax --nbval-current-env $(PYTEST_PAR) -q -p no:cacheprovider \
	  notebooks solutions

# Everything but the tests that read the built book (`book_html`: `make browser-test` runs them).
test: $(STAMP)
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_PAR) -q -m "not book_html" \
	  tests --nbval-lax --nbval-current-env notebooks solutions

test-gpu: $(STAMP)
	@$(BIN)/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else \
	  'make test-gpu: no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)')"
	$(TEST_ENV) COURSE_DEVICE=cuda $(BIN)/python -m pytest $(PYTEST_PAR) -q -m "not book_html" \
	  tests --nbval-lax --nbval-current-env notebooks solutions

# Opens on notebooks/; the kernel "Python 3 (course)" is the .venv's (installed by $(STAMP)).
# Extra options: make lab LAB_ARGS="--no-browser --port 8890" (as root: --allow-root).
LAB_ARGS ?=
lab: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab --ServerApp.root_dir=. \
	  --LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

exercises: $(STAMP)
	$(BIN)/python tools/make_exercises.py

# Graded-class mode (book/instructors.md): solutions/, the worked answers and the instructor's
# files left out, then checked. RELEASE_ARGS=--git makes DEST a git repository, ready to push.
student-release: $(STAMP)
	@test -n "$(DEST)" || { echo "usage: make student-release DEST=/a/new/folder [RELEASE_ARGS=--git]"; exit 2; }
	$(BIN)/python tools/student_release.py build "$(DEST)" $(RELEASE_ARGS)

check-student-release: $(STAMP)
	@test -n "$(DEST)" || { echo "usage: make check-student-release DEST=/the/release"; exit 2; }
	$(BIN)/python tools/student_release.py check "$(DEST)"

# Each benchmark writes its table to benchmarks/results/ (gan_modes.py prints its lines, which
# benchmarks/results/gan_modes_cpu.txt collects): tools/generated.py's "benchmarks" row.
bench: $(STAMP)
	$(BIN)/python tools/generated.py regen benchmarks

# Every generated file, with its command, is one row of tools/generated.py (`list` prints them):
# exercises/, book/bad_inputs.md, the glossary's order, the shipped classifier, requirements.txt,
# the benchmark results, the timings quoted in the README and the instructors' page.
regen: $(STAMP)
	$(BIN)/python tools/generated.py regen

check-generated: $(STAMP)
	$(BIN)/python tools/generated.py check

lint: $(STAMP)
	$(BIN)/ruff check course_lib tests benchmarks tools

freeze: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^torch' | \
	  { echo "# Pinned environment of the course (Python 3.11). torch is pinned to the CPU wheel version:"; \
	    echo "# an open range would pull several GB of CUDA packages. Regenerate with 'make freeze'."; \
	    cat; $(BIN)/python -c "import torch; print('torch==' + torch.__version__.split('+')[0])"; } \
	  > requirements.txt.new && mv requirements.txt.new requirements.txt

clean:
	rm -rf _build .pytest_cache
