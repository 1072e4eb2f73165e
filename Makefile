# Two commands on a fresh Debian machine as root: `make demo` and `make test`.
# Each installs what is missing (Debian packages, then the project in .venv) and goes on.

SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
APT_PACKAGES := influxdb mosquitto mosquitto-clients socat chromium fonts-wqy-microhei
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test check lint typecheck deps system-deps schema clean

demo: deps
	$(VENV)/bin/python -m stackwatch.demo

test: deps
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider

check: deps lint typecheck

lint:
	$(VENV)/bin/ruff check stackwatch collector simulators alarms api dashboards reports control tests bench

typecheck:
	$(VENV)/bin/mypy

schema: deps
	$(VENV)/bin/stackwatch config schema -o schema/site.schema.json

deps: system-deps $(STAMP)

system-deps:
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	$(PYTHON) -c 'import ensurepip, venv' >/dev/null 2>&1 || missing="$$missing python3-venv python3-pip"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) demo-state .pytest_cache .mypy_cache .ruff_cache
