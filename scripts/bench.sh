#!/usr/bin/env bash
# The auth-plugin benchmark: one run starts two brokers from the same
# mosquitto binary on free loopback ports — plain (no plugin, anonymous) and
# with chat_auth.so (HS256) — and measures both with build/bench/chatbench:
#   1. connects/s for N fresh connections (each with its own JWT on the
#      plugin broker);
#   2. delivered msgs/s on a 1-to-S fan-out (QoS 0, 64-byte payloads), and
#      the broker's CPU time per delivered message, whose difference is the
#      cost of the plugin's per-delivery ACL read check.
# Each measurement is repeated (REPEAT, default 3), alternating brokers, and
# the median is reported with the ratio plugin/plain.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
COUNT=${COUNT:-5000}
INFLIGHT=${INFLIGHT:-32}
SUBS=${SUBS:-100}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/chatbench
[ -x "$bench" ] || { echo "bench: build first (make build)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/secret"

plain_port=$(free_port)
plugin_port=$(free_port)
cat > "$work/plain.conf" <<CONF
per_listener_settings false
allow_anonymous true
max_connections -1
persistence false
user $(id -un)
listener $plain_port 127.0.0.1
$(scripts/broker-limits.sh)
CONF
cat > "$work/plugin.conf" <<CONF
per_listener_settings false
allow_anonymous false
max_connections -1
persistence false
user $(id -un)
listener $plugin_port 127.0.0.1
plugin $PWD/$BUILD/authplugin/chat_auth.so
plugin_opt_jwt_alg HS256
plugin_opt_jwt_key_file $work/secret
$(scripts/broker-limits.sh)
CONF
ulimit -n "$(ulimit -Hn)"
mosquitto -c "$work/plain.conf" > "$work/plain.log" 2>&1 & plain_pid=$!; pids+=($plain_pid)
mosquitto -c "$work/plugin.conf" > "$work/plugin.log" 2>&1 & plugin_pid=$!; pids+=($plugin_pid)
for port in $plain_port $plugin_port; do
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "chatbench: mosquitto $(mosquitto -h 2>/dev/null | sed -n 's/.*version \([0-9.]*\).*/\1/p'), $(nproc) cores, $COUNT connects ($INFLIGHT in flight), 1-to-$SUBS fan-out for ${SECONDS_PER_RUN}s, median of $REPEAT"
: > "$work/c.plain"; : > "$work/c.plugin"; : > "$work/f.plain"; : > "$work/f.plugin"
: > "$work/n.plain"; : > "$work/n.plugin"
for i in $(seq "$REPEAT"); do
  $bench connect --port "$plain_port" --count "$COUNT" --inflight "$INFLIGHT" | tee -a "$work/raw" | field connects_per_s >> "$work/c.plain"
  sleep 1
  $bench connect --port "$plugin_port" --count "$COUNT" --inflight "$INFLIGHT" --secret-file "$work/secret" | tee -a "$work/raw" | field connects_per_s >> "$work/c.plugin"
  sleep 1
  out=$($bench fanout --port "$plain_port" --subs "$SUBS" --seconds "$SECONDS_PER_RUN" --broker-pid "$plain_pid")
  echo "$out" >> "$work/raw"; echo "$out" | field delivered_per_s >> "$work/f.plain"; echo "$out" | field broker_ns_per_delivery >> "$work/n.plain"
  out=$($bench fanout --port "$plugin_port" --subs "$SUBS" --seconds "$SECONDS_PER_RUN" --secret-file "$work/secret" --broker-pid "$plugin_pid")
  echo "$out" >> "$work/raw"; echo "$out" | field delivered_per_s >> "$work/f.plugin"; echo "$out" | field broker_ns_per_delivery >> "$work/n.plugin"
done
acl=$($bench acl --count 20000000)
echo "$acl" >> "$work/raw"
sed 's/^/  raw: /' "$work/raw"
acl_ns=$(echo "$acl" | field ns_per_check)

cp=$(median < "$work/c.plain"); cj=$(median < "$work/c.plugin")
fp=$(median < "$work/f.plain"); fj=$(median < "$work/f.plugin")
np=$(median < "$work/n.plain"); nj=$(median < "$work/n.plugin")
awk -v cp="$cp" -v cj="$cj" -v fp="$fp" -v fj="$fj" -v np="$np" -v nj="$nj" -v acl="$acl_ns" 'BEGIN {
  printf "\n%-40s %12s %12s %8s\n", "", "plain", "plugin", "ratio"
  printf "%-40s %12.0f %12.0f %8.3f\n", "connects/s (plugin: HS256 JWT each)", cp, cj, cj / cp
  printf "%-40s %12.0f %12.0f %8.3f\n", "delivered msgs/s, 1-to-'"$SUBS"' fan-out", fp, fj, fj / fp
  printf "%-40s %12.0f %12.0f %8.3f\n", "broker CPU ns per delivered message", np, nj, nj / np
  printf "\nplugin cost: %.1f%% of delivered msgs/s (target <= 10%%), about %.0f ns of broker CPU per ACL read check\n", (1 - fj / fp) * 100, nj - np
  printf "ACL read check in-process (lookup + rules, 10,000 connections): %.1f ns\n", acl
  printf "JWT connects/s: %.0f (target >= 5000)\n", cj
}'
