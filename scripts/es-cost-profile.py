#!/usr/bin/env python3
"""Where a sync's Elasticsearch-side cost goes: osmem-server CPU per request kind.

Replays a content index's documents (an NDJSON file of `{"_id":…, "_source":…}` lines, as
`--export` writes them from a running cluster) into a fresh osmem-server, once per index
variant, and prints the server's CPU seconds (/proc/<pid>/stat utime+stime) for each phase:
the full bulk load (`index` items, `--chunk` documents a request: 250, as the service sends them), the refresh,
the sweep's `_count` and `_delete_by_query` on `_sync_marker`, and a re-write of every
unchanged document (what a second full sync does today).

Variants: `dynamic` (a plain `PUT`, as the service created it before issue 20),
`framework` (Elastic's settings + its dynamic template for every string: the Python
service's index), `explicit` (this service's settings + explicit Slack mappings, read from
`--explicit-body`), `explicit-nobody` (the same, `body` dropped where it equals `text`), and
`body:<file>` (any index body read from a file: a candidate mapping).

  scripts/es-cost-profile.py --export http://127.0.0.1:PORT search-slack > docs.ndjson
  scripts/es-cost-profile.py --docs docs.ndjson --explicit-body body.json
"""
import argparse, json, os, subprocess, sys, time, urllib.request

OSMEM = os.environ.get("OSMEM_SERVER_BIN", ".tools/osmem/osmem_server/bin/osmem-server")


def http(url, method, path, body=None, ndjson=False):
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
    ctype = "application/x-ndjson" if ndjson else "application/json"
    req = urllib.request.Request(url + path, data=data, method=method, headers={"content-type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def export(url, index):
    status, page = http(url, "POST", f"/{index}/_search?scroll=1m", {"size": 1000, "sort": ["_doc"]})
    while page["hits"]["hits"]:
        for hit in page["hits"]["hits"]:
            print(json.dumps({"_id": hit["_id"], "_source": hit["_source"]}))
        status, page = http(url, "POST", "/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})


def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def framework_body():
    # The framework's index: its settings, and its text field for every string (dynamic).
    with open(ARGS.explicit_body) as f:
        body = json.load(f)
    mappings = body["mappings"]
    keep = {k: mappings["properties"][k] for k in ("id", "_subextracted_as_of", "_subextracted_version")}
    return {"settings": body["settings"], "mappings": {"dynamic": "true", "dynamic_templates": mappings["dynamic_templates"], "properties": keep}}


def run(variant, docs):
    proc = subprocess.Popen([OSMEM, "-addr", "127.0.0.1:0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    url = json.loads(proc.stdout.readline())["url"]
    index = "search-profile"
    if variant == "dynamic":
        body = None
    elif variant == "framework":
        body = framework_body()
    elif variant.startswith("body:"):
        # Any index body from a file (settings + mappings), e.g. a candidate mapping.
        with open(variant[len("body:"):]) as f:
            body = json.load(f)
    else:
        with open(ARGS.explicit_body) as f:
            body = json.load(f)
    status, answer = http(url, "PUT", f"/{index}", body if body is not None else {})
    assert status == 200, answer
    phases = {}
    sent = 0

    def bulk_all(marker):
        nonlocal sent
        for start in range(0, len(docs), ARGS.chunk):
            lines = []
            for doc in docs[start:start + ARGS.chunk]:
                source = dict(doc["_source"])
                source["_sync_marker"] = marker
                if variant == "explicit-nobody" and source.get("body") is not None and source.get("body") == source.get("text"):
                    del source["body"]
                lines.append(json.dumps({"index": {"_index": index, "_id": doc["_id"]}}))
                lines.append(json.dumps(source, ensure_ascii=False))
            payload = ("\n".join(lines) + "\n").encode()
            sent += len(payload)
            status, answer = http(url, "POST", "/_bulk", payload, ndjson=True)
            assert status == 200 and not answer["errors"], str(answer)[:500]

    def phase(name, action):
        before, started = cpu(proc.pid), time.time()
        action()
        phases[name] = (cpu(proc.pid) - before, time.time() - started)

    phase("bulk index (new docs)", lambda: bulk_all(1))
    bytes_first = sent
    phase("refresh", lambda: http(url, "POST", f"/{index}/_refresh"))
    sweep = {"query": {"bool": {"should": [{"range": {"_sync_marker": {"lt": 1}}}, {"bool": {"must_not": {"exists": {"field": "_sync_marker"}}}}]}}}
    phase("_count (sweep)", lambda: http(url, "POST", f"/{index}/_count", sweep))
    phase("_delete_by_query (nothing)", lambda: http(url, "POST", f"/{index}/_delete_by_query", sweep))
    if not ARGS.first_only:
        phase("bulk index (unchanged docs rewritten)", lambda: bulk_all(2))
        sweep2 = {"query": {"range": {"_sync_marker": {"lt": 2}}}}
        phase("refresh+_delete_by_query (after re-sync)", lambda: (http(url, "POST", f"/{index}/_refresh"), http(url, "POST", f"/{index}/_delete_by_query", sweep2)))
    status, mapping = http(url, "GET", f"/{index}/_mapping")
    fields = 0

    def walk(props):
        nonlocal fields
        for m in props.values():
            fields += 1 + len(m.get("fields", {}))
            walk(m.get("properties", {}))
    walk(mapping[index]["mappings"].get("properties", {}))
    proc.terminate()
    proc.wait()
    print(f"== {variant}: {len(docs)} docs, {bytes_first / len(docs):.0f} bulk B/doc, {fields} indexed fields+subfields")
    for name, (seconds, wall) in phases.items():
        print(f"   {name:45s} osmem CPU {seconds:7.2f} s  ({seconds / len(docs) * 1e6:7.1f} µs/doc)  wall {wall:6.1f} s")
    sys.stdout.flush()


parser = argparse.ArgumentParser()
parser.add_argument("--export", nargs=2, metavar=("URL", "INDEX"))
parser.add_argument("--docs")
parser.add_argument("--explicit-body")
parser.add_argument("--limit", type=int, default=0)
parser.add_argument("--chunk", type=int, default=250, help="documents per bulk request (the service: 250, 500 lines)")
parser.add_argument("--first-only", action="store_true", help="only the first sync's phases (no re-write)")
parser.add_argument("--variants", default="dynamic,framework,explicit,explicit-nobody")
ARGS = parser.parse_args()
if ARGS.export:
    export(*ARGS.export)
    sys.exit(0)
with open(ARGS.docs) as f:
    DOCS = [json.loads(line) for line in f]
if ARGS.limit:
    DOCS = DOCS[:ARGS.limit]
for variant in ARGS.variants.split(","):
    run(variant, DOCS)
