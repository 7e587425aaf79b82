# syntax=docker/dockerfile:1
# The connector service image: a drop-in for Elastic's connectors image.
#   docker build -t elastic-ingest-rust .
#   docker run -v ~/connectors-config:/config --network elastic elastic-ingest-rust \
#       /app/bin/elastic-ingest -c /config/config.yml
# scripts/docker-stage-check.sh replays the build and COPY steps below outside Docker (CI has
# no Docker engine): keep one instruction per line.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile dist --locked -p connectors --bin elastic-ingest --bin connectors

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --no-create-home --home-dir /app nonroot
WORKDIR /app
COPY --from=build /src/target/dist/elastic-ingest /app/bin/elastic-ingest
COPY --from=build /src/target/dist/connectors /app/bin/connectors
COPY config.yml.example /app/config.yml.example
USER nonroot
ENTRYPOINT []
CMD ["/app/bin/elastic-ingest", "-c", "/config/config.yml"]
