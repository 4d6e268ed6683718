#!/usr/bin/env bash
# A local Redis Cluster of 3 primaries and 3 replicas on loopback, for
# `make run REDIS=cluster` (issue 23; scripts/run.sh does not call it yet).
#
#   scripts/redis-cluster.sh start DIR PORT   nodes on PORT .. PORT+5 (cluster
#                                             bus: each port + 10000), data
#                                             and logs under DIR/redis-c0..5,
#                                             pids in DIR/redis-c0..5.pid
#   scripts/redis-cluster.sh stop DIR         stops them (scripts/stop.sh,
#                                             which stops every DIR/*.pid, does too)
#
# Every node runs as the project runs Redis: each write in the append-only
# file, synced before the reply; with PASSWORD_FILE (its first line) a
# password, which every node also uses to its primary (masterauth). The
# cluster is formed once (`redis-cli --cluster create`); a later start
# finds it in each node's nodes.conf. Prints the seed list
# (host:port,...) on its last line once every node says cluster_state:ok.
#
# NODE_TIMEOUT_MS (default 2000): how long a primary may not answer before
# its replica takes over; with 2000 a kill -9 of a primary is followed by
# writes accepted again within ~4 s. cluster-require-full-coverage no: the
# other shards keep serving meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
NODE_TIMEOUT_MS=${NODE_TIMEOUT_MS:-2000}

# All at once, then waiting for all: a primary's shutdown waits for its
# replicas to acknowledge its last writes (up to a second or so each).
stop() {
  pids=()
  for i in 0 1 2 3 4 5; do
    f="$dir/redis-c$i.pid"
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null && pids+=("$pid")
    rm -f "$f"
  done
  for _ in $(seq 1 100); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

case "$cmd" in
  stop) stop; exit 0 ;;
  start) [ $# -eq 3 ] || usage ;;
  *) usage ;;
esac

port=$3
case "$port" in ''|*[!0-9]*) usage ;; esac
[ "$port" -ge 1 ] && [ "$port" -le 55530 ] || { echo "redis-cluster: PORT must be 1..55530" >&2; exit 2; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in 0 1 2 3 4 5; do
  for p in $((port + i)) $((port + i + 10000)); do
    if port_busy "$p"; then
      echo "redis-cluster: port $p is in use" >&2
      exit 1
    fi
  done
done

cli=(redis-cli)
if [ -n "${PASSWORD_FILE:-}" ]; then
  REDISCLI_AUTH=$(head -n 1 "$PASSWORD_FILE")
  export REDISCLI_AUTH
fi
mkdir -p "$dir"
addrs=()
for i in 0 1 2 3 4 5; do
  p=$((port + i))
  d="$dir/redis-c$i"
  mkdir -p "$d"
  # the password goes in a file (mode 600), not on the command line
  (umask 077
   {
     echo "cluster-enabled yes"
     echo "cluster-config-file nodes.conf"
     echo "cluster-node-timeout $NODE_TIMEOUT_MS"
     echo "cluster-require-full-coverage no"
     if [ -n "${PASSWORD_FILE:-}" ]; then
       echo "requirepass $REDISCLI_AUTH"
       echo "masterauth $REDISCLI_AUTH"
     fi
   } > "$d/redis.conf")
  redis-server "$d/redis.conf" --port "$p" --bind 127.0.0.1 --dir "$d" --save "" \
    --appendonly yes --appendfsync always --daemonize no > "$d/redis.log" 2>&1 &
  echo $! > "$dir/redis-c$i.pid"
  addrs+=("127.0.0.1:$p")
done

answers() { "${cli[@]}" -p "$1" PING 2>/dev/null | grep -q PONG; }
for i in 0 1 2 3 4 5; do
  for _ in $(seq 1 100); do answers $((port + i)) && break; sleep 0.1; done
  answers $((port + i)) || { echo "redis-cluster: node on $((port + i)) did not start:" >&2
                             tail -5 "$dir/redis-c$i/redis.log" >&2; stop; exit 1; }
done

# formed once: a node that knows other nodes is part of a cluster already
known=$("${cli[@]}" -p "$port" CLUSTER INFO | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')
if [ "$known" = 1 ]; then
  if ! "${cli[@]}" --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
      > "$dir/redis-cluster-create.log" 2>&1; then
    echo "redis-cluster: create failed:" >&2
    tail -20 "$dir/redis-cluster-create.log" >&2
    stop
    exit 1
  fi
fi

ok() {
  for i in 0 1 2 3 4 5; do
    "${cli[@]}" -p $((port + i)) CLUSTER INFO 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}
for _ in $(seq 1 300); do ok && break; sleep 0.1; done
ok || { echo "redis-cluster: not cluster_state:ok after 30 s" >&2; stop; exit 1; }
(IFS=,; echo "${addrs[*]}")
