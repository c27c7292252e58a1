# shipshape: one command for the demo, one for the tests. Both install what they need.
# Run `make help` for the list of targets.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
BIN         := $(CURDIR)/$(VENV)/bin
PYTHON      ?= python3
# Podman only works here with this configuration (runc, no default ulimits): see the file.
export CONTAINERS_CONF := $(CURDIR)/containers.conf
export ANSIBLE_CONFIG  := $(CURDIR)/ansible.cfg
export PATH            := $(BIN):$(PATH)
# Plain logs: CI and .cache/logs are read as text.
export NO_COLOR := 1
export PY_COLORS := 0
export ANSIBLE_NOCOLOR := 1
# The test images are tagged by a hash of their recipe; scenarios read these variables: Debian 12
# for every scenario but nginx and deploy, which run on Debian 13.
export SHIPSHAPE_TEST_IMAGE = $(shell molecule/image/build.sh --print-tag)
export SHIPSHAPE_TEST_IMAGE_DEBIAN13 = $(shell molecule/image/build.sh --print-tag trixie)

# Molecule scenarios `make test` runs, longest first so the short ones fill in beside them,
# and how many at once (each boots systemd hosts). Every scenario directory must be listed.
# Three at once on two cores: much of a scenario is waiting (podman exec, systemd, settle
# periods), and the two flow scenarios alone take most of the run.
ALL_SCENARIOS := $(sort $(notdir $(patsubst %/molecule.yml,%,$(wildcard molecule/*/molecule.yml))))
SCENARIOS   ?= recovery deploy bootstrap-multi postgresql supervisor nginx redis nodejs base
# Scenarios that exist but do not pass yet, each with its issue: not run by `make test`.
SCENARIOS_PENDING :=
JOBS        ?= 3
LOGDIR      := .cache/logs

# Debian packages the tooling needs on the machine that runs it (the controller).
HOST_PACKAGES := podman runc debootstrap uidmap slirp4netns fuse-overlayfs \
                 python3-venv python3-pip nodejs npm git curl make

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  \033[1m%-16s\033[0m %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install the Debian packages the toolkit needs (as root; skips what is there)
	@missing=$$(for p in $(HOST_PACKAGES); do \
	    if [ $$p = nodejs ] || [ $$p = npm ]; then command -v $${p/nodejs/node} >/dev/null && continue; fi; \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  [ "$$(id -u)" = 0 ] || { echo "run as root, or install these packages: $$missing" >&2; exit 1; }; \
	  apt-get update -qq || echo "apt-get update reported errors (an unreachable extra source?); going on"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["dev"]))' > $(VENV)/requirements.txt
	$(BIN)/pip install -q -r $(VENV)/requirements.txt
	touch $@

.PHONY: venv
venv: deps $(VENV)/.installed ## Create the Python toolchain in .venv (rebuilt when pyproject.toml changes)

.PHONY: image
image: deps ## Build the test-host images, Debian 12 and 13 (once per recipe hash)
	molecule/image/build.sh & bookworm=$$!; molecule/image/build.sh trixie; wait $$bookworm

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production profile), ruff, docs/variables.md up to date, typed variable reads
	yamllint --strict .
	ansible-lint
	ruff check .
	ruff format --check .
	python scripts/gen_variables.py --check
	python scripts/check_var_reads.py

.PHONY: docs
docs: venv ## Regenerate docs/variables.md from the roles' argument specs
	python scripts/gen_variables.py

.PHONY: unit
unit: venv ## Unit tests of the Python plugins and of the sample app
	pytest -q plugins/tests/unit
	@# The lockfile is made with the test hosts' npm 9 (Debian's); npm 10+ `ci` also wants
	@# entries for other platforms, so on such a controller install from it without `ci`.
	cd examples/app && { npm ci --no-audit --no-fund --prefer-offline >/dev/null 2>&1 || \
	  npm install --no-save --no-audit --no-fund --prefer-offline >/dev/null; } && npm test

# The scenarios' playbook runs (a few hundred) keep Ansible's module payloads from one run to the
# next (plugins/callback/ansiballz_cache.py): each run would build every module's payload again.
# Not for the demo and the benchmarks, which pay what an operator's run pays.
molecule scenario: export SHIPSHAPE_ANSIBALLZ_CACHE := $(CURDIR)/.cache/ansiballz

.PHONY: molecule
molecule: venv image ## Every molecule scenario, $(JOBS) at a time (logs in .cache/logs)
	@unlisted="$(filter-out $(SCENARIOS) $(SCENARIOS_PENDING),$(ALL_SCENARIOS))"; \
	  if [ -n "$$unlisted" ] && [ "$(origin SCENARIOS)" = file ]; then \
	    echo "molecule scenarios missing from SCENARIOS (or SCENARIOS_PENDING) in the Makefile: $$unlisted" >&2; \
	    exit 1; fi
	@mkdir -p $(LOGDIR)
	@# A failed scenario exits 1, not 255: xargs then lets the others finish (and exits 123)
	@# instead of returning at once and leaving them running into the next run's containers.
	@printf '%s\n' $(SCENARIOS) | xargs -P $(JOBS) -I{} bash -c \
	  'start=$$(date +%s); if molecule test -s {} > $(LOGDIR)/molecule-{}.log 2>&1; then \
	     echo "molecule {}: passed in $$(( $$(date +%s) - start ))s"; \
	   else echo "molecule {}: FAILED after $$(( $$(date +%s) - start ))s, last lines:"; \
	     tail -n 60 $(LOGDIR)/molecule-{}.log; exit 1; fi'

.PHONY: scenario
scenario: venv image ## One molecule scenario: make scenario S=base
	molecule test -s $(S)

.PHONY: checks
checks: lint unit ## The quick checks: lint and unit tests (a minute or two; run them before make test)

# One make with four jobs: the venv and the images are made side by side (pip and debootstrap
# mostly wait on the network), the quick checks run while the images build (they need no test
# host), and the scenarios start as soon as both are there. A failed check still fails make
# test, once the running scenarios end.
.PHONY: test
test: ## Everything CI runs: lint, unit tests, every molecule scenario
	@$(MAKE) --no-print-directory -j 4 checks molecule
	@echo "make test: all passed"

.PHONY: demo
demo: venv image ## Boot a local test server, bootstrap it, deploy the sample app, print the URL
	scripts/demo.sh up

.PHONY: demo-diagnose
demo-diagnose: venv ## Diagnose the demo server (report in reports/)
	scripts/demo.sh diagnose

.PHONY: demo-recover
demo-recover: venv ## Run the recovery playbook against the demo server
	scripts/demo.sh recover

.PHONY: demo-clean
demo-clean: ## Remove the demo server
	scripts/demo.sh clean

.PHONY: bench
bench: demo ## Deploy benchmarks on the demo server (results in docs/benchmarks.md)
	bench/deploy.sh

.PHONY: clean
clean: ## Remove the venv and caches (the test image stays)
	rm -rf $(VENV) .cache
