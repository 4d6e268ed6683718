#!/usr/bin/env bash
# The persistence benchmark (issue: history). For each store backend
# (BACKENDS, default "sqlite mongodb"; mongodb is FerretDB 1.24 on SQLite, as
# in the tests), one run starts on free loopback ports: redis-server (AOF,
# fsync always), mosquitto with chat_auth.so, chat-bridge with that store,
# and drives the bridge at its maximum rate for SECONDS (default 60):
# `chatbench latency --rate 0`, PUBS publishers, 1 subscriber, a window of
# WINDOW messages in flight. Every second it samples the persistence
# backlog (chat:metrics:persist). Then it times history requests over MQTT
# (limit 50): the newest page (Redis's recent list) and pages before a
# random seq deep in the conversation (the store, which then holds every
# message of the run; DEEP_BACKENDS, default sqlite only).
# Prints: accepted msgs/s, backlog max / at the end of the load / seconds to
# drain after it, and history p50/p99/p99.9 for cache and store.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
BACKENDS=${BACKENDS:-"sqlite mongodb"}
SECONDS_LOAD=${SECONDS_LOAD:-60}
PUBS=${PUBS:-10}
WINDOW=${WINDOW:-2000}
HISTORY_COUNT=${HISTORY_COUNT:-2000}
# store pages on FerretDB scan every document (see README, Storage): only
# the backends named here time them
DEEP_BACKENDS=${DEEP_BACKENDS:-sqlite}
bench=$BUILD/bench/chatbench
[ -x "$bench" ] && [ -x "$BUILD/bridge/chat-bridge" ] || { echo "bench: build first (make build)" >&2; exit 1; }
ferretdb=$(command -v ferretdb || echo "$HOME/.cache/chatbroker/bin/ferretdb")

work=$(mktemp -d)
pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; pids=(); }
trap 'stop_all; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "bench: nothing listens on $1" >&2; exit 1; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"
ulimit -n "$(ulimit -Hn)"

results=()
for backend in $BACKENDS; do
  dir="$work/$backend"; mkdir -p "$dir/redis" "$dir/ferret"
  mqtt=$(free_port); redis=$(free_port)
  rcli() { redis-cli -p "$redis" "$@"; }
  redis-server --port "$redis" --bind 127.0.0.1 --dir "$dir/redis" --save '' \
    --appendonly yes --appendfsync always > "$dir/redis.log" 2>&1 & pids+=($!)
  printf 'per_listener_settings false\nallow_anonymous false\npersistence false\nmax_queued_messages 100000\nset_tcp_nodelay true\nuser %s\nlistener %s 127.0.0.1\nplugin %s\nplugin_opt_jwt_alg HS256\nplugin_opt_jwt_key_file %s\n' \
    "$(id -un)" "$mqtt" "$PWD/$BUILD/authplugin/chat_auth.so" "$work/secret" > "$dir/mosquitto.conf"
  mosquitto -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 & pids+=($!)
  if [ "$backend" = mongodb ]; then
    mongo=$(free_port)
    (cd "$dir/ferret" && exec "$ferretdb" --handler=sqlite --sqlite-url="file:$dir/ferret/" \
      --listen-addr="127.0.0.1:$mongo" --telemetry=disable --debug-addr=- --log-level=warn \
      --state-dir="$dir/ferret") > "$dir/ferretdb.log" 2>&1 & pids+=($!)
    wait_port "$mongo"
    store="mongodb://127.0.0.1:$mongo/bench"
  else
    store="sqlite:$dir/chat.db"
  fi
  wait_port "$redis"; wait_port "$mqtt"
  printf 'jwt_alg HS256\njwt_key_file %s\nnode_name bench\nmqtt_port %s\nredis_port %s\nstore_url %s\nrate_per_s 1000000\nrate_burst 1000000\n' \
    "$work/secret" "$mqtt" "$redis" "$store" > "$dir/bridge.conf"
  echo "journal_file $dir/bridge.journal" >> "$dir/bridge.conf"
  env -u CHAT_CONFIG "$BUILD/bridge/chat-bridge" --config "$dir/bridge.conf" > "$dir/bridge.log" 2>&1 & pids+=($!)
  for _ in $(seq 100); do [ "$(rcli EXISTS chat:restored)" = 1 ] && grep -q "feed " "$dir/bridge.log" && break; sleep 0.1; done

  $bench latency --port "$mqtt" --secret-file "$work/secret" --pubs "$PUBS" --subs 1 \
    --rate 0 --window "$WINDOW" --seconds "$SECONDS_LOAD" > "$dir/load.out" &
  load=$!
  : > "$dir/backlog"
  while kill -0 $load 2>/dev/null; do
    rcli HGET chat:metrics:persist backlog >> "$dir/backlog"; sleep 1
  done
  wait $load
  end_backlog=$(rcli HGET chat:metrics:persist backlog)
  accepted=$(rcli GET chat:seq:room:bench)
  t0=$(date +%s.%N)
  for _ in $(seq 600); do [ "$(rcli GET chat:persisted:room:bench)" = "$accepted" ] && break; sleep 0.1; done
  drain=$(echo "$(date +%s.%N) - $t0" | bc)
  [ "$(rcli GET chat:persisted:room:bench)" = "$accepted" ] || drain="not drained in 60 s"
  rate=$(sed -n 's/.*delivered_per_s=\([0-9.]*\).*/\1/p' "$dir/load.out")
  max_backlog=$(sort -n "$dir/backlog" | tail -1)
  cache=$($bench history --port "$mqtt" --secret-file "$work/secret" --count "$HISTORY_COUNT")
  deep="not measured: p50_ms=- p99_ms=- p999_ms=-"
  case " $DEEP_BACKENDS " in *" $backend "*)
    deep=$($bench history --port "$mqtt" --secret-file "$work/secret" --count "$HISTORY_COUNT" --deep $((accepted - 1000)));;
  esac
  echo "$backend: load: $(cat "$dir/load.out")"
  echo "$backend: backlog samples: $(tr '\n' ' ' < "$dir/backlog")"
  echo "$backend: cache: $cache"
  echo "$backend: store: $deep"
  results+=("$(printf '%-8s %9.0f msgs/s for %ss, %s stored; backlog max %s, at end %s, drained in %s s\n         history p50/p99/p99.9 ms: cache %s/%s/%s, store %s/%s/%s' \
    "$backend" "$rate" "$SECONDS_LOAD" "$accepted" "$max_backlog" "$end_backlog" "$drain" \
    "$(echo "$cache" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')" "$(echo "$cache" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')" "$(echo "$cache" | sed -n 's/.*p999_ms=\([0-9.]*\).*/\1/p')" \
    "$(echo "$deep" | sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p')" "$(echo "$deep" | sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p')" "$(echo "$deep" | sed -n 's/.*p999_ms=\([0-9.]*\).*/\1/p')")")
  grep -h "ERR\|WARN" "$dir/bridge.log" | sort | uniq -c | sort -rn | head -3 || true
  stop_all
done
echo
echo "persistence at the bridge's maximum rate (targets: backlog bounded; history p99 <= 5 ms cache, <= 20 ms store)"
printf '%s\n' "${results[@]}"
