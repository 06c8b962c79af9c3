# Smart Protect: Platinum Protection.
#   make run            the service on the embedded SQLite database, http://127.0.0.1:8000
#   make test           ruff and the whole test-suite on SQLite
#   make test-postgres  the same suite on PostgreSQL (SMARTPROTECT_DATABASE_URL)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
CHROMIUM ?= /usr/bin/chromium
POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: run test test-postgres lint format system-deps messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

run: $(STAMP)
	mkdir -p var
	SMARTPROTECT_ENV=$${SMARTPROTECT_ENV:-development} $(BIN)/smartprotect db upgrade
	SMARTPROTECT_ENV=$${SMARTPROTECT_ENV:-development} $(BIN)/smartprotect serve

# Tests use real system programs: Debian's chromium (browser tests), gpsd with gpsfake (the
# GPS provider), and a desktop for the lock's message (an X display, a session bus and a
# notification daemon). Install them when we can, else say what to do.
DESKTOP_PACKAGES := dunst libnotify-bin xvfb dbus systemd
SYSTEM_TOOLS := $(CHROMIUM) /usr/bin/gpsfake /usr/bin/dunst /usr/bin/notify-send /usr/bin/Xvfb /usr/bin/dbus-daemon /usr/bin/dbus-send /usr/bin/busctl
system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do [ -x "$$tool" ] || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian's chromium, gpsd, gpsd-clients and $(DESKTOP_PACKAGES) for the tests..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium fonts-dejavu-core gpsd gpsd-clients $(DESKTOP_PACKAGES) >/dev/null) \
	      || { echo "Could not install them: run 'apt-get install chromium gpsd gpsd-clients $(DESKTOP_PACKAGES)' as root."; exit 1; }; \
	  else \
	    echo "The tests need$$missing: run 'sudo apt-get install chromium gpsd gpsd-clients $(DESKTOP_PACKAGES)' (Debian/Ubuntu), or set CHROMIUM=/path/to/chromium."; \
	    exit 1; \
	  fi; \
	fi

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: $(DEV_STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

test: $(DEV_STAMP) system-deps lint
	SMARTPROTECT_CHROMIUM=$(CHROMIUM) $(BIN)/pytest

test-postgres: $(DEV_STAMP) system-deps
	SMARTPROTECT_CHROMIUM=$(CHROMIUM) SMARTPROTECT_DATABASE_URL=$(or $(SMARTPROTECT_DATABASE_URL),$(POSTGRES_URL)) $(BIN)/pytest

# Re-extract translatable strings and merge them into the Russian catalog.
messages: $(DEV_STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-location --sort-output -o src/smartprotect/locale/messages.pot .
	$(BIN)/pybabel update -i src/smartprotect/locale/messages.pot -d src/smartprotect/locale -l ru --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) var .pytest_cache test-artifacts
