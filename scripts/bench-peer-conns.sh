#!/usr/bin/env bash
# The connections goal of issue 11 (MODE=conns scripts/bench-peer.sh):
# CONNS MQTT clients (bench/peer/conns.js, MQTT.js, keepalive 60 s) over
# the two-node cluster (half on each broker, fresh HS256 JWT each) and over
# one plain mosquitto, from several 127.x source addresses. Per system:
#   connect_s        all CONNACKs, at most 64 connects in flight per broker
#   rss_per_conn_kb  all-in growth of the server processes' RSS (cluster:
#                    brokers + plugin + bridges + Redis) / CONNS
#                    (and rss_<process>_per_conn_kb per process in the raw line)
#   idle_cpu_pct     their CPU while the clients idle, % of one core
#   storm_s          every broker killed and started again: until every
#                    client is back, each with a fresh token
#   presence_s       (cluster) until an observer on chat/presence/+ has
#                    seen every user online again
# CONNS defaults to 5,000. Each cluster broker needs about CONNS/2 + 200
# open files, the plain broker CONNS + 200; the load generator splits its
# clients over as many processes as the limit needs (PROCS). Past what the
# limit allows (ulimit -n; raise the hard one with a container's --ulimit
# nofile or systemd's LimitNOFILE) the script refuses a count a cluster
# broker cannot hold, and leaves plain mosquitto out, saying why, when its
# one broker cannot. The load generator uses one 127.x source address per
# 1,000 clients (SOURCES).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CONNS=${CONNS:-5000}
IDLE=${IDLE:-5}
SOURCES=${SOURCES:-0}
SYSTEMS=${SYSTEMS:-cluster plain}
PRESENCE_WAIT=${PRESENCE_WAIT:-20}
. scripts/bench-peer-lib.sh

limit=$(ulimit -n)
if [ "$limit" -lt $((CONNS / 2 + 200)) ]; then
  echo "bench-peer: CONNS=$CONNS needs $((CONNS / 2 + 200)) open files per cluster broker, the limit here is $limit (hard $(ulimit -Hn)): raise it (see the top of $0)" >&2
  exit 1
fi
# generator processes, each with at most limit - 200 clients
PROCS=${PROCS:-$(( (CONNS + limit - 201) / (limit - 200) ))}
if [ "$limit" -lt $((CONNS + 200)) ] && [[ " $SYSTEMS " == *" plain "* ]]; then
  echo "bench-peer: plain mosquitto is left out: one broker would need $((CONNS + 200)) open files, the limit here is $limit" >&2
  SYSTEMS=${SYSTEMS//plain/}
fi
peer_install
start_cluster
start_plain

# A script that kills the given brokers and starts each again on its port;
# what it starts, cleanup stops.
restart_script() {
  local f=$work/restart-$1.sh name
  { echo "set -e"
    for name in "$@"; do
      echo "p=\$(cat $work/$name.pid); kill \$p; while kill -0 \$p 2>/dev/null; do sleep 0.02; done"
    done
    for name in "$@"; do
      local preload=""
      grep -q '^plugin ' "$work/$name.conf" && [ -n "${MOSQUITTO_PRELOAD:-}" ] &&
        preload="LD_PRELOAD=$MOSQUITTO_PRELOAD ASAN_OPTIONS=detect_leaks=0"
      echo "env $preload mosquitto -c $work/$name.conf >> $work/$name.log 2>&1 & echo \$! > $work/$name.pid; echo \$! >> $work/restarted"
    done
    for name in "$@"; do
      echo "port=\$(sed -n 's/^listener \([0-9]*\).*/\1/p' $work/$name.conf)"
      echo "for _ in \$(seq 150); do (exec 3<>/dev/tcp/127.0.0.1/\$port) 2>/dev/null && break; sleep 0.02; done"
    done
  } > "$f"
  echo "bash $f"
}

echo "bench-peer connections: $CONNS clients, mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
for sys in $SYSTEMS; do
  case $sys in
    cluster)
      args=(--kind chat --ports "$n1,$n2" --secret-file "$work/secret" --presence-port "$n2"
        --pids "redis=$(pid_of credis),broker1=$(pid_of broker1),broker2=$(pid_of broker2),bridge1=$(pid_of bridge1),bridge2=$(pid_of bridge2)"
        --restart-cmd "$(restart_script broker1 broker2)") ;;
    plain)
      args=(--kind plain --ports "$plain" --pids "broker=$(pid_of plain)" --restart-cmd "$(restart_script plain)") ;;
  esac
  out=$(node --max-old-space-size=8192 bench/peer/conns.js "${args[@]}" --count "$CONNS" --idle "$IDLE" --sources "$SOURCES" --procs "$PROCS" \
    --presence-wait "$PRESENCE_WAIT")
  echo "  raw: $sys: $out"
  echo "$out" > "$work/conns.$sys"
done

get() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$work/conns.$1" 2>/dev/null || echo nan; }
echo
echo "| $CONNS connections | this project (2 nodes) | plain mosquitto (1 broker) | cluster / plain |"
echo "|---|---:|---:|---:|"
for f in connect_s rss_per_conn_kb idle_cpu_pct storm_s presence_s; do
  c=$(get cluster $f); p=$(get plain $f)
  awk -v f="$f" -v c="${c:-nan}" -v p="${p:--}" 'BEGIN {
    r = (c + 0 > 0 && p + 0 > 0) ? sprintf("%.2f", c / p) : "-"
    printf "| %s | %s | %s | %s |\n", f, c, p, r }'
done
