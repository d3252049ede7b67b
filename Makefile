# Every target creates the environment it needs, so a fresh machine needs only `make demo` / `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
DEMO_DIR ?= demo
DEMO_ACCOUNTS ?= 3000
DEMO_DAYS ?= 30
# `make demo DEMO_SMS=smpp` sends the month over real SMPP to a local simulator instead.
DEMO_SMS ?= sandbox

.PHONY: install demo test test-future lint format bench fuzz clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/cuikuan init $(DEMO_DIR)
	$(BIN)/cuikuan sim generate --accounts $(DEMO_ACCOUNTS) --seed 7 --as-of 2026-11-29 \
		--out $(DEMO_DIR)/ledger.csv --payments-out $(DEMO_DIR)/payments.csv
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan import ledger.csv payments.csv
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan portfolio --as-of 2026-11-29
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan templates check
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan plan --as-of 2026-11-30 --dry-run --export plan-2026-11-30.csv
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan explain C00000026 --as-of 2026-11-30
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan sim month --from 2026-11-30 --days $(DEMO_DAYS) --seed 7 \
		$(if $(filter smpp,$(DEMO_SMS)),--smpp,)
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan portfolio --as-of 2026-12-30
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan outbox
	cd $(DEMO_DIR) && ../$(BIN)/cuikuan report --from 2026-11-30 --to 2026-12-29 --at 2027-01-02 --html report.html
	cd $(DEMO_DIR) && printf 'demo-console-2026\n' | ../$(BIN)/cuikuan users add demo --role supervisor
	cd $(DEMO_DIR) && printf 'demo-console-2026\n' | ../$(BIN)/cuikuan users add demo-admin --role admin
	@echo "The HTML report (opens offline): $(abspath $(DEMO_DIR))/report.html"
	@echo "The console: (cd $(DEMO_DIR) && ../$(BIN)/cuikuan serve), then open http://127.0.0.1:8000/console and log in as demo / demo-console-2026 (a supervisor; demo-admin, same password, for the admin page)"

lint: install
	$(BIN)/ruff check src tests benchmarks fuzz
	$(BIN)/ruff format --check src tests benchmarks fuzz
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format src tests benchmarks fuzz
	$(BIN)/ruff check --fix src tests benchmarks fuzz

test: lint
	$(BIN)/pytest -n 2

# The whole suite with the clock a year ahead (Debian's libfaketime): nothing may depend on
# today's date. CI runs it after `make test`.
test-future: install
	@command -v faketime >/dev/null || { echo "faketime is not installed (apt-get install faketime)"; exit 1; }
	faketime -f '+365d' $(BIN)/pytest -n 2 -p no:cacheprovider

bench: install
	$(PY) benchmarks/run.py

# Random files and template bodies against the import and the renderer, FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz: install
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(BIN)/pytest fuzz -q -p no:cacheprovider

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
