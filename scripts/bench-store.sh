#!/usr/bin/env bash
# The store benchmark: build/bench/storebench against both backends in one
# run — SQLite (a file in a temporary folder on disk, WAL, synchronous=FULL)
# and FerretDB 1.24 on SQLite (started here on a free loopback port in a
# temporary folder, like the test harness does). Each inserts MESSAGES
# (default 1,000,000) messages in batches of BATCH (500) over CONVS (1,000)
# conversations, then times history pages of 50 before a random seq of a
# random conversation (QUERIES pages, or fewer when QUERY_SECONDS runs out).
# FerretDB's SQLite backend scans the whole collection for every page (it
# pushes down only _id equality), so its page budget is small by default,
# and its URL raises socketTimeoutMS (the store's default is store_timeout_ms, 2 s, less than
# one such scan at 1 M messages).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MESSAGES=${MESSAGES:-1000000}
CONVS=${CONVS:-1000}
BATCH=${BATCH:-500}
QUERIES=${QUERIES:-10000}
FERRET_MESSAGES=${FERRET_MESSAGES:-$MESSAGES}
FERRET_INSERT_SECONDS=${FERRET_INSERT_SECONDS:-600}
FERRET_QUERIES=${FERRET_QUERIES:-1000}
FERRET_QUERY_SECONDS=${FERRET_QUERY_SECONDS:-240}
bench=$BUILD/bench/storebench
[ -x "$bench" ] || { echo "bench-store: build first (make build)" >&2; exit 1; }
ferretdb=$(command -v ferretdb || echo "$HOME/.cache/chatbroker/bin/ferretdb")
[ -x "$ferretdb" ] || { echo "bench-store: FerretDB missing (scripts/install-deps.sh --test)" >&2; exit 1; }

work=$(mktemp -d -p "${BENCH_TMP:-/var/tmp}" storebench.XXXXXX)
ferret_pid=
cleanup() { [ -n "$ferret_pid" ] && kill "$ferret_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

echo "== SQLite"
"$bench" "sqlite:$work/chat.db" --messages "$MESSAGES" --convs "$CONVS" --batch "$BATCH" \
  --queries "$QUERIES"
echo "   file: $(du -sh "$work" | cut -f1)"

echo "== FerretDB $("$ferretdb" --version 2>&1 | sed -n 's/^version: *//p' | head -1) (SQLite backend)"
mkdir -p "$work/ferret"
port=$(free_port)
"$ferretdb" --handler=sqlite --sqlite-url="file:$work/ferret/" \
  --listen-addr="127.0.0.1:$port" --telemetry=disable --debug-addr=- --log-level=error \
  --state-dir="$work/ferret" \
  > "$work/ferretdb.log" 2>&1 &
ferret_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
"$bench" "mongodb://127.0.0.1:$port/bench?socketTimeoutMS=900000" --messages "$FERRET_MESSAGES" --convs "$CONVS" \
  --batch "$BATCH" --insert-seconds "$FERRET_INSERT_SECONDS" --queries "$FERRET_QUERIES" \
  --query-seconds "$FERRET_QUERY_SECONDS" 2> >(grep -v endSessions >&2)
