# Two commands a user needs: `make run` (demo ingest) and `make test` (the suite).
# Both create .venv with nothing but the Python on PATH and the project's own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-installed-stamp
BROWSER_STAMP := $(VENV)/.browser-installed-stamp
OUT    ?= data

.PHONY: setup run report test test-fast test-browser chromium lint bench bench-clean bench-dedup bench-classify bench-stream bench-hostile bench-report bench-history bench-reprocess bench-polling clean

# Editable install: code changes need no reinstall (setuptools says so loudly).
# `make run` installs what running needs; the test targets add the test extras.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

# Playwright, to click through the report page in Debian's Chromium.
$(BROWSER_STAMP): $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,browser]'
	touch $(BROWSER_STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/news-ingest run --feeds seeds/demo.opml --out $(OUT)

report: $(STAMP)
	$(BIN)/news-ingest report --out $(OUT)

# PYTEST_ARGS: extra pytest arguments (.ci/run leaves the browser test to test-browser).
# One worker per core (pytest-xdist); PYTEST_ARGS=-n0 runs it in one process.
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS)

# Everything but the end-to-end tests (whole runs through the command line)
# and the browser test: the loop to run while changing code, about a minute.
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal $(PYTEST_ARGS) -m "not e2e and not browser"

# The report page rendered and clicked through in headless Chromium, from Debian's packages.
test-browser: $(BROWSER_STAMP) chromium
	$(BIN)/python -m pytest -m browser

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

CORPUS ?= ../shared/corpus/trafilatura-eval.tar.gz
CORPUS_DIR ?= /tmp/news-ingest-corpus
BENCH_PAGES ?= 300 3000
BENCH_WORKERS ?= 1

$(CORPUS_DIR)/evaldata.json:
	mkdir -p $(CORPUS_DIR) && tar xzf $(CORPUS) -C $(CORPUS_DIR)

bench: $(TEST_STAMP) $(CORPUS_DIR)/evaldata.json
	$(BIN)/python bench/bench_run.py --pages $(CORPUS_DIR)/eval $(foreach n,$(BENCH_PAGES),-n $(n)) \
		--workers $(BENCH_WORKERS)

bench-clean: $(TEST_STAMP) $(CORPUS_DIR)/evaldata.json
	$(BIN)/python bench/bench_clean.py --corpus $(CORPUS_DIR)

bench-classify: $(TEST_STAMP)
	$(BIN)/python bench/bench_classify.py

bench-dedup: $(TEST_STAMP) $(CORPUS_DIR)/evaldata.json
	$(BIN)/python bench/bench_dedup.py --corpus $(CORPUS_DIR)

bench-stream: $(TEST_STAMP) $(CORPUS_DIR)/evaldata.json
	$(BIN)/python bench/bench_stream.py --pages $(CORPUS_DIR)/eval

bench-hostile: $(TEST_STAMP)
	$(BIN)/python bench/bench_hostile.py

bench-report: $(BROWSER_STAMP) chromium
	$(BIN)/python bench/bench_report.py

# A run's cost against the dataset's history: HISTORY_ARGS="--runs 2880" for one size (see the script).
bench-polling: $(TEST_STAMP)
	$(BIN)/python bench/bench_polling.py $(POLLING_ARGS)

bench-history: $(TEST_STAMP)
	$(BIN)/python bench/bench_history.py $(HISTORY_ARGS)

bench-reprocess: $(TEST_STAMP) $(CORPUS_DIR)/evaldata.json
	$(BIN)/python bench/bench_reprocess.py --corpus $(CORPUS_DIR)/eval $(REPROCESS_ARGS)

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
