#!/usr/bin/env bash
# The web front's benchmark, in one run: delivered msgs/s of MQTT over
# WebSocket through chat-wsfront, against direct TCP to the same broker and
# against mosquitto's own websockets listener (the same broker process, a
# second listener), and the resident memory of idle WebSocket connections
# in chat-wsfront. One broker (Debian mosquitto with chat_auth.so) serves
# all three paths; it runs twice, with set_tcp_nodelay true (as our
# mosquitto.conf) and false. build/wsfront/bench/wsbench is the client.
#
# Settings (environment): SUBS (100), SECONDS_PER_RUN (5), SIZE (64),
# REPEAT (3, alternating targets; the median is reported), IDLE_CONNS (2000),
# MOSQUITTO_PRELOAD (as for run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SUBS=${SUBS:-100}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
SIZE=${SIZE:-64}
REPEAT=${REPEAT:-3}
IDLE_CONNS=${IDLE_CONNS:-2000}
bench=$BUILD/wsfront/bench/wsbench
for f in $bench $BUILD/wsfront/chat-wsfront $BUILD/authplugin/chat_auth.so; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "bench-wsfront: $f is not built" >&2; exit 1; }
done
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  # bounded: a process that ignores SIGTERM for 10 s is said so and killed
  # (seen once: chat-wsfront spinning inside lws_service, see README)
  for _ in $(seq 1 100); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      echo "bench-wsfront: WARNING: $(tr '\0' ' ' < /proc/$p/cmdline) did not stop on SIGTERM within 10 s: killed" >&2
      kill -9 "$p" 2>/dev/null || true
    fi
  done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "bench-wsfront: nothing on port $1" >&2; exit 1; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $work/jwt.secret
printf 'jwt_alg HS256\njwt_key_file %s\n' "$work/jwt.secret" > $work/chat.conf

# start_node NAME NODELAY: a broker with a TCP and a websockets listener,
# and a wsfront in front of its TCP listener; sets <NAME>_tcp, _mws, _http,
# _wsfront_pid.
start_node() {
  local name=$1 nodelay=$2 tcp mws http
  tcp=$(free_port); mws=$(free_port); http=$(free_port)
  cat > $work/$name-mosquitto.conf <<CONF
per_listener_settings false
allow_anonymous false
persistence false
log_dest stderr
log_type error
max_keepalive 3600
max_queued_messages 100000
set_tcp_nodelay $nodelay
user $(id -un)
plugin $(realpath $BUILD/authplugin/chat_auth.so)
plugin_opt_jwt_alg HS256
plugin_opt_jwt_key_file $work/jwt.secret
plugin_opt_topic_prefix chat
listener $tcp 127.0.0.1
listener $mws 127.0.0.1
protocol websockets
CONF
  # MOSQUITTO_PRELOAD: the ASan runtime, when the plugin is a sanitized build
  env ${MOSQUITTO_PRELOAD:+LD_PRELOAD=$MOSQUITTO_PRELOAD ASAN_OPTIONS=detect_leaks=0} \
    mosquitto -c $work/$name-mosquitto.conf 2> $work/$name-mosquitto.log &
  pids+=($!)
  cat > $work/$name-wsfront.conf <<CONF
jwt_alg HS256
jwt_key_file $work/jwt.secret
mqtt_port $tcp
http_port $http
store_url sqlite:$work/chat.db
static_dir $work
# every benchmark connection comes from 127.0.0.1: lift the per-address cap
http_max_conns 100000
http_max_conns_per_addr 100000
CONF
  $BUILD/wsfront/chat-wsfront --config $work/$name-wsfront.conf 2> $work/$name-wsfront.log &
  pids+=($!)
  eval "${name}_wsfront_pid=$! ${name}_tcp=$tcp ${name}_mws=$mws ${name}_http=$http"
  wait_port $tcp; wait_port $mws; wait_port $http
}
# as mosquitto.conf runs it (set_tcp_nodelay true: every message its own
# segment), and with Nagle's coalescing, which mosquitto's websockets
# listener keeps whatever that setting says
start_node nd true
start_node ng false

run() { # name args...
  local name=$1; shift
  $bench --config $work/chat.conf "$@" fanout "$SUBS" "$SECONDS_PER_RUN" "$SIZE" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["delivered_per_s"])' >> $work/$name
}
echo "bench-wsfront: $REPEAT x ($SUBS subscribers, 1 publisher, QoS 0, $SIZE B, ${SECONDS_PER_RUN}s) per path"
for r in $(seq 1 "$REPEAT"); do
  for n in nd ng; do
    eval "tcp=\$${n}_tcp http=\$${n}_http mws=\$${n}_mws"
    run $n-tcp --port $tcp
    run $n-wsfront --port $http --ws /mqtt
    run $n-mosquitto_ws --port $mws --ws /mqtt
  done
done
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

idle=$($bench --config $work/chat.conf --port $nd_http --ws /mqtt idle "$IDLE_CONNS" $nd_wsfront_pid)
per_conn=$(echo "$idle" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_per_connection"])')

python3 - "$per_conn" "$IDLE_CONNS" $(for k in nd-tcp nd-wsfront nd-mosquitto_ws ng-tcp ng-wsfront ng-mosquitto_ws; do median $k; done) <<'PY'
import sys
per, n, t1, w1, m1, t2, w2, m2 = (float(x) for x in sys.argv[1:])
f = lambda v: format(int(v), ",")
print()
print("| delivered msgs/s (median) | direct TCP | WebSocket via chat-wsfront | mosquitto websockets listener | wsfront / TCP (target >= 0.70) | wsfront / mosquitto ws (target >= 1.00) |")
print("|---|---:|---:|---:|---:|---:|")
print("| broker set_tcp_nodelay true (as mosquitto.conf) | %s | **%s** | %s | **%.2f** | **%.2f** |" % (f(t1), f(w1), f(m1), w1 / t1, w1 / m1))
print("| broker set_tcp_nodelay false (Nagle) | %s | **%s** | %s | **%.2f** | **%.2f** |" % (f(t2), f(w2), f(m2), w2 / t2, w2 / m2))
print()
print("idle WebSocket connection in chat-wsfront: **%.1f KiB** each (%d connected, subscribed sessions; RSS growth; target <= 16 KiB)" % (per / 1024, n))
PY
