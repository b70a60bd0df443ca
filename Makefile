# Developer and CI entry points for ghostwarden.core (GNU make, Debian/Ubuntu).
#   make test   set everything up, then sanity, unit and integration tests (what CI runs)
#   make demo   set everything up, then run playbooks/demo.yml
# Nothing here changes the root network namespace: tests that need the kernel build their own
# network namespaces and remove them.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# `make test` runs its steps in order and stops at the first failure, also under -j.
.NOTPARALLEL:

ROOT := $(patsubst %/,%,$(dir $(realpath $(lastword $(MAKEFILE_LIST)))))
VENV := $(ROOT)/.venv
PYTHON := $(VENV)/bin/python
COLLECTIONS_PATH := $(ROOT)/.cache/collections

# Settings for ansible-playbook runs against the working tree.
ANSIBLE_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS_PATH) \
	ANSIBLE_CALLBACK_RESULT_FORMAT=yaml \
	ANSIBLE_LOCALHOST_WARNING=false \
	ANSIBLE_INVENTORY_UNPARSED_WARNING=false

.PHONY: help deps units fuzz sanity integration test demo demo-clean bench clean

help:
	@echo "make deps         install system packages (root) and .venv, link .cache/collections"
	@echo "make sanity       ansible-test sanity on the working tree (scripts/sanity.sh)"
	@echo "make units        pytest tests/unit"
	@echo "make fuzz         the unit tests with fresh random examples for the property tests"
	@echo "make integration  pytest tests/integration (root; lab network namespaces)"
	@echo "make test         deps, sanity, units, integration; stops at the first failure"
	@echo "make demo         deps, then ansible-playbook playbooks/demo.yml"
	@echo "make demo-clean   remove what the demo set up"
	@echo "make bench        run the benchmarks in bench/"
	@echo "make clean        remove test output and caches (keeps .venv)"

deps:
	@$(ROOT)/scripts/setup.sh

sanity: deps
	$(ROOT)/scripts/sanity.sh

# pytest exits with 5 when it collected no tests; for the unit tests that is a failure.
units: deps
	@cd $(ROOT) && rc=0 && $(PYTHON) -m pytest tests/unit || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "units: pytest collected no tests in tests/unit" >&2; fi; \
	exit $$rc

fuzz: deps
	cd $(ROOT) && GHOSTWARDEN_FUZZ=1 $(PYTHON) -m pytest tests/unit

integration: deps
	@cd $(ROOT) && if [[ -z "$$(find tests/integration -name 'test_*.py' -print -quit 2>/dev/null)" ]]; then \
		echo "integration: no tests in tests/integration yet"; exit 0; \
	fi; \
	if [[ "$$(id -u)" -ne 0 ]]; then \
		echo "integration: the tests build network namespaces and must run as root" >&2; exit 1; \
	fi; \
	rc=0 && $(PYTHON) -m pytest tests/integration || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "integration: pytest collected no tests in tests/integration" >&2; fi; \
	exit $$rc

test: deps sanity units integration

demo: deps
	cd $(ROOT) && $(ANSIBLE_ENV) $(VENV)/bin/ansible-playbook playbooks/demo.yml

# The demo only renders so far; it leaves nothing behind on the host.
demo-clean:
	@echo "demo-clean: the demo renders only and set up nothing; nothing to remove"

bench: deps
	@cd $(ROOT) && shopt -s nullglob && scripts=(bench/*.py) && \
	if [[ $${#scripts[@]} -eq 0 ]]; then echo "bench: no benchmark scripts in bench/" >&2; exit 1; fi; \
	for script in "$${scripts[@]}"; do echo "== $$script"; $(PYTHON) "$$script"; done

clean:
	rm -rf $(ROOT)/tests/output $(ROOT)/.pytest_cache $(ROOT)/.hypothesis
