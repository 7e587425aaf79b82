# elastic-ingest (Rust) — build, test and run the Slack connector service.
#
#   make run    one-command local demo: in-memory Elasticsearch + ES shim + simulated Slack
#               workspace + the service syncing it (Ctrl-C stops everything)
#   make test   installs what the tests need, then fmt, clippy, every test, the small ftest in
#               both protocol modes and the Dockerfile staging check
#   make ftest NAME=slack DATA_SIZE=small|medium|large   end-to-end test (release build)
#   make ftest-resume   a medium full sync interrupted (SIGKILL, SIGTERM) and resumed
#   make ftest-dls      DLS on: private channels and DMs, access-control syncs, a member leaving
#   make ftest-live     live updates: 200 mutations only as Slack events (HTTP, Socket Mode), index exact in 5 s
#   make ftest-workspace   medium, every document type on, then one full sync per filter: each index exact
#   (make test also runs the small ftest with --files: shared files and their content, 404/403/
#   truncated downloads, metadata.files and the peak RSS against its 25 MB budget; ~15 s; and
#   the small ftest with --workspace: every document type, then each filter; ~45 s both modes)
#   make bench  benchmarks; results appended to BENCHMARKS.md (make bench-budget: its Slack
#               budget part alone; make bench-es: its Elasticsearch-cost part alone)
#   make fuzz   libFuzzer on the parsers of outside input, FUZZ_SECONDS (60) per target
#               (cargo-fuzz goes into .tools/; the property tests run in `make test` anyway)
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

.PHONY: all build release tools test unit-test lint fmt run ftest ftest-resume ftest-dls ftest-live ftest-workspace bench-live bench bench-budget bench-es fuzz clean docker-build docker-run docker-check

NAME ?= slack
DATA_SIZE ?= small
MODE ?= both

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

test: tools lint unit-test
	$(CARGO) build --workspace
	./target/debug/ftest --name slack --data-size small --mode both --bin-dir target/debug --work-dir target/ftest-ci
	./target/debug/ftest --name slack --data-size small --mode both --bin-dir target/debug --work-dir target/ftest-ci-dls --dls
	./target/debug/ftest --name slack --data-size small --mode both --bin-dir target/debug --work-dir target/ftest-ci-live --live
	./target/debug/ftest --name slack --data-size small --mode api --bin-dir target/debug --work-dir target/ftest-ci-live-socket --live --live-transport socket
	./target/debug/ftest --name slack --data-size small --mode both --bin-dir target/debug --work-dir target/ftest-ci-files --files
	./target/debug/ftest --name slack --data-size small --mode both --bin-dir target/debug --work-dir target/ftest-ci-workspace --workspace
	./scripts/docker-stage-check.sh

unit-test: tools
	$(CARGO) test --workspace

run: tools
	$(CARGO) build -p connectors -p ftest
	./target/debug/ftest --serve --mode api --data-size small --bin-dir target/debug --work-dir target/run

# End-to-end: osmem + ES shim + Slack simulator + elastic-ingest, both protocol modes.
ftest: tools
	$(CARGO) build --release -p connectors -p ftest
	./target/release/ftest --name $(NAME) --data-size $(DATA_SIZE) --mode $(MODE) --bin-dir target/release

# Resumable full syncs: a medium full sync interrupted halfway by SIGKILL, then by SIGTERM,
# and resumed by a new service (index exact, at most 10% more Slack calls than an
# uninterrupted one). Slack is the bottleneck (tiers on, 20x), as in production. ~5 min each.
ftest-resume: tools
	$(CARGO) build --release -p connectors -p ftest
	./target/release/ftest --data-size medium --mode api --bin-dir target/release --work-dir target/ftest-resume --interrupt kill --rate-limits --time-scale 20
	./target/release/ftest --data-size medium --mode api --bin-dir target/release --work-dir target/ftest-resume --interrupt term --rate-limits --time-scale 20

# Document-level security: private channels, DMs and group DMs with DLS, then access-control
# jobs (identity documents exact; a member leaving a private channel is one identity rewrite
# and no content rewrite), both protocol modes. The medium run prints the access-control
# sync's Slack calls and time (BENCHMARKS.md). Seconds for small; about a minute for medium.
ftest-dls: tools
	$(CARGO) build --release -p connectors -p ftest
	./target/release/ftest --data-size $(DATA_SIZE) --mode $(MODE) --bin-dir target/release --work-dir target/ftest-dls --dls

# The whole workspace (issue 19), medium: the first sync with every document type on (users,
# channels, messages, team, user groups, channel members, files) exact against the simulator's
# expected set, then one full sync per filter of the form (archived channels, include and exclude
# patterns, bot messages, join/leave notices, a start date) and one with the filters off again,
# each exact, the filtered documents absent and the sweep's deletions counted; prints per filter
# what it removed and the service's peak RSS. Each round is a full sync of ~20k documents into
# osmem: about 6 minutes per mode (BENCHMARKS.md); MODE=api for one mode.
ftest-workspace: tools
	$(CARGO) build --release -p connectors -p ftest
	./target/release/ftest --data-size medium --mode $(MODE) --bin-dir target/release --work-dir target/ftest-workspace --workspace

# Live updates (issue 17): after the first sync, 200 mutations arrive only as Slack events,
# over HTTP (signed Events API deliveries; faults: a bad signature, Slack retries, out-of-order
# edits) and then over Socket Mode (faults: duplicates, a disconnect message, a dropped socket);
# no sync job runs and the index must equal the simulator's expected set within 5 s; then 20
# freshness samples per transport (p50/p95). ~20 s per mode and transport.
ftest-live: tools
	$(CARGO) build --release -p connectors -p ftest
	./target/release/ftest --data-size $(DATA_SIZE) --mode $(MODE) --bin-dir target/release --work-dir target/ftest-live --live --live-freshness 20
	./target/release/ftest --data-size $(DATA_SIZE) --mode $(MODE) --bin-dir target/release --work-dir target/ftest-live-socket --live --live-freshness 20 --live-transport socket

# Freshness of live updates (issue 17), HTTP Events API then Socket Mode: 50 messages posted,
# edited and deleted one at a time, each timed from its event's delivery to visible in
# Elasticsearch; p50/p95 per kind and transport. About a minute after the release build.
# Record the figures in BENCHMARKS.md.
bench-live: tools
	$(CARGO) build --release -p connectors -p ftest
	./target/release/ftest --data-size small --mode api --bin-dir target/release --work-dir target/bench-live --live --live-freshness 50
	./target/release/ftest --data-size small --mode api --bin-dir target/release --work-dir target/bench-live-socket --live --live-freshness 50 --live-transport socket

# Benchmarks (release): the sync engine alone, then the whole service on a 1M-message
# workspace with Slack limits off, then with the tiers on (time-scaled) for the budget share.
# The 1M run measures the shipped build (profile `dist`, as the Dockerfile builds it).
bench: tools
	$(CARGO) build --release -p connectors -p ftest
	$(CARGO) build --profile dist -p connectors --bin elastic-ingest --bin connectors
	@echo "== sync engine: 1,000,000 synthetic documents into osmem (osmem-bound: about 45 min on 2 cores)"
	$(CARGO) bench --bench sync_engine
	@echo "== end to end, tiers off: >1M-message workspace, all history, content bulk into the shim's null sink"
	./target/release/ftest --mode api --es-sink null --no-mutations --data-size large --channels 200 \
		--messages-per-channel 5500 --fetch-last-n-days 0 --idling 5 \
		--bin-dir target/dist --timeout 3600 --report-file BENCHMARKS.md
	$(MAKE) bench-budget
	$(MAKE) bench-live
	$(MAKE) bench-es

# The Elasticsearch-cost part of `make bench` (also on its own; about 2 minutes a run): the
# large workspace with the connector's default configuration (130.6k documents, 180-day window,
# no auto-join; Slack limits off) into osmem via the ES shim, the shipped build (`dist`), RUNS=3 times; prints connector CPU/doc, peak RSS, osmem CPU, wall time and bulk
# bytes/doc per run and the medians (scripts/bench-es.sh).
bench-es: tools
	$(CARGO) build --release -p connectors -p ftest
	$(CARGO) build --profile dist -p connectors --bin elastic-ingest --bin connectors
	./scripts/bench-es.sh

# The budget part of `make bench` (also on its own, about 5 minutes): a medium full sync
# against the simulator's tier limiter, time-scaled 60x (a Slack minute lasts a second), null
# sink so that Slack decides: the simulator granting 10x the published tiers with learned
# budgets, then the published tiers with learned budgets, then the published-floor rate
# (rate_budget=published) beside them; last, a small sync in the restricted cohort (the
# report and the job's metadata say "restricted cohort true"). Each report prints calls, 429s
# (and those after the first minute), the service's rates beside the published tiers, the
# share of the granted rate used and the wall time.
bench-budget: tools
	$(CARGO) build --release -p connectors -p ftest
	@echo "== budget: simulator grants 10x the tiers, learned budgets"
	./target/release/ftest --mode api --es-sink null --no-mutations --data-size medium --rate-limits --time-scale 60 \
		--rate-grant 10 --rate-budget learned --bin-dir target/release --timeout 1800 --report-file BENCHMARKS.md
	@echo "== budget: simulator grants the published tiers, learned budgets"
	./target/release/ftest --mode api --es-sink null --no-mutations --data-size medium --rate-limits --time-scale 60 \
		--rate-grant 1 --rate-budget learned --bin-dir target/release --timeout 1800 --report-file BENCHMARKS.md
	@echo "== budget: the published-floor rate (rate_budget=published) against the same simulator"
	./target/release/ftest --mode api --es-sink null --no-mutations --data-size medium --rate-limits --time-scale 60 \
		--rate-grant 1 --rate-budget published --bin-dir target/release --timeout 1800 --report-file BENCHMARKS.md
	@echo "== budget: the restricted cohort (history/replies 1/min, pages of 15), small, time-scaled 600x"
	./target/release/ftest --mode api --no-mutations --data-size small --rate-limits --time-scale 600 \
		--restricted-cohort --bin-dir target/release --timeout 600 --report-file BENCHMARKS.md

# Fuzzing with cargo-fuzz (libFuzzer, AddressSanitizer) on the stable toolchain:
# RUSTC_BOOTSTRAP=1 lets stable rustc take the sanitizer flags cargo-fuzz passes. Seeds
# come from fuzz/corpus/<target> (small, committed); what libFuzzer finds on the way goes
# to target/fuzz-corpus/<target> (not committed); a crash lands in fuzz/artifacts/<target>
# and fails the run.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ := .tools/cargo-fuzz/bin/cargo-fuzz
FUZZ_TARGETS := slack_answer config_yml connector_doc
FUZZ_SECONDS ?= 60

$(CARGO_FUZZ):
	$(CARGO) install --locked --root .tools/cargo-fuzz cargo-fuzz@$(CARGO_FUZZ_VERSION)

fuzz: $(CARGO_FUZZ)
	@set -o pipefail; for target in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-corpus/$$target; \
		echo "== fuzz $$target for $(FUZZ_SECONDS) s"; \
		RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ) run -O $$target target/fuzz-corpus/$$target fuzz/corpus/$$target \
			-- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 \
			| grep -E '^(Done|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|ERROR|panicked|SUMMARY' \
			|| exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf .tools fuzz/target

# The image (needs a Docker engine).
docker-build:
	docker build -t $(IMAGE) .

docker-run:
	docker run --rm -v $(CONFIG_DIR):/config --network host $(IMAGE) /app/bin/elastic-ingest -c /config/config.yml

# The Dockerfile's build and COPY steps replayed outside Docker into target/docker-stage/.
docker-check:
	./scripts/docker-stage-check.sh
