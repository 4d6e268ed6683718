#!/usr/bin/env bash
# Against the Socket.IO stack this project replaces (issue 11). One run
# starts, on free loopback ports:
#   cluster  two mosquitto brokers with chat_auth.so, one chat-bridge each,
#            one redis-server (append-only file, fsync always, as make run)
#   plain    one mosquitto, anonymous, no plugin: the ceiling
#   pair     two plain mosquittos joined by mosquitto's own bridge
#            (chat/room/# forwarded at QoS 1): the floor of any
#            cross-instance design on stock mosquitto, with no auth,
#            Redis, sequencing or durability
#   peer     two Socket.IO 4 servers (bench/peer/server.js) with
#            @socket.io/redis-adapter on one redis-server without fsync,
#            a JWT (HS256) checked on connect, one XADD per message
# and drives each with the same load generator (bench/peer/loadgen.js:
# MQTT.js or socket.io-client, PUBS publishers on node 1 -> room of SUBS
# subscribers on node 2, 100 B bodies, open loop on a fixed schedule with
# latency from the scheduled send time). Per room size it measures
# saturation (at most WINDOW posts in flight), then fixed loads of RATES
# delivered msgs/s; server CPU is user+system of every server process over
# the measured window. It prints the table of issue 11 with the ratios and
# the goals, then (PROFILE=1) where the cluster's CPU goes at 10,000/s:
# CPU per process and Redis INFO commandstats per post (PERF=1 adds a perf
# profile of a bridge and of Redis).
#
#   MODE=conns CONNS=5000 scripts/bench-peer.sh   the connections goal
#   (scripts/bench-peer-conns.sh: RSS per connection, idle CPU, reconnect
#   storm, cluster next to plain mosquitto)
#
# Settings (environment): ROOM_SIZES ("10"; the issue's set is "1 10 100
# 1000"; empty: only the profile), RATES ("2000 10000"), SECONDS_PER_RUN (5), WARMUP (2), WINDOW
# (200), DRAIN_MS (1000: how long late deliveries still count), PUBS (4),
# PROFILE (1), PROFILE_SECONDS (10), PERF (0), PERF_PROCS ("bridge1 credis
# broker1"), SYSCALLS (1: syscalls per post in the profile), SYSTEMS ("cluster plain
# peer"), MOSQUITTO_PRELOAD (the ASan runtime for a sanitized plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ "${MODE:-}" = conns ] && exec scripts/bench-peer-conns.sh
ROOM_SIZES=${ROOM_SIZES-10} # empty: the profile only
RATES=${RATES:-2000 10000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-2}
WINDOW=${WINDOW:-200}
DRAIN_MS=${DRAIN_MS:-1000}
PUBS=${PUBS:-4}
PROFILE=${PROFILE:-1}
PROFILE_SECONDS=${PROFILE_SECONDS:-10}
PERF=${PERF:-0}
SYSTEMS=${SYSTEMS:-cluster plain pair peer}
. scripts/bench-peer-lib.sh

peer_install
start_cluster
start_plain
start_pair
start_peer

echo "bench-peer: mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p'), redis $(redis-server --version | sed 's/.*v=\([0-9.]*\).*/\1/'), node $(node --version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  $PUBS publishers -> one room, 100 B bodies, ${SECONDS_PER_RUN} s measured after ${WARMUP} s warm-up per run"

# run SYSTEM SIZE LABEL RATE [extra loadgen args]: one measured run
run() {
  local sys=$1 size=$2 label=$3 rate=$4; shift 4
  local out
  out=$(node bench/peer/loadgen.js $(loadgen_args "$sys") --pubs "$PUBS" --subs "$size" \
    --rate "$rate" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --window "$WINDOW" --drain "$DRAIN_MS" "$@") || {
    echo "bench-peer: $sys $label run failed" >&2; return 1; }
  echo "$sys.$size.$label: $out" >> "$work/raw"
  echo "$out" > "$work/$sys.$size.$label"
}
get() { [ -f "$work/$1" ] && sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/$1" || echo nan; }

for size in $ROOM_SIZES; do
  for sys in $SYSTEMS; do run "$sys" "$size" sat 0; done
  for r in $RATES; do
    posts=$(awk -v r="$r" -v s="$size" 'BEGIN { printf "%.3f", r / s }')
    for sys in $SYSTEMS; do run "$sys" "$size" "r$r" "$posts"; done
  done
done
[ -f "$work/raw" ] && sed 's/^/  raw: /' "$work/raw"

# row LABEL FILEKEY FIELD FORMAT GOAL
row() {
  local label=$1 key=$2 field=$3 goal=$4
  awk -v l="$label" -v c="$(get "cluster.$key" "$field")" -v p="$(get "plain.$key" "$field")" \
      -v s="$(get "peer.$key" "$field")" -v f="$(get "pair.$key" "$field")" -v g="$goal" '
    function r(a, b) { return (a + 0 > 0 && b + 0 > 0) ? sprintf("%.2f", a / b) : "-" }
    BEGIN { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", l, c, p, s, r(c, s), r(c, p), f, r(f, s), g }'
}
lat() {
  local sys=$1 key=$2
  echo "$(get "$sys.$key" p50_ms) / $(get "$sys.$key" p99_ms) / $(get "$sys.$key" p999_ms)"
}
for size in $ROOM_SIZES; do
  echo
  echo "room of $size subscriber(s) (cluster and pair: publishers on node 1, subscribers on node 2; plain: one broker)"
  echo "| | this project (2 nodes) | plain mosquitto (1 broker) | Socket.IO peer (2 instances + Redis adapter) | cluster / peer | cluster / plain | mosquitto pair (the floor) | pair / peer | goal |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
  row "saturation: delivered msgs/s" "$size.sat" delivered_per_s ""
  row "saturation: delivered per server CPU-second" "$size.sat" per_cpu_s "≥ 2× peer, ≥ 0.5× plain"
  for r in $RATES; do
    row "$r/s offered: delivered msgs/s" "$size.r$r" delivered_per_s ""
    row "$r delivered/s: per server CPU-s" "$size.r$r" per_cpu_s "≥ 2× peer"
    goal=""
    [ "$r" = 10000 ] && goal="cluster p99 ≤ 3 ms"
    echo "| $r/s: p50 / p99 / p99.9 ms | $(lat cluster "$size.r$r") | $(lat plain "$size.r$r") | $(lat peer "$size.r$r") | | | $(lat pair "$size.r$r") | | $goal |"
    lag() { echo "$(get "$1.$size.r$r" send_lag_p50_ms) / $(get "$1.$size.r$r" send_lag_p99_ms)"; }
    echo "| $r/s: the generator's own send lag p50 / p99 ms (part of each latency) | $(lag cluster) | $(lag plain) | $(lag peer) | | | $(lag pair) | | |"
  done
done

[ "$PROFILE" = 1 ] && profile_cluster
grep -h "WARN\|ERR" "$work"/bridge*.log 2>/dev/null | sort | uniq -c | head -5 || true
