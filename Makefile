# natter: `make dev` runs the whole stack locally, `make test` runs every test. See README.md.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
STAMP := $(VENV)/.installed
# The default emulator (MiniStack) lives in a venv of its own: it pins botocore exactly, aws-sam-cli does not.
MINISTACK_VENV := .venv-ministack
MINISTACK_STAMP := $(MINISTACK_VENV)/.installed
# Tools of the venv (sam, cargo-lambda, cfn-lint, moto_server) come first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
# The Lambda architecture sam builds for: arm64 on AWS by default; this machine only has the x86_64 target.
ARCH ?= $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
CARGO ?= cargo

.PHONY: help setup build dev test lint fmt bench fuzz soak deploy clean

help:
	@echo "make setup   install the pinned Python tools into .venv (moto, sam, cargo-lambda, cfn-lint) and .venv-ministack"
	@echo "make dev     build and run the whole stack on ws://127.0.0.1:3001 (natter-local + MiniStack; NATTER_EMULATOR=moto for moto)"
	@echo "make test    every test: lints, unit, handler tests on moto, end-to-end over websockets"
	@echo "make lint    cargo fmt --check, clippy -D warnings, sam validate --lint, cfn-lint"
	@echo "make build   sam build (release binaries with cargo-lambda, ARCH=$(ARCH))"
	@echo "make bench   load, cost, cold starts and sizes into docs/performance.md (a few minutes)"
	@echo "make fuzz    fuzz frame parsing and cursor decoding, FUZZ_SECONDS (600) per target"
	@echo "make soak    clients dropping and reconnecting at random for SOAK_SECONDS (1800): loss 0, duplicates 0"
	@echo "make deploy  sam deploy --guided (needs AWS credentials)"

$(STAMP): infra/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements.txt
	touch $(STAMP)

$(MINISTACK_STAMP): infra/requirements-ministack.txt
	python3 -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet --disable-pip-version-check -r infra/requirements-ministack.txt
	touch $(MINISTACK_STAMP)

setup: $(STAMP) $(MINISTACK_STAMP)

# rustfmt.toml asks for imports_granularity = "Crate" (kept by hand on stable); stable rustfmt warns about it once per file.
lint: $(STAMP)
	$(CARGO) fmt --all --check 2> >(grep -v imports_granularity >&2)
	$(CARGO) clippy --workspace --all-targets --quiet -- -D warnings
	sam validate --lint
	cfn-lint
	infra/lint/selftest.sh
	python infra/deploy_test.py

fmt:
	$(CARGO) fmt --all 2> >(grep -v imports_granularity >&2)

# Foreground; prints the ws:// URL once it accepts connections; Ctrl-C stops everything it started.
dev: setup
	$(CARGO) build --workspace --bins --quiet
	./target/debug/natter-local $(ARGS)

# The long runs (fuzz, soak) run here briefly; their make targets run them long.
test: setup lint
	tests/browser/setup.sh
	$(CARGO) build --workspace --bins --quiet
	$(CARGO) test --workspace --quiet
	# The ports' contract on the other emulator too (the rest of the suite runs on the default, MiniStack).
	NATTER_EMULATOR=moto $(CARGO) test -p natter-tests --test contract --quiet
	# End to end again (the churn soak included) with DynamoDB's read lag, a second of it: what AWS can do.
	NATTER_LOCAL_READ_LAG_MS=1000 $(CARGO) test -p natter-tests --test e2e --quiet
	infra/fuzz.sh $(FUZZ_SMOKE_SECONDS)

FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 20
fuzz:
	infra/fuzz.sh $(FUZZ_SECONDS)

SOAK_SECONDS ?= 1800
soak: setup
	CARGO=$(CARGO) infra/soak.sh $(SOAK_SECONDS)

bench: setup
	CARGO=$(CARGO) infra/bench.sh

build: $(STAMP)
	sam build --beta-features --parameter-overrides Architecture=$(ARCH)

deploy: build
	sam deploy --guided --parameter-overrides Architecture=$(ARCH)

clean:
	$(CARGO) clean
	rm -rf .aws-sam
