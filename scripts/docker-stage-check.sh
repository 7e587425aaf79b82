#!/usr/bin/env bash
# Replays the Dockerfile outside Docker (no engine runs here or in CI): runs the build stage's
# `RUN cargo …` line, then every COPY of the final stage into a staging root, checks that the
# image runs as a non-root user, and runs the staged /app/bin/elastic-ingest --version.
set -euo pipefail
cd "$(dirname "$0")/.."
stage="${STAGE_ROOT:-target/docker-stage}"
rm -rf "$stage" && mkdir -p "$stage"

final_from=$(grep -n '^FROM ' Dockerfile | tail -n1 | cut -d: -f1)
build_cmd=$(sed -n '1,'"$final_from"'p' Dockerfile | sed -n 's/^RUN \(cargo .*\)$/\1/p' | tail -n1)
[ -n "$build_cmd" ] || { echo "no RUN cargo line in the build stage" >&2; exit 1; }
echo "build stage: $build_cmd"
eval "$build_cmd"

copies=0
while read -r line; do
  set -- $line
  shift # COPY
  from_build=false
  if [[ "$1" == --from=* ]]; then from_build=true; shift; fi
  src="$1"; dst="$2"
  if $from_build; then src="${src#/src/}"; fi
  [ -e "$src" ] || { echo "Dockerfile copies $src, which does not exist" >&2; exit 1; }
  mkdir -p "$stage$(dirname "$dst")"
  cp -a "$src" "$stage$dst"
  echo "COPY $src -> $dst"
  copies=$((copies + 1))
done < <(sed -n "$final_from"',$p' Dockerfile | grep '^COPY ')

user=$(sed -n "$final_from"',$p' Dockerfile | sed -n 's/^USER \(.*\)$/\1/p' | tail -n1)
if [ -z "$user" ] || [ "$user" = root ] || [ "$user" = 0 ]; then
  echo "the runtime stage must run as a non-root user (USER is '${user:-unset}')" >&2; exit 1
fi
for bin in elastic-ingest connectors; do
  [ -x "$stage/app/bin/$bin" ] || { echo "/app/bin/$bin missing from the image" >&2; exit 1; }
done
[ -f "$stage/app/config.yml.example" ] || { echo "/app/config.yml.example missing from the image" >&2; exit 1; }
version=$("$stage/app/bin/elastic-ingest" --version)
echo "staged image: $copies COPY steps, user $user, /app/bin/elastic-ingest --version = $version"
