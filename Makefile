# Developer and CI entry points for ghostwarden.core (GNU make, Debian/Ubuntu).
#   make test   set everything up, then sanity, unit, integration tests and the molecule scenarios (what CI runs)
#   make demo   set everything up, build a lab of network namespaces, apply a cluster to it and prove it with traffic
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

.PHONY: help deps units fuzz sanity integration molecule vm-test molecule-vm test demo demo-clean bench clean

help:
	@echo "make deps         install system packages (root) and .venv, link .cache/collections"
	@echo "make sanity       ansible-test sanity on the working tree (scripts/sanity.sh)"
	@echo "make units        pytest tests/unit"
	@echo "make fuzz         the unit tests with fresh random examples for the property tests"
	@echo "make integration  pytest tests/integration (root; lab network namespaces)"
	@echo "make molecule     molecule test -s default and -s cluster (root; lab network namespaces)"
	@echo "make vm-test      pytest tests/vm and molecule -s vm: Debian guests under qemu (root; docs/vm-lab.md)"
	@echo "make molecule-vm  molecule test -s vm alone (root)"
	@echo "make test         deps, sanity, units, integration, molecule, vm-test; stops at the first failure"
	@echo "make demo         deps, then a 3-node lab with a cluster topology, proved with traffic"
	@echo "make demo-clean   remove the demo's lab (namespaces, processes, state)"
	@echo "make bench        every benchmark in bench/ (root, about 20 min), then docs/performance.md from their figures"
	@echo "make clean        remove test output and caches (keeps .venv)"

deps:
	@$(ROOT)/scripts/setup.sh

sanity: deps
	$(ROOT)/scripts/sanity.sh

# pytest exits with 5 when it collected no tests; for the unit tests that is a failure.
units: deps
	@cd $(ROOT) && rc=0 && $(PYTHON) -m pytest -m "not vlan_kernel" tests/unit || rc=$$?; \
	if [[ $$rc -eq 5 ]]; then echo "units: pytest collected no tests in tests/unit" >&2; fi; \
	exit $$rc

fuzz: deps
	cd $(ROOT) && GHOSTWARDEN_FUZZ=1 $(PYTHON) -m pytest -m "not vlan_kernel" tests/unit

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

# molecule finds ansible-playbook and ansible-config on PATH.
molecule: deps
	@if [[ "$$(id -u)" -ne 0 ]]; then \
		echo "molecule: the scenarios build network namespaces and must run as root" >&2; exit 1; \
	fi
	cd $(ROOT) && for scenario in default cluster; do \
		PATH=$(VENV)/bin:$$PATH $(ANSIBLE_ENV) $(VENV)/bin/molecule test -s $$scenario; \
	done

# The VM lab (tests/vm): the guest image is built once into /var/cache/ghostwarden-vmlab.
vm-test: deps
	@if [[ "$$(id -u)" -ne 0 ]]; then \
		echo "vm-test: the VM lab builds a network namespace and boots qemu guests; run as root" >&2; exit 1; \
	fi
	cd $(ROOT) && $(PYTHON) -m pytest --durations=15 tests/vm
	$(MAKE) --no-print-directory molecule-vm

# molecule runs inside the VM lab's namespace, so that its SSH reaches the guest from inside the lab.
molecule-vm: deps
	@if [[ "$$(id -u)" -ne 0 ]]; then \
		echo "molecule-vm: the scenario boots a qemu guest in a lab network namespace; run as root" >&2; exit 1; \
	fi
	cd $(ROOT) && PATH=$(VENV)/bin:$$PATH $(ANSIBLE_ENV) $(PYTHON) tests/vm/vmlab.py exec --lab molecule -- \
		$(VENV)/bin/molecule test -s vm

test: deps sanity units integration molecule vm-test

demo: deps
	@if [[ "$$(id -u)" -ne 0 ]]; then echo "demo: the lab is made of network namespaces; run as root" >&2; exit 1; fi
	cd $(ROOT) && $(ANSIBLE_ENV) $(VENV)/bin/ansible-playbook ghostwarden.core.demo

demo-clean: deps
	cd $(ROOT) && $(ANSIBLE_ENV) $(VENV)/bin/ansible-playbook ghostwarden.core.demo -e ghostwarden_demo_state=absent

# Every benchmark writes its figures with --json into tests/output/bench/ (kept: bench/report.py --dir
# tests/output/bench writes the page again); bench/report.py makes docs/performance.md of them (a
# benchmark that fails or is missing is said there). BENCH_ARGS_<name> adds options to one of them,
# e.g. make bench BENCH_ARGS_e2e="--cluster-sizes=3 --repeat 1".
bench: deps
	@if [[ "$$(id -u)" -ne 0 ]]; then \
		echo "bench: the benchmarks build network namespaces and must run as root" >&2; exit 1; \
	fi
	@cd $(ROOT) && out=tests/output/bench && rm -rf "$$out" && mkdir -p "$$out" && \
	failed=() && \
	for name in render apply memory e2e packet_path; do \
		script="bench/bench_$$name.py"; \
		if [[ ! -f "$$script" ]]; then echo "== $$script: not in this checkout, skipped"; continue; fi; \
		echo "== $$script (started $$(date -u +%H:%M:%S), load average $$(cut -d' ' -f1-3 /proc/loadavg))"; \
		started=$$SECONDS && options="BENCH_ARGS_$$name" && read -ra options <<< "$${!options:-}"; \
		$(PYTHON) "$$script" --json "$$out/$$name.json" "$${options[@]}" || failed+=("$$script"); \
		echo "$$name $$((SECONDS - started))" >> "$$out/durations.txt"; \
	done; \
	$(PYTHON) bench/report.py --dir "$$out" --output docs/performance.md; \
	if [[ $${#failed[@]} -gt 0 ]]; then echo "bench: failed: $${failed[*]}" >&2; exit 1; fi

clean:
	rm -rf $(ROOT)/tests/output $(ROOT)/.pytest_cache $(ROOT)/.hypothesis
