#!/usr/bin/env bash
# The Elasticsearch-cost part of `make bench` (issue 20): the large workspace with the connector's
# default configuration (180-day window, no auto-join: 130.6k documents, the issue table's
# workspace; Slack limits off) synced by the shipped build (profile `dist`, BIN_DIR) into
# osmem-server through the ES shim, RUNS times (3 by default); prints per run and as medians:
# connector CPU per document, peak RSS, osmem CPU (the test Elasticsearch's process CPU from
# its start to the moment the runner sees the job end: the sync plus the connector-index
# traffic; the schedule's next job is not counted), wall time of the sync job, and bulk bytes
# per document (document sources). About 2 minutes a run on a quiet 2-core machine. Needs `make tools`, the release ftest and the
# dist service (`make bench-es` builds both).
set -euo pipefail
RUNS=${RUNS:-3}
BIN_DIR=${BIN_DIR:-target/dist}
OUT=${OUT:-target/bench-es}
mkdir -p "$OUT"
for run in $(seq 1 "$RUNS"); do
    echo "== run $run/$RUNS"
    ./target/release/ftest --mode api --no-mutations --data-size large --no-auto-join \
        --bin-dir "$BIN_DIR" --work-dir "$OUT/work-$run" --timeout 3600 >"$OUT/run-$run.log" 2>&1 \
        || { tail -n 30 "$OUT/run-$run.log"; exit 1; }
    # The first report is the first full sync.
    awk '/report:/{n++} n==1' "$OUT/run-$run.log" | sed -n '1,6p'
done
python3 - "$OUT" "$RUNS" <<'PY'
import re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
rows = []
for run in range(1, runs + 1):
    text = open(f"{out}/run-{run}.log").read()
    block = text[text.index("report:"):]
    num = lambda pattern: float(re.search(pattern, block).group(1))
    rows.append({
        "docs": num(r"documents indexed (\d+)"),
        "wall s": num(r"elapsed ([\d.]+) s"),
        "connector CPU µs/doc": num(r"([\d.]+) µs/doc"),
        "connector peak RSS MB": num(r"peak RSS ([\d.]+) MB"),
        "osmem CPU s": num(r"test Elasticsearch CPU ([\d.]+) s"),
        "bulk B/doc": num(r"\(([\d.]+) B/doc\)"),
    })
keys = list(rows[0])
print("| run | " + " | ".join(keys) + " |")
print("|---|" + "---:|" * len(keys))
for i, row in enumerate(rows, 1):
    print(f"| {i} | " + " | ".join(f"{row[k]:g}" for k in keys) + " |")
print("| median | " + " | ".join(f"{statistics.median(r[k] for r in rows):g}" for k in keys) + " |")
PY
