# Two commands: `make reproduce` (set up, get the data, run the three notebooks in full) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SHARED_HMT := ../shared/data/hmt
NOTEBOOKS := MNIST1D.ipynb HMT.ipynb XAI_methods.ipynb
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: all setup data test reproduce clean-cache

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

test: $(STAMP) data
	$(PY) -m pytest -q tests

# Full runs, in place: regenerates models/, figures/ and the notebooks' outputs.
reproduce: $(STAMP) data
	@for nb in $(NOTEBOOKS); do \
	  echo "== $$nb"; \
	  $(VENV)/bin/papermill --cwd . $$nb $$nb || exit 1; \
	  $(PY) tools/clean_notebook.py $$nb || exit 1; \
	done

clean-cache:
	rm -rf data/cache
