#!/usr/bin/env bash
# The cross-instance benchmark (issue: bridge). One run starts, from the same
# Debian mosquitto binary, on free loopback ports:
#   plain    one mosquitto, anonymous, no plugin: the baseline
#   cluster  two mosquitto brokers with chat_auth.so, one chat-bridge each,
#            one redis-server (append-only file, fsync always, as make run)
# and drives both with `chatbench latency`: publishers on a fixed schedule
# (latency counts from the scheduled send time, so a stalled system cannot
# hide its queue) and subscribers split across the two cluster nodes (on
# the plain broker, all on the one).
#   1. saturation: as fast as a window of in-flight messages allows;
#      delivered msgs/s, cluster / plain (target >= 0.5)
#   2. fixed load: PUBS publishers at RATE msgs/s in all to SUBS subscribers
#      (default 10,000 delivered msgs/s); p50/p99/p99.9 (target p99 <= 5 ms)
# Each figure is the median of REPEAT runs, alternating plain and cluster.
# NODELAY=false runs every broker with Nagle's coalescing (set_tcp_nodelay
# false) instead of our mosquitto.conf's true.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PUBS=${PUBS:-10}
SUBS=${SUBS:-100}
RATE=${RATE:-100}
WINDOW=${WINDOW:-200}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/chatbench
[ -x "$bench" ] && [ -x "$BUILD/bridge/chat-bridge" ] || { echo "bench: build first (make build)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "bench: nothing listens on $1" >&2; exit 1; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"
ulimit -n "$(ulimit -Hn)"

plain=$(free_port); n1=$(free_port); n2=$(free_port); redis=$(free_port)
common="per_listener_settings false
max_connections -1
persistence false
max_queued_messages 100000
set_tcp_nodelay ${NODELAY:-true}
user $(id -un)"
printf '%s\nallow_anonymous true\nlistener %s 127.0.0.1\n' "$common" "$plain" > "$work/plain.conf"
for port in $n1 $n2; do
  printf '%s\nallow_anonymous false\nlistener %s 127.0.0.1\nplugin %s\nplugin_opt_jwt_alg HS256\nplugin_opt_jwt_key_file %s\n' \
    "$common" "$port" "$PWD/$BUILD/authplugin/chat_auth.so" "$work/secret" > "$work/node$port.conf"
done
mosquitto -c "$work/plain.conf" > "$work/plain.log" 2>&1 & pids+=($!)
mosquitto -c "$work/node$n1.conf" > "$work/n1.log" 2>&1 & pids+=($!)
mosquitto -c "$work/node$n2.conf" > "$work/n2.log" 2>&1 & pids+=($!)
mkdir -p "$work/redis"
redis-server --port "$redis" --bind 127.0.0.1 --dir "$work/redis" --save '' \
  --appendonly yes --appendfsync always > "$work/redis.log" 2>&1 & pids+=($!)
for p in $plain $n1 $n2 $redis; do wait_port "$p"; done
i=0
for port in $n1 $n2; do
  i=$((i + 1))
  # the benchmark's publishers are not people: no per-user rate limit
  printf 'jwt_alg HS256\njwt_key_file %s\nnode_name bench%s\nmqtt_port %s\nredis_port %s\nstore_url sqlite:%s/chat.db\nrate_per_s 1000000\nrate_burst 1000000\n' \
    "$work/secret" "$i" "$port" "$redis" "$work" > "$work/bridge$i.conf"
  echo "journal_file $work/bridge$i.journal" >> "$work/bridge$i.conf"
  env -u CHAT_CONFIG "$BUILD/bridge/chat-bridge" --config "$work/bridge$i.conf" > "$work/bridge$i.log" 2>&1 & pids+=($!)
done
for i in 1 2; do
  for _ in $(seq 100); do
    grep -q "feed " "$work/bridge$i.log" && [ "$(redis-cli -p "$redis" EXISTS chat:restored)" = 1 ] && break
    sleep 0.1
  done
  grep -q "feed " "$work/bridge$i.log" || { echo "bench: bridge $i did not start" >&2; cat "$work/bridge$i.log" >&2; exit 1; }
done

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # name args...
  local name=$1; shift
  out=$($bench latency --pubs "$PUBS" --subs "$SUBS" --seconds "$SECONDS_PER_RUN" "$@")
  echo "$name: $out" >> "$work/raw"
  for f in delivered_per_s p50_ms p99_ms p999_ms; do echo "$out" | field $f >> "$work/$name.$f"; done
}

echo "chatbench latency: mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p'), $(nproc) cores, $PUBS publishers, $SUBS subscribers, ${SECONDS_PER_RUN}s per run, median of $REPEAT"
for _ in $(seq "$REPEAT"); do
  run sat.plain --port "$plain" --rate 0 --window "$WINDOW"
  run sat.cluster --port "$n1" --port2 "$n2" --secret-file "$work/secret" --rate 0 --window "$WINDOW"
  run fix.plain --port "$plain" --rate "$RATE"
  run fix.cluster --port "$n1" --port2 "$n2" --secret-file "$work/secret" --rate "$RATE"
done
sed 's/^/  raw: /' "$work/raw"
m() { median < "$work/$1"; }
printf '\n%-44s %12s %12s %8s\n' "" plain cluster ratio
awk -v p="$(m sat.plain.delivered_per_s)" -v c="$(m sat.cluster.delivered_per_s)" \
  'BEGIN { printf "%-44s %12.0f %12.0f %8.3f   (target >= 0.5)\n", "saturation: delivered msgs/s", p, c, c / p }'
awk -v p="$(m fix.plain.delivered_per_s)" -v c="$(m fix.cluster.delivered_per_s)" -v r="$RATE" -v s="$SUBS" \
  'BEGIN { printf "%-44s %12.0f %12.0f\n", "fixed load " r * s " msgs/s: delivered msgs/s", p, c }'
for q in p50 p99 p999; do
  awk -v p="$(m fix.plain.${q}_ms)" -v c="$(m fix.cluster.${q}_ms)" -v q=$q \
    'BEGIN { printf "%-44s %12.2f %12.2f %8.2f%s\n", "fixed load: " q " latency ms", p, c, c / p, q == "p99" ? "   (target cluster <= 5 ms)" : "" }'
done
grep -h "WARN\|ERR" "$work"/bridge*.log | sort | uniq -c | head -5 || true
