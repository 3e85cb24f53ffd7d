#!/usr/bin/env bash
# Runs the steps that repo2docker (Binder) would run to build this repository's image, without
# Docker, and then executes one notebook with the kernel they install.
#
#   bash tools/binder_check.sh [notebook]      (default: notebooks/02b_evaluation_protocol.ipynb)
#
# 1. installs jupyter-repo2docker in a scratch venv and asks it for the Dockerfile it would
#    build (`repo2docker --no-build --debug`): the build must pick Python 3.11 (binder/runtime.txt),
#    `pip install -r binder/requirements.txt` and `binder/postBuild`;
# 2. in a fresh Python 3.11 venv that stands in for the image's conda environment, installs the
#    Jupyter packages of repo2docker's own Python 3.11 lock file at their versions, then runs
#    the Dockerfile's two repository steps: `pip install -r binder/requirements.txt` and
#    `./binder/postBuild` (pip must report no conflict);
# 3. executes the notebook with the kernel postBuild installed, from a clean clone (through
#    nbconvert, with tools/nbclient_fix.py applied).
# Without Docker, what this cannot check is the base image and conda itself.
# Where download.pytorch.org cannot be reached (offline CI), set BINDER_CHECK_OFFLINE=1: the
# extra index line is dropped from the copy (PyPI's build of the pinned torch is the same CPU
# build here).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
notebook="${1:-notebooks/02b_evaluation_protocol.ipynb}"
work="$(mktemp -d -t binder-check-XXXX)"
trap 'rm -rf "$work"' EXIT
python3.11 -m venv "$work/r2d"
"$work/r2d/bin/pip" install --quiet jupyter-repo2docker
git clone --quiet "$repo" "$work/repo"

"$work/r2d/bin/repo2docker" --no-build --no-run --debug --user-id 1000 --user-name jovyan \
  "$work/repo" >"$work/dockerfile.txt" 2>&1
for step in 'pip install --no-cache-dir -r "binder/requirements.txt"' './binder/postBuild'; do
  grep -qF "$step" "$work/dockerfile.txt" || { echo "repo2docker's Dockerfile lacks: $step"; exit 1; }
done
grep -q "python=3.11" "$work/dockerfile.txt" || { echo "repo2docker did not pick Python 3.11"; exit 1; }
echo "repo2docker: Python 3.11, binder/requirements.txt and binder/postBuild are the build steps"

lock="$("$work/r2d/bin/python" -c 'import repo2docker, pathlib; print(pathlib.Path(repo2docker.__file__).parent / "buildpacks/conda/environment.py-3.11-linux-64.lock")')"
pins="$(sed -n 's#.*/\(jupyterlab\|notebook\|ipykernel\|ipywidgets\|jupyter_server\|jupyter_client\|nbformat\|traitlets\|tornado\|pyzmq\)-\([0-9][0-9.]*\)-.*#\1==\2#p' "$lock" | sort -u)"
echo "repo2docker's Jupyter packages: $(echo $pins)"
python3.11 -m venv "$work/env"
"$work/env/bin/pip" install --quiet --upgrade pip
# shellcheck disable=SC2086
"$work/env/bin/pip" install --quiet $pins
cd "$work/repo"
if [ "${BINDER_CHECK_OFFLINE:-0}" = 1 ]; then sed -i '/extra-index-url/d' binder/requirements.txt; fi
"$work/env/bin/pip" install --no-cache-dir --quiet -r binder/requirements.txt
"$work/env/bin/pip" check
PATH="$work/env/bin:$PATH" ./binder/postBuild
git checkout --quiet binder/requirements.txt
cd "$(dirname "$notebook")"
# nbconvert executes through nbclient; tools/nbclient_fix.py keeps a widget cell from stalling
# it for the cell timeout (jupyter/nbclient#312), as in the book's build.
PATH="$work/env/bin:$PATH" COURSE_CACHE_DIR="$work/cache" \
  "$work/env/bin/python" "$work/repo/tools/nbclient_fix.py" --to notebook --execute "$(basename "$notebook")" \
  --output "$work/executed.ipynb"
echo "binder check passed: $notebook ran with the kernel that postBuild installed"
