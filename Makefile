# Two commands: `make reproduce` (set up, get the data, run the three notebooks in full) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED_HMT := ../shared/data/hmt
# The notebooks, in the order they run: the one list (make reproduce and tests/test_notebooks.py read it)
NOTEBOOKS := MNIST1D.ipynb HMT.ipynb XAI_methods.ipynb
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: all setup data test test-fast test-colab test-browser lint gpu-check colab-links reproduce clean-cache

all: test

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (.venv)" > /dev/null
	touch $(STAMP)

# HMT tiles: $$HMT_DIR if set; else link the shared copy (development, CI); else download from Zenodo.
data: $(STAMP)
	@if [ -n "$$HMT_DIR" ]; then \
	  echo "HMT_DIR=$$HMT_DIR: using it, nothing to do"; \
	elif [ -e data/hmt ]; then \
	  echo "data/hmt is present"; \
	elif [ -d $(SHARED_HMT) ]; then \
	  mkdir -p data && ln -s ../$(SHARED_HMT) data/hmt && echo "linked data/hmt -> $(SHARED_HMT)"; \
	else \
	  $(PY) -c "import hmt_utils; hmt_utils.download_hmt('data/hmt')"; \
	fi

# --durations: the slowest tests, listed at the end, so that the suite's time can be kept in check.
# Two workers (pytest-xdist; TEST_WORKERS=0 runs in one process), each test module on one worker, so that
# its fixtures (the data, the models) load once.
TEST_WORKERS ?= 2
test: $(STAMP) data
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadscope --durations=25 tests

# The fast tier (under 3 minutes on a 2-core CPU): everything but the tests marked slow (the notebooks,
# keras.applications, the real models and data, child processes; see tests/conftest.py).
test-fast: $(STAMP) data
	$(PY) -m pytest -q -m "not slow" tests

# The unit tests (not the notebooks) in a Colab-like environment: Python 3.13, TensorFlow 2.20, Keras 3.13 and
# NumPy 2.1, the floor of requirements.txt.
COLAB_VENV := .venv-colab
COLAB_PYTHON ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) python3.13)
COLAB_PINS := "tensorflow==2.20.*" "keras==3.13.*" "numpy==2.1.*"

$(COLAB_VENV)/.installed: requirements.txt
	test -x $(COLAB_VENV)/bin/python || $(COLAB_PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_VENV)/bin/python -m pip install --upgrade --quiet pip
	$(COLAB_VENV)/bin/python -m pip install --quiet -r requirements.txt $(COLAB_PINS)
	touch $@

# The library under Colab's versions; the notebooks and the long-run tools (tests/tools) are run by make test in the
# project's own environment (the tools run there, not in Colab).
test-colab: $(COLAB_VENV)/.installed data
	$(COLAB_VENV)/bin/python -c "import sys, tensorflow as tf, keras; print('Colab-like:', sys.version.split()[0], 'TF', tf.__version__, 'Keras', keras.__version__)"
	$(COLAB_VENV)/bin/python -m pytest -q tests --ignore=tests/test_notebooks.py --ignore=tests/tools

# The explorer in a real browser: Voila serves it, headless Chromium (Debian's, driven by Playwright) clicks it.
CHROMIUM ?= /usr/bin/chromium
test-browser: $(STAMP) data
	test -x $(CHROMIUM) || apt-get install -y -q chromium > /dev/null || (apt-get update -q > /dev/null && apt-get install -y -q chromium > /dev/null)
	$(PY) -m pip install --quiet -r tests/browser-requirements.txt
	CHROMIUM=$(CHROMIUM) XAI_BROWSER_TEST=1 $(PY) -m pytest -q tests/xai/explore/test_browser.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# CPU and GPU give the same maps, and the GPU's speed; without a GPU, a short CPU-only dry run.
gpu-check: $(STAMP) data
	$(PY) benchmarks/gpu_check.py

# For whoever publishes the repository: Colab badges in the README and REPO_URL in each notebook.
colab-links:
	$(PYTHON) tools/colab_links.py

# Full runs, in place: regenerates models/ (every notebook that trains, trains: RETRAIN=True), figures/ and the
# notebooks' outputs; the cleaner folds the parameters given into each notebook's parameters cell.
reproduce: $(STAMP) data
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  retrain=$$(grep -q '"RETRAIN = ' $$nb && echo "-p RETRAIN True"); \
	  $(VENV)/bin/papermill --cwd . $$nb $$nb $$retrain || exit 1; \
	  $(PY) tools/clean_notebook.py $$nb || exit 1; \
	done

clean-cache:
	rm -rf data/cache
