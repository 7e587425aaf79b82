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

.PHONY: all build release tools test lint fmt run clean docker-build docker-run docker-check

IMAGE ?= elastic-ingest-rust:$(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
CONFIG_DIR ?= $(HOME)/connectors-config

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

# The image (needs a Docker engine).
docker-build:
	docker build -t $(IMAGE) .

docker-run:
	docker run --rm -v $(CONFIG_DIR):/config --network host $(IMAGE) /app/bin/elastic-ingest -c /config/config.yml

# The Dockerfile's build and COPY steps replayed outside Docker into target/docker-stage/.
docker-check:
	./scripts/docker-stage-check.sh
