# elastic-ingest (Rust) — build, test and run the Slack connector service.
#
#   make run    one-command local demo on an embedded test Elasticsearch (Ctrl-C stops it)
#   make test   installs what the tests need, then fmt, clippy and every test
#
# Nothing is installed outside this directory: the test Elasticsearch (osmem-server, PyPI)
# goes into .tools/ (git-ignored).

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
OSMEM_VERSION := 0.1.6
OSMEM_SHA256 := 86fa52768fb90c8ac4ed4dc1bf040c6da5fd827d4cacc8ef3af91bc2d6b2e260
OSMEM_BIN := .tools/osmem/osmem_server/bin/osmem-server
export OSMEM_SERVER_BIN := $(abspath $(OSMEM_BIN))

.PHONY: all build release tools test lint fmt run clean

all: build

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --workspace

# The local test Elasticsearch, pinned and checksummed.
tools: $(OSMEM_BIN)

$(OSMEM_BIN):
	@command -v $(PYTHON) >/dev/null || { echo "python3 with pip is needed to install osmem-server (apt-get install python3-pip)"; exit 1; }
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --target .tools/osmem osmem-server==$(OSMEM_VERSION)
	@echo "$(OSMEM_SHA256)  $(OSMEM_BIN)" | sha256sum -c --quiet - || { echo "osmem-server checksum mismatch"; rm -rf .tools/osmem; exit 1; }
	@chmod +x $(OSMEM_BIN)

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

test: tools lint
	$(CARGO) test --workspace

run: tools
	$(CARGO) build -p connectors
	./scripts/run-local.sh

clean:
	$(CARGO) clean
	rm -rf .tools
