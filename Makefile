# Liandong — `make run` starts the whole system, `make test` passes the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv servers debs form-debs run test unit e2e contracts check-contracts lint bench clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP) ## create the virtual environment from the pinned requirements

servers: ## start RabbitMQ and PostgreSQL if they are installed but not answering
	@bin/ensure-servers rabbitmq postgres

# Debian packages of the console's browser test (tests/e2e/test_console_e2e.py): Debian's
# chromium and chromedriver (+ CJK fonts, so screenshots show Chinese). Installed only when
# missing; if apt cannot install them the make goes on and that test skips, saying why.
DEBS := chromium chromium-driver fonts-noto-cjk

# Debian packages of the official forms (services/documents/forms.py): WeasyPrint's Pango,
# HarfBuzz's font subsetter (without it a CJK form takes ~10 s instead of <1 s) and the Noto
# CJK fonts. Installed only when missing; without them the forms answer 503, saying why.
FORM_DEBS := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk

form-debs: ## install the Debian libraries and CJK fonts of the PDF forms (apt), if missing
	@missing=$$(for p in $(FORM_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "form-debs: installing" $$missing; \
	  { $$sudo apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; } || \
	  echo "form-debs: could not install" $$missing"; the PDF forms will answer 503" >&2; \
	fi

debs: form-debs ## install chromium + chromium-driver (apt) for the browser test, if missing
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  echo "debs: installing $(DEBS)"; \
	  { $$sudo apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBS); } || \
	  echo "debs: could not install $(DEBS); the browser test will be skipped" >&2; \
	fi

# `make run` is a development machine: LIANDONG_ENV=development lets the services create
# development token keys on first use under var/keys/tokens (production refuses them).
run: venv form-debs ## start every service (SQLite by default; DATABASE_URL for PostgreSQL)
	@bin/ensure-servers rabbitmq
	LIANDONG_ENV=development $(BIN)/liandong run

test: venv servers debs ## all tests: unit, contracts, end to end on SQLite and PostgreSQL
	$(BIN)/ruff check shared services tests bench
	$(BIN)/python -m shared.contracts --check
	$(BIN)/pytest -q -p no:warnings --durations=25

unit: venv ## fast domain tests only
	$(BIN)/pytest -q -p no:warnings tests/unit

e2e: venv servers debs ## end-to-end tests only
	$(BIN)/pytest -q -p no:warnings tests/e2e

contracts: venv ## regenerate contracts/ (JSON Schemas, AsyncAPI) from the code
	$(BIN)/python -m shared.contracts

lint: venv ## ruff
	$(BIN)/ruff check shared services tests bench

bench: venv servers ## (c) Liandong vs (d) the plain nameko peer, recovery, board at 1M, then history at 100k (ARGS=--smoke|--full|--help)
	$(BIN)/python -m bench $(ARGS)
	$(BIN)/python -m bench.history $(filter --smoke --full,$(ARGS))

clean: ## remove the virtual environment and local data
	rm -rf $(VENV) var
