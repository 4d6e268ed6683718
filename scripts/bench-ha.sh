#!/usr/bin/env bash
# The price of Redis high availability (issue 14; README "Redis high
# availability"). One run starts, on free loopback ports:
#   single    two chat nodes on one redis-server (append-only file, fsync
#             always: what make run starts)
#   sentinel  two chat nodes on a primary and a replica (both fsync always,
#             the primary with min-replicas-to-write 1) and three sentinels
#             (what make run REDIS=sentinel starts, with one replica)
# and drives them with bench/peer/loadgen.js, as make bench-peer does (PUBS
# publishers on node 1 -> a room of SUBS subscribers on node 2, 100 B
# bodies, open loop, latency from the scheduled send time). The sentinel
# nodes run twice: with redis_wait_replicas 0 (replication alone) and 1
# (a post is delivered only once WAIT says a replica has it). Per load it
# prints delivered msgs/s, p50/p99/p99.9 and the CPU of every server
# process (Redis servers and sentinels, brokers, bridges) per post, with
# the ratios to single Redis.
#
# Settings (environment): RATES ("2000 10000" delivered/s), SUBS (10),
# PUBS (4), SECONDS_PER_RUN (5), WARMUP (2), WINDOW (200), DRAIN_MS (1000),
# MOSQUITTO_PRELOAD (the ASan runtime for a sanitized plugin).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RATES=${RATES:-2000 10000}
SUBS=${SUBS:-10}
PUBS=${PUBS:-4}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
WARMUP=${WARMUP:-2}
WINDOW=${WINDOW:-200}
DRAIN_MS=${DRAIN_MS:-1000}
. scripts/bench-peer-lib.sh
peer_install

# redis-server NAME PORT [extra args]: pid in $work/NAME.pid
start_redis() {
  local name=$1 port=$2; shift 2
  mkdir -p "$work/$name"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$name" --save '' \
    --appendonly yes --appendfsync always "$@" > "$work/$name.log" 2>&1 & pids+=($!)
  echo $! > "$work/$name.pid"
}

# The sentinel stack's Redis side and brokers; its bridges come with
# start_ha_bridges.
start_ha() {
  hprimary=$(free_port); hreplica=$(free_port); h1=$(free_port); h2=$(free_port)
  hsentinels=()
  start_redis hprimary "$hprimary" --min-replicas-to-write 1 --min-replicas-max-lag 5
  wait_port "$hprimary"
  start_redis hreplica "$hreplica" --replicaof 127.0.0.1 "$hprimary"
  local i port
  for i in 1 2 3; do
    port=$(free_port)
    hsentinels+=("127.0.0.1:$port")
    mkdir -p "$work/sentinel$i"
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor chat 127.0.0.1 %s 2\nsentinel down-after-milliseconds chat 2000\nsentinel failover-timeout chat 10000\n' \
      "$port" "$work/sentinel$i" "$hprimary" > "$work/sentinel$i/sentinel.conf"
    redis-sentinel "$work/sentinel$i/sentinel.conf" > "$work/sentinel$i.log" 2>&1 & pids+=($!)
    echo $! > "$work/sentinel$i.pid"
    wait_port "$port"
  done
  i=0
  for port in $h1 $h2; do
    i=$((i + 1))
    { broker_common
      printf 'allow_anonymous false\nlistener %s 127.0.0.1\nplugin %s\nplugin_opt_jwt_alg HS256\nplugin_opt_jwt_key_file %s\n' \
        "$port" "$(realpath "$BUILD")/authplugin/chat_auth.so" "$work/secret"; } > "$work/hbroker$i.conf"
    start_broker "hbroker$i" "$work/hbroker$i.conf"
  done
  for port in $hreplica $h1 $h2; do wait_port "$port"; done
  for _ in $(seq 150); do
    [ "$(redis-cli -p "$hprimary" INFO replication | tr -d '\r' | sed -n 's/^connected_slaves://p')" = 1 ] && break
    sleep 0.1
  done
}

# start_ha_bridges WAIT: the sentinel stack's bridges, anew, with
# redis_wait_replicas WAIT.
start_ha_bridges() {
  local wait=$1 i port p
  for i in 1 2; do
    [ -f "$work/hbridge$i.pid" ] || continue
    p=$(pid_of "hbridge$i")
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  i=0
  for port in $h1 $h2; do
    i=$((i + 1))
    printf 'jwt_alg HS256\njwt_key_file %s\nnode_name ha%s\nmqtt_port %s\nredis_sentinels %s\nredis_master_name chat\nredis_wait_replicas %s\nstore_url sqlite:%s/ha.db\nrate_per_s 1000000\nrate_burst 1000000\njournal_file %s/hbridge%s.journal\n' \
      "$work/secret" "$i" "$port" "$(IFS=,; echo "${hsentinels[*]}")" "$wait" "$work" "$work" "$i" \
      > "$work/hbridge$i.conf"
    : > "$work/hbridge$i.log"
    env -u CHAT_CONFIG "$BUILD/bridge/chat-bridge" --config "$work/hbridge$i.conf" > "$work/hbridge$i.log" 2>&1 & pids+=($!)
    echo $! > "$work/hbridge$i.pid"
  done
  wait_bridges hbridge "$hprimary"
}

ha_args() {
  echo "--kind chat --pub-port $h1 --sub-port $h2 --secret-file $work/secret" \
    "--pids redis=$(pid_of hprimary),replica=$(pid_of hreplica),sentinel1=$(pid_of sentinel1),sentinel2=$(pid_of sentinel2),sentinel3=$(pid_of sentinel3),broker1=$(pid_of hbroker1),broker2=$(pid_of hbroker2),bridge1=$(pid_of hbridge1),bridge2=$(pid_of hbridge2)"
}

start_cluster
start_ha
echo "bench-ha: mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p'), redis $(redis-server --version | sed 's/.*v=\([0-9.]*\).*/\1/'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  $PUBS publishers on node 1 -> a room of $SUBS on node 2, 100 B bodies, ${SECONDS_PER_RUN} s measured after ${WARMUP} s warm-up per run"

# run SETUP LABEL POSTS_PER_S ARGS...: one measured run
run() {
  local setup=$1 label=$2 rate=$3; shift 3
  local out
  out=$(node bench/peer/loadgen.js "$@" --pubs "$PUBS" --subs "$SUBS" --rate "$rate" \
    --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --window "$WINDOW" --drain "$DRAIN_MS") || {
    echo "bench-ha: $setup $label run failed" >&2; return 1; }
  echo "$setup.$label: $out" >> "$work/raw"
  echo "$out" > "$work/$setup.$label"
}
loads() { # SETUP ARGS...
  local setup=$1 r; shift
  run "$setup" sat 0 "$@"
  for r in $RATES; do run "$setup" "r$r" "$(awk -v r="$r" -v s="$SUBS" 'BEGIN { printf "%.3f", r / s }')" "$@"; done
}
# WAIT commands per post over a setup's runs (the setups' own check: 0
# without the acknowledgement); every redis-cli call of the bench is one
# INFO or CONFIG, left out
waits_per_post() { # SETUP REDIS_PORT
  local calls posts
  calls=$(redis-cli -p "$2" INFO commandstats | tr -d '\r' | sed -n 's/^cmdstat_wait:calls=\([0-9]*\).*/\1/p')
  posts=$(cat "$work/$1".* | sed -n 's/.* posted=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s }')
  awk -v c="${calls:-0}" -v n="$posts" 'BEGIN { printf "%.2f", n ? c / n : 0 }' > "$work/$1.waits"
}
redis-cli -p "$credis" CONFIG RESETSTAT > /dev/null
loads single $(loadgen_args cluster)
waits_per_post single "$credis"
start_ha_bridges 0
redis-cli -p "$hprimary" CONFIG RESETSTAT > /dev/null
loads wait0 $(ha_args)
waits_per_post wait0 "$hprimary"
start_ha_bridges 1
redis-cli -p "$hprimary" CONFIG RESETSTAT > /dev/null
loads wait1 $(ha_args)
waits_per_post wait1 "$hprimary"
sed 's/^/  raw: /' "$work/raw"

get() { [ -f "$work/$1" ] && sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/$1" || echo nan; }
# server CPU µs per post: every process, or those whose names match $3
cpu_us() {
  [ -f "$work/$1" ] || { echo nan; return; }
  tr ' ' '\n' < "$work/$1" | awk -F= -v m="${2:-.}" '
    $1 == "posted" { n = $2 } $1 ~ /^cpu_/ && $1 != "cpu_s" && substr($1, 5) ~ m { s += $2 }
    END { printf "%.0f", n ? s * 1e6 / n : 0 }'
}
# row LABEL A B C: the three setups and the ratios of the last two to A
row() {
  awk -v l="$1" -v a="$2" -v b="$3" -v c="$4" '
    function r(x, y) { return (x + 0 > 0 && y + 0 > 0) ? sprintf("%.2f", x / y) : "-" }
    BEGIN { printf "| %s | %s | %s | %s | %s | %s |\n", l, a, b, c, r(b, a), r(c, a) }'
}
lat() { echo "$(get "$1" p50_ms) / $(get "$1" p99_ms) / $(get "$1" p999_ms)"; }
each() { # LABEL FN KEY ARG
  row "$1" "$($2 "single.$3" "$4")" "$($2 "wait0.$3" "$4")" "$($2 "wait1.$3" "$4")"
}
echo
echo "| | single Redis | Sentinel, wait 0 | Sentinel, wait 1 | wait 0 / single | wait 1 / single |"
echo "|---|---:|---:|---:|---:|---:|"
for key in sat $(for r in $RATES; do echo "r$r"; done); do
  if [ "$key" = sat ]; then name=saturation; else name="${key#r} delivered/s"; fi
  each "$name: delivered msgs/s" get "$key" delivered_per_s
  echo "| $name: p50 / p99 / p99.9 ms | $(lat "single.$key") | $(lat "wait0.$key") | $(lat "wait1.$key") | | |"
  each "$name: server CPU µs per post" cpu_us "$key" .
  each "$name: of which Redis (servers, sentinels)" cpu_us "$key" '^(redis|replica|sentinel)'
  each "$name: of which bridges" cpu_us "$key" '^bridge'
done
echo "| WAIT commands per post (every load) | $(cat "$work/single.waits") | $(cat "$work/wait0.waits") | $(cat "$work/wait1.waits") | | |"
grep -h "WARN\|ERR" "$work"/hbridge*.log 2>/dev/null | sed 's/^[^ ]* [^ ]* //' | sort | uniq -c | head -5 || true
