# mcastkit: `make synth` and `make test` are the quickstart; both install what they need.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
CONFIG ?= config/example.yaml
VENV := .venv
NODE_BIN := $(CURDIR)/node_modules/.bin
# jsii and the CDK CLI run on the pinned Node 22 from node_modules, not the machine's Node.
export PATH := $(NODE_BIN):$(CURDIR)/$(VENV)/bin:$(PATH)
export CDK_DISABLE_VERSION_CHECK := 1
export CDK_DISABLE_CLI_TELEMETRY := 1

.PHONY: help setup setup-dev synth test lint typecheck shellcheck actionlint cfn-lint test-packages pytest bench bench-relay bench-stream bench-overlay clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Python packages go in with uv (from PyPI, into the venv): an order of magnitude faster than pip.
# `make synth` needs the runtime only; the checks add requirements-dev.txt.
$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("mcastkit needs Python 3.11+") if sys.version_info < (3, 11) else None'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	test -x $(VENV)/bin/uv || $(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -r requirements.txt -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	node --version | grep -q '^v22\.' || { echo "node_modules did not provide Node 22" >&2; exit 1; }
	touch $@

setup: $(VENV)/.runtime node_modules/.installed ## create .venv and install the pinned CDK CLI and Node

setup-dev: setup $(VENV)/.dev

synth: setup ## synthesize every region of $(CONFIG) into cdk.out (no AWS credentials needed)
	cdk synth --quiet -c config=$(CONFIG) > /dev/null
	mcastkit summary cdk.out

# Debian packages some tests use, each with a file that shows it is there: iptables (the stream
# lab's induced loss), tshark (an independent MoldUDP64 and SoupBinTCP decoder), the CNI plugins
# (the EKS pods' network chain: host-device, tuning), curl (the EKS node's boot script),
# wireguard-tools and wireguard-go (the overlay over WireGuard, where the kernel has none). Installed as
# root where apt-get works; elsewhere those tests skip.
TEST_PACKAGES := iptables:/usr/sbin/iptables tshark:/usr/bin/tshark \
  containernetworking-plugins:/usr/lib/cni/host-device curl:/usr/bin/curl \
  wireguard-tools:/usr/bin/wg wireguard-go:/usr/bin/wireguard-go

test-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null; then \
	  missing=""; for entry in $(TEST_PACKAGES); do \
	    [ -e "$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; \
	  done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing$$missing for the tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } \
	      > /dev/null 2>&1 || echo "could not install$$missing: the tests that need them skip"; \
	  fi; \
	fi

pytest: setup-dev test-packages
	pytest

cfn-lint: setup-dev synth
	cfn-lint --non-zero-exit-code error -- cdk.out/*.template.json

lint: setup-dev ## ruff lint and format check (the CNI plugin as the Python 3.9 an EKS node has)
	ruff check mcastkit tests bench app.py
	ruff format --check mcastkit tests bench app.py
	ruff check --target-version py39 mcastkit/eks/cni/mcastkit-eni-ipam
	ruff format --check mcastkit/eks/cni/mcastkit-eni-ipam

typecheck: setup-dev
	mypy

shellcheck: setup-dev
	shellcheck bootstrap/*.sh tools/cdk-app

actionlint: setup-dev
	node tools/actionlint.mjs .github/workflows/*.yml

test: lint typecheck shellcheck actionlint cfn-lint pytest ## every check: ruff, mypy, shellcheck, actionlint, cfn-lint, pytest (incl. cdk-nag)

bench: setup-dev ## synth benchmark: JSON in bench/out/synth.json
	mkdir -p bench/out
	python bench/synth_bench.py --repeat 2 --cli > bench/out/synth.json
	python bench/synth_bench.py --table bench/out/synth.json

bench-relay: setup-dev ## relay benchmark in the netns lab (root; 3 repeats x 2 variants, up to 90 min): JSON in bench/out/relay.json
	mkdir -p bench/out
	python bench/relay_bench.py --install > bench/out/relay.json
	python bench/relay_bench.py --table bench/out/relay.json

bench-stream: setup-dev ## sequenced-stream benchmark in the netns lab (root; 3 repeats, about 10 min): JSON in bench/out/stream.json
	mkdir -p bench/out
	python bench/stream_bench.py > bench/out/stream.json
	python bench/stream_bench.py --table bench/out/stream.json

bench-overlay: setup-dev ## direct, relay, udptunnel, overlay (in clear and in WireGuard) and n2n in namespaces (root; 2 repeats, about 40 min): JSON in bench/out/overlay.json
	mkdir -p bench/out
	python bench/overlay_bench.py --install > bench/out/overlay.json
	python bench/overlay_bench.py --table bench/out/overlay.json

clean: ## remove build outputs (keeps .venv and node_modules)
	rm -rf cdk.out bench/out .pytest_cache .mypy_cache .ruff_cache
