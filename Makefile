# Every target creates .venv when it is missing, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
# Links in the mail that `make run` sends lead to the server it starts, unless BASE_URL names
# another address (a server listening on every interface is reached through the loopback).
ifeq ($(strip $(BASE_URL)),)
BASE_URL = http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)
endif
# `make run` fills an empty database with synthetic stakeholders; DEMO_DATA=0 skips that.
DEMO_DATA ?= 1
DEMO_CONTACTS ?= 2000

.PHONY: run test lint format translations-extract translations-compile clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-app: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-app

run: export BASE_URL := $(BASE_URL)
run: $(VENV)/.installed-app
	$(FLASK) db upgrade
	$(FLASK) seed
ifneq ($(DEMO_DATA),0)
	$(FLASK) demo-data --contacts $(DEMO_CONTACTS) --if-empty
endif
	$(FLASK) users bootstrap-admin
	@echo "Back office: http://$(HOST):$(PORT)/admin/login    Public sign-up: http://$(HOST):$(PORT)/signup"
	@# One shell for both: the delivery worker runs in the background and is stopped (politely,
	@# SIGTERM lets in-flight messages finish) whenever the web server stops, Ctrl-C included.
	@$(FLASK) worker --quiet & worker=$$!; \
	echo "Delivery worker started (pid $$worker); it stops with the server."; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Translators: extract new strings, edit the .po files, then compile (the .mo files are committed
# so that a plain `pip install` serves all three languages).
translations-extract: $(VENV)/.installed-app
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o jeg_contacts/translations/messages.pot .
	$(BIN)/pybabel update -i jeg_contacts/translations/messages.pot -d jeg_contacts/translations --no-fuzzy-matching

translations-compile: $(VENV)/.installed-app
	$(BIN)/pybabel compile -d jeg_contacts/translations --statistics

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .import_linter_cache *.egg-info
