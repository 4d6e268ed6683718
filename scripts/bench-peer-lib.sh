# Sourced by scripts/bench-peer.sh and scripts/bench-peer-conns.sh: starts
# the three systems on free loopback ports, each process recorded in pids
# (and its id in a file of $work, for the loadgen's CPU readings), and stops
# them all on exit, Ctrl-C included. Expects BUILD and set -euo pipefail.
[ -x "$BUILD/bridge/chat-bridge" ] && [ -f "$BUILD/authplugin/chat_auth.so" ] ||
  { echo "bench-peer: build first (make build)" >&2; exit 1; }
command -v node >/dev/null || { echo "bench-peer: needs Node.js (scripts/install-deps.sh --test)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
# ours PID: still a child of this script, or started by it with a file of
# $work on its command line (a broker the connections mode restarted), so
# that an id the system reused is never killed.
ours() {
  [ -r "/proc/$1/stat" ] || return 1
  [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f2)" = $$ ] || tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF "$work"
}
restarted_alive() {
  local p
  [ -f "$work/restarted" ] || return 1
  while read -r p; do ours "$p" && return 0; done < "$work/restarted"
  return 1
}
cleanup() {
  local p
  # brokers restarted by the connections mode record their ids in restarted
  [ -f "$work/restarted" ] && while read -r p; do ours "$p" && kill "$p" 2>/dev/null; done < "$work/restarted"
  for p in "${pids[@]}"; do ours "$p" && kill "$p" 2>/dev/null; done
  # each one gone (at most 5 s) before its files are removed
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do restarted_alive || break; sleep 0.1; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "bench-peer: nothing listens on $1" >&2
  tail -n 5 "$work"/*.log >&2
  exit 1
}
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"
ulimit -n "$(ulimit -Hn)"
export CHAT_CLK_TCK=$(getconf CLK_TCK)

# The peer's packages, from package-lock.json, once per lock file (a stamp
# named for its hash, as the web app's build does).
peer_install() {
  local stamp
  stamp="bench/peer/node_modules/.chat-lock-$(sha256sum bench/peer/package-lock.json | cut -c1-16)"
  [ -f "$stamp" ] && return 0
  (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error) >&2
  touch "$stamp"
}

broker_common() {
  printf 'per_listener_settings false\nmax_connections -1\npersistence false\nmax_queued_messages 100000\nset_tcp_nodelay true\nuser %s\n' "$(id -un)"
}

# mosquitto -c CONF > LOG, as NAME: pid in $work/NAME.pid. A broker with
# the plugin gets MOSQUITTO_PRELOAD (the ASan runtime, when the plugin is a
# sanitized build), as run.sh does.
start_broker() {
  local name=$1 conf=$2 preload=()
  grep -q '^plugin ' "$conf" && [ -n "${MOSQUITTO_PRELOAD:-}" ] &&
    preload=("LD_PRELOAD=$MOSQUITTO_PRELOAD" ASAN_OPTIONS=detect_leaks=0)
  env "${preload[@]}" mosquitto -c "$conf" > "$work/$name.log" 2>&1 & pids+=($!)
  echo $! > "$work/$name.pid"
}

start_plain() {
  plain=$(free_port)
  { broker_common; printf 'allow_anonymous true\nlistener %s 127.0.0.1\n' "$plain"; } > "$work/plain.conf"
  start_broker plain "$work/plain.conf"
  wait_port "$plain"
}

# The floor of any cross-instance design built on stock mosquitto: two
# plain brokers joined by mosquitto's own bridge (broker A forwards
# chat/room/# to broker B at QoS 1, as a chat-bridge delivers), no plugin,
# no Redis, no sequencing, no durability. Publishers on A, subscribers on B.
start_pair() {
  pair_a=$(free_port); pair_b=$(free_port)
  { broker_common; printf 'allow_anonymous true\nlistener %s 127.0.0.1\n' "$pair_b"; } > "$work/pairb.conf"
  start_broker pairb "$work/pairb.conf"
  wait_port "$pair_b"
  { broker_common
    printf 'allow_anonymous true\nlistener %s 127.0.0.1\n' "$pair_a"
    printf 'connection pair\naddress 127.0.0.1:%s\ntopic chat/room/# out 1\n' "$pair_b"
    printf 'bridge_protocol_version mqttv311\ncleansession true\nrestart_timeout 1\n'; } > "$work/paira.conf"
  start_broker paira "$work/paira.conf"
  wait_port "$pair_a"
  # up once a message published on A arrives on B
  local i
  for i in $(seq 20); do
    mosquitto_sub -p "$pair_b" -t chat/room/pair-probe -C 1 -W 1 > "$work/pair.probe" 2>/dev/null &
    sleep 0.2
    mosquitto_pub -p "$pair_a" -t chat/room/pair-probe -m "$i" -q 1
    wait $! 2>/dev/null || true
    [ -s "$work/pair.probe" ] && return 0
  done
  echo "bench-peer: the mosquitto pair's bridge did not come up" >&2
  tail -n 5 "$work/paira.log" >&2
  exit 1
}

# Two brokers with the plugin, a bridge each, one Redis with fsync always:
# what make run NODES=2 starts, with the benchmark's users unthrottled.
start_cluster() {
  n1=$(free_port); n2=$(free_port); credis=$(free_port)
  local i=0 port
  for port in $n1 $n2; do
    i=$((i + 1))
    { broker_common
      printf 'allow_anonymous false\nlistener %s 127.0.0.1\nplugin %s\nplugin_opt_jwt_alg HS256\nplugin_opt_jwt_key_file %s\n' \
        "$port" "$(realpath "$BUILD")/authplugin/chat_auth.so" "$work/secret"; } > "$work/broker$i.conf"
    start_broker "broker$i" "$work/broker$i.conf"
  done
  mkdir -p "$work/credis"
  redis-server --port "$credis" --bind 127.0.0.1 --dir "$work/credis" --save '' \
    --appendonly yes --appendfsync always > "$work/credis.log" 2>&1 & pids+=($!)
  echo $! > "$work/credis.pid"
  for port in $n1 $n2 $credis; do wait_port "$port"; done
  i=0
  for port in $n1 $n2; do
    i=$((i + 1))
    printf 'jwt_alg HS256\njwt_key_file %s\nnode_name bench%s\nmqtt_port %s\nredis_port %s\nstore_url sqlite:%s/chat.db\nrate_per_s 1000000\nrate_burst 1000000\n' \
      "$work/secret" "$i" "$port" "$credis" "$work" > "$work/bridge$i.conf"
    echo "journal_file $work/bridge$i.journal" >> "$work/bridge$i.conf"
    env -u CHAT_CONFIG "$BUILD/bridge/chat-bridge" --config "$work/bridge$i.conf" > "$work/bridge$i.log" 2>&1 & pids+=($!)
    echo $! > "$work/bridge$i.pid"
  done
  wait_bridges bridge "$credis"
}

# Waits until bridges 1 and 2 (logs $work/<$1>N.log) read the feed and
# Redis (port $2) is restored; else shows the log and stops.
wait_bridges() {
  local i
  for i in 1 2; do
    for _ in $(seq 150); do
      grep -q "feed " "$work/$1$i.log" && [ "$(redis-cli -p "$2" EXISTS chat:restored)" = 1 ] && break
      sleep 0.1
    done
    grep -q "feed " "$work/$1$i.log" || { echo "$(basename "$0"): $1 $i did not start" >&2; cat "$work/$1$i.log" >&2; exit 1; }
  done
}

# Two Socket.IO instances on one Redis without fsync (the peer's own).
start_peer() {
  s1=$(free_port); s2=$(free_port); sredis=$(free_port)
  mkdir -p "$work/sredis"
  redis-server --port "$sredis" --bind 127.0.0.1 --dir "$work/sredis" --save '' \
    --appendonly no > "$work/sredis.log" 2>&1 & pids+=($!)
  echo $! > "$work/sredis.pid"
  wait_port "$sredis"
  local i=0 port
  for port in $s1 $s2; do
    i=$((i + 1))
    node bench/peer/server.js --port "$port" --redis-port "$sredis" --secret-file "$work/secret" \
      --name "peer$i" > "$work/peer$i.log" 2>&1 & pids+=($!)
    echo $! > "$work/peer$i.pid"
  done
  for port in $s1 $s2; do wait_port "$port"; done
}

pid_of() { cat "$work/$1.pid"; }

# The loadgen's arguments for one system: where to connect, which
# processes' CPU counts.
loadgen_args() {
  case $1 in
    cluster) echo "--kind chat --pub-port $n1 --sub-port $n2 --secret-file $work/secret" \
      "--pids redis=$(pid_of credis),broker1=$(pid_of broker1),broker2=$(pid_of broker2),bridge1=$(pid_of bridge1),bridge2=$(pid_of bridge2)" ;;
    plain) echo "--kind plain --pub-port $plain --pids broker=$(pid_of plain)" ;;
    pair) echo "--kind plain --pub-port $pair_a --sub-port $pair_b --pids brokera=$(pid_of paira),brokerb=$(pid_of pairb)" ;;
    peer) echo "--kind sio --pub-port $s1 --sub-port $s2 --secret-file $work/secret" \
      "--pids redis=$(pid_of sredis),node1=$(pid_of peer1),node2=$(pid_of peer2)" ;;
  esac
}

# Where the cluster's CPU goes at 10,000 delivered/s (1,000 posts/s to a
# room of 10): CPU-s per process, Redis commands per post and µs per call
# over the measured window; with PERF=1 the top of a perf profile of
# bridge 1 and of Redis over the same run.
profile_cluster() {
  local seconds=$PROFILE_SECONDS SYSCALLS=${SYSCALLS:-1} out perfs=() p
  command -v perf > /dev/null || SYSCALLS=0
  echo
  echo "profile: cluster at 10,000 delivered/s (1,000 posts/s, room of 10), ${seconds} s"
  if [ "$PERF" = 1 ]; then
    for p in ${PERF_PROCS:-bridge1 credis broker1}; do
      perf record -F 499 -e cpu-clock -g -o "$work/$p.perf" -p "$(pid_of "$p")" -- sleep $((WARMUP + seconds + 1)) \
        > "$work/$p.perf.log" 2>&1 & perfs+=($!)
    done
    sleep 1
  fi
  # syscalls, context switches (a sleep and a wake-up each), and of the
  # syscalls the reads (libmosquitto reads a packet's header byte by byte),
  # epoll_ctl (mosquitto re-arms EPOLLOUT around each write) and fdatasync
  # (appendfsync always: one per Redis write turn), per process over the
  # run: stable per post where the CPU-seconds are noisy
  local stats=() sp
  if [ "$SYSCALLS" = 1 ]; then
    for p in credis broker1 broker2 bridge1 bridge2; do
      perf stat -x, -e raw_syscalls:sys_enter,context-switches,syscalls:sys_enter_read,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_fdatasync -o "$work/$p.stat" -p "$(pid_of "$p")" \
        -- sleep $((WARMUP + seconds + 3)) > /dev/null 2>&1 & stats+=($!)
    done
  fi
  out=$(node bench/peer/loadgen.js $(loadgen_args cluster) --redis-port "$credis" --pubs "$PUBS" --subs 10 \
    --rate 1000 --seconds "$seconds" --warmup "$WARMUP")
  echo "  raw: $out"
  local posts
  posts=$(echo "$out" | sed -n 's/.* posted=\([0-9]*\).*/\1/p')
  echo "  $(echo "$out" | tr ' ' '\n' | grep -E '^(delivered_per_s|p50_ms|p99_ms|p999_ms)=' | tr '\n' ' ')"
  printf '  %-10s %8s %12s\n' process CPU-s "µs per post"
  echo "$out" | tr ' ' '\n' | grep '^cpu_' | grep -v '^cpu_s=' | awk -F= -v n="$posts" '
    { printf "  %-10s %8.2f %12.1f\n", substr($1, 5), $2, n ? $2 * 1e6 / n : 0 }'
  echo "  Redis INFO commandstats over the window, $posts posts:"
  printf '  %-16s %9s %9s %9s %12s\n' command calls "per post" "µs/call" "µs per post"
  echo "$out" | tr ' ' '\n' | grep '^redis_' | tr '=/' '  ' | awk -v n="$posts" '
    { c += $2; u += $3; printf "  %-16s %9d %9.2f %9.1f %12.1f\n", substr($1, 7), $2, $2 / n, $3 / $2, $3 / n }
    END { printf "  %-16s %9d %9.2f %9.1f %12.1f\n", "(sum *)", c, c / n, c ? u / c : 0, u / n }' | sort -k2,2 -g -r
  echo "  * Redis 7 counts the commands a script runs on their own lines and again in its evalsha's µs"
  if [ "$SYSCALLS" = 1 ]; then
    for sp in "${stats[@]}"; do wait "$sp" 2>/dev/null || true; done
    echo "  per post (perf stat over the whole run, divided by all its posts, warm-up included):"
    printf '  %-10s %9s %9s %9s %9s %9s\n' process syscalls switches read epoll_ctl fdatasync
    for p in credis broker1 broker2 bridge1 bridge2; do
      # (no counts when perf may not watch the process: left out)
      grep -q '^[0-9]*,,raw_syscalls' "$work/$p.stat" 2>/dev/null || continue
      awk -F, -v p="$p" -v n="$posts" -v f="$(awk -v w="$WARMUP" -v s="$seconds" 'BEGIN { print s / (w + s) }')" '
        $3 ~ /:/ || $3 == "context-switches" { v[$3] = $1 + 0 }
        END { if (n) printf "  %-10s %9.1f %9.1f %9.1f %9.1f %9.2f\n", p, v["raw_syscalls:sys_enter"] * f / n,
          v["context-switches"] * f / n, v["syscalls:sys_enter_read"] * f / n,
          v["syscalls:sys_enter_epoll_ctl"] * f / n, v["syscalls:sys_enter_fdatasync"] * f / n }' "$work/$p.stat"
    done
  fi
  if [ "$PERF" = 1 ]; then
    wait "${perfs[@]}" 2>/dev/null || true
    for p in ${PERF_PROCS:-bridge1 credis broker1}; do
      echo "  perf (cpu-clock, self time), $p, top 15:"
      # (head ends the pipe early: not a failure)
      perf report -i "$work/$p.perf" --stdio --no-children --sort dso 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -6 | sed 's/^/    by object: /' || true
      perf report -i "$work/$p.perf" --stdio --no-children --sort dso,symbol 2>/dev/null |
        grep -E '^ +[0-9.]+%' | head -15 | sed 's/ *- *- *$//; s/^/    /' || true
    done
  fi
}
