#!/usr/bin/env bash
# Starts a local chat stack from the repository root: one redis-server and,
# per node, a mosquitto broker with the chat plugin (node N listens on
# MQTT_PORT + N - 1), its chat-bridge and its chat-wsfront (the web app,
# HTTP API and MQTT over WebSocket on HTTP_PORT + N - 1). Creates the public room "general". Writes run/stack.json, prints where to connect and a
# token for the user "demo", then waits; Ctrl-C or `make stop` stops it all.
# REDIS=sentinel: a primary (REDIS_PORT), two replicas (REDIS_PORT + 1, + 2)
# and three sentinels (SENTINEL_PORT .. + 2) instead of one redis-server;
# every component finds the primary through the sentinels (README "Redis
# high availability"). Kill the primary to watch a failover.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-1}
MQTT_PORT=${MQTT_PORT:-1883}
REDIS_PORT=${REDIS_PORT:-6379}
HTTP_PORT=${HTTP_PORT:-8080}
BUILD=${BUILD:-build}
run=$(realpath -m "${RUN_DIR:-run}")
REDIS=${REDIS:-single}
SENTINEL_PORT=${SENTINEL_PORT:-26379}
case "$REDIS" in single|sentinel) ;; *) echo "run: REDIS must be single or sentinel" >&2; exit 2;; esac
redis_ports=$REDIS_PORT
[ "$REDIS" = sentinel ] && redis_ports="$(seq $REDIS_PORT $((REDIS_PORT + 2))) $(seq $SENTINEL_PORT $((SENTINEL_PORT + 2)))"

case "$NODES" in ''|*[!0-9]*) echo "run: NODES must be a number" >&2; exit 2;; esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 9 ] || { echo "run: NODES must be 1..9" >&2; exit 2; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ls $run/*.pid >/dev/null 2>&1; then
  RUN_DIR=$run scripts/stop.sh >/dev/null 2>&1 || true
fi
for p in $redis_ports $(seq $MQTT_PORT $((MQTT_PORT + NODES - 1))) \
         $(seq $HTTP_PORT $((HTTP_PORT + NODES - 1))); do
  if port_busy "$p"; then
    echo "run: port $p is in use; stop what holds it, or set MQTT_PORT / REDIS_PORT / HTTP_PORT" >&2
    exit 1
  fi
done

mkdir -p "$run/redis"
chmod 700 "$run"
if [ ! -s $run/jwt.secret ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $run/jwt.secret; echo >> $run/jwt.secret)
fi
# Redis AUTH: a random password made on the first start and kept under
# run/ (mode 600); redis-server gets it through a config file (not the
# command line, which ps shows) and every component through
# redis_password_file. Delete run/redis.password to get a new one.
if [ ! -s $run/redis.password ]; then
  (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $run/redis.password; echo >> $run/redis.password)
fi
(umask 077; echo "requirepass $(head -n 1 $run/redis.password)" > $run/redis.conf)
redis_auth="redis_password_file $run/redis.password"
if [ "$REDIS" = sentinel ]; then
  # any of them may be made primary or replica: each knows the password
  # and refuses writes while no replica follows it (posts: "unavailable")
  (umask 077; printf 'masterauth %s\nmin-replicas-to-write 1\nmin-replicas-max-lag 5\n' \
    "$(head -n 1 $run/redis.password)" >> $run/redis.conf)
  sentinels="127.0.0.1:$SENTINEL_PORT,127.0.0.1:$((SENTINEL_PORT + 1)),127.0.0.1:$((SENTINEL_PORT + 2))"
  redis_auth="$redis_auth
redis_sentinels $sentinels
redis_master_name chat"
fi
# --- TLS: a local CA and a certificate for localhost under run/tls/ (made
# once, so a browser that trusts run/tls/ca.crt keeps trusting it), and the
# TLS listeners beside the plain ones: node N serves MQTT over TLS on
# MQTTS_PORT + N - 1 and HTTPS/WSS on HTTPS_PORT + N - 1, on TLS_HOST.
MQTTS_PORT=${MQTTS_PORT:-$((MQTT_PORT + 7000))}
HTTPS_PORT=${HTTPS_PORT:-$((HTTP_PORT + 363))}
TLS_HOST=${TLS_HOST:-127.0.0.1}
deploy/gen-certs.sh "$run/tls"
for p in $(seq $MQTTS_PORT $((MQTTS_PORT + NODES - 1))) $(seq $HTTPS_PORT $((HTTPS_PORT + NODES - 1))); do
  port_busy "$p" && { echo "run: port $p is in use; set MQTTS_PORT / HTTPS_PORT" >&2; exit 1; }
done
tls_mosquitto_conf() { # node $1's TLS listener
  sed -i "s|^listener 8883$|listener $((MQTTS_PORT + $1 - 1)) $TLS_HOST|
          s|^certfile run/tls/|certfile $run/tls/|; s|^keyfile run/tls/|keyfile $run/tls/|" \
    $run/node$1/mosquitto.conf
}
tls_wsfront_conf() { # node $1's HTTPS/WSS listener
  printf 'tls_cert_file %s\ntls_key_file %s\nhttps_host %s\nhttps_port %s\n' \
    "$run/tls/server.crt" "$run/tls/server.key" "$TLS_HOST" $((HTTPS_PORT + $1 - 1)) \
    >> $run/node$1/wsfront.conf
}
tls_banner() {
  echo "  MQTT over TLS: $(for n in $(seq 1 "$NODES"); do printf 'node%s localhost:%s  ' "$n" $((MQTTS_PORT + n - 1)); done)"
  echo "  HTTPS/WSS:     $(for n in $(seq 1 "$NODES"); do printf 'https://localhost:%s/  ' $((HTTPS_PORT + n - 1)); done)"
  echo "  CA to trust:   $run/tls/ca.crt   (mosquitto_sub --cafile $run/tls/ca.crt -p $MQTTS_PORT ...)"
}
# --- end TLS

cat > $run/chat.conf <<CONF
# written by scripts/run.sh
jwt_alg HS256
jwt_key_file $run/jwt.secret
topic_prefix chat
redis_port $REDIS_PORT
$redis_auth
CONF

stopping=0
cleanup() {
  [ $stopping -eq 1 ] && return
  stopping=1
  echo
  RUN_DIR=$run scripts/stop.sh
}
trap cleanup INT TERM EXIT

# every write synced before it is acknowledged: seq numbers survive a crash
redis-server $run/redis.conf --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$run/redis" \
  --appendonly yes --appendfsync always --daemonize no > $run/redis.log 2>&1 &
echo $! > $run/redis.pid
if [ "$REDIS" = sentinel ]; then
  for i in 1 2; do
    mkdir -p $run/redis-r$i
    (umask 077; { cat $run/redis.conf; echo "replicaof 127.0.0.1 $REDIS_PORT"; } > $run/redis-r$i/redis.conf)
    redis-server $run/redis-r$i/redis.conf --port $((REDIS_PORT + i)) --bind 127.0.0.1 \
      --dir "$run/redis-r$i" --appendonly yes --appendfsync always --daemonize no \
      > $run/redis-r$i.log 2>&1 &
    echo $! > $run/redis-r$i.pid
  done
  sentinel_bin=$(command -v redis-sentinel || true)
  for i in 0 1 2; do
    mkdir -p $run/sentinel$i
    # written anew each start: a sentinel rewrites its file with what it saw
    (umask 077; cat > $run/sentinel$i/sentinel.conf <<CONF
port $((SENTINEL_PORT + i))
bind 127.0.0.1
dir $run/sentinel$i
sentinel monitor chat 127.0.0.1 $REDIS_PORT 2
sentinel auth-pass chat $(head -n 1 $run/redis.password)
sentinel down-after-milliseconds chat 2000
sentinel failover-timeout chat 10000
CONF
)
    if [ -n "$sentinel_bin" ]; then
      $sentinel_bin $run/sentinel$i/sentinel.conf > $run/sentinel$i.log 2>&1 &
    else
      redis-server $run/sentinel$i/sentinel.conf --sentinel > $run/sentinel$i.log 2>&1 &
    fi
    echo $! > $run/sentinel$i.pid
  done
fi

# As root, mosquitto would switch to the "mosquitto" user, which cannot read
# the private secret under run/; keep the invoking user.
nodes_json=""
for n in $(seq 1 "$NODES"); do
  port=$((MQTT_PORT + n - 1))
  mkdir -p $run/node$n
  sed "s/^listener 1883 127.0.0.1$/listener $port 127.0.0.1/; s|^plugin build/|plugin $BUILD/|
       s|^plugin_opt_jwt_key_file run/jwt.secret$|plugin_opt_jwt_key_file $run/jwt.secret|" \
    mosquitto.conf > $run/node$n/mosquitto.conf
  tls_mosquitto_conf $n
  echo "user $(id -un)" >> $run/node$n/mosquitto.conf
  # MOSQUITTO_PRELOAD: the ASan runtime, when the plugin is a sanitized build
  env ${MOSQUITTO_PRELOAD:+LD_PRELOAD=$MOSQUITTO_PRELOAD ASAN_OPTIONS=detect_leaks=0} \
    mosquitto -c $run/node$n/mosquitto.conf > $run/node$n/mosquitto.log 2>&1 &
  echo $! > $run/node$n.pid
  nodes_json+="${nodes_json:+,}{\"name\":\"node$n\",\"mqtt\":{\"host\":\"127.0.0.1\",\"port\":$port},\"http\":{\"host\":\"127.0.0.1\",\"port\":$((HTTP_PORT + n - 1))}}"
done

wait_port() {
  local port=$1 what=$2 log=$3
  for _ in $(seq 1 100); do
    port_busy "$port" && return 0
    sleep 0.1
  done
  echo "run: $what did not start; its log ($log):" >&2
  tail -20 "$log" >&2
  exit 1
}
wait_port "$REDIS_PORT" redis-server $run/redis.log
if [ "$REDIS" = sentinel ]; then
  for i in 1 2; do wait_port $((REDIS_PORT + i)) "redis replica $i" $run/redis-r$i.log; done
  for i in 0 1 2; do wait_port $((SENTINEL_PORT + i)) "sentinel $i" $run/sentinel$i.log; done
  # the primary takes writes only once a replica follows it
  for _ in $(seq 1 100); do
    REDISCLI_AUTH=$(head -n 1 $run/redis.password) redis-cli -p "$REDIS_PORT" INFO replication \
      2>/dev/null | grep -q '^min_slaves_good_slaves:[12]' && break
    sleep 0.1
  done
fi
for n in $(seq 1 "$NODES"); do
  wait_port $((MQTT_PORT + n - 1)) "mosquitto node$n" $run/node$n/mosquitto.log
done

for n in $(seq 1 "$NODES"); do
  cat > $run/node$n/bridge.conf <<CONF
# written by scripts/run.sh
jwt_alg HS256
jwt_key_file $run/jwt.secret
node_name node$n
mqtt_port $((MQTT_PORT + n - 1))
redis_port $REDIS_PORT
$redis_auth
store_url sqlite:$run/chat.db
journal_file $run/node$n/bridge.journal
CONF
  env -u CHAT_CONFIG $BUILD/bridge/chat-bridge --config $run/node$n/bridge.conf \
    > $run/node$n/bridge.log 2>&1 &
  echo $! > $run/bridge$n.pid
done
for n in $(seq 1 "$NODES"); do
  for _ in $(seq 1 100); do
    grep -q "feed " $run/node$n/bridge.log 2>/dev/null && break
    sleep 0.1
  done
  grep -q "feed " $run/node$n/bridge.log || { echo "run: bridge node$n did not start:" >&2; tail -20 $run/node$n/bridge.log >&2; exit 1; }
done

# the web front of each node: web app, HTTP API, MQTT over WebSocket
for n in $(seq 1 "$NODES"); do
  cat > $run/node$n/wsfront.conf <<CONF
# written by scripts/run.sh
jwt_alg HS256
jwt_key_file $run/jwt.secret
node_name node$n
mqtt_port $((MQTT_PORT + n - 1))
redis_port $REDIS_PORT
$redis_auth
store_url sqlite:$run/chat.db
http_port $((HTTP_PORT + n - 1))
static_dir $(realpath -m "$BUILD/wsfront/app")
CONF
  tls_wsfront_conf $n
  env -u CHAT_CONFIG $BUILD/wsfront/chat-wsfront --config $run/node$n/wsfront.conf \
    > $run/node$n/wsfront.log 2>&1 &
  echo $! > $run/wsfront$n.pid
done
for n in $(seq 1 "$NODES"); do
  wait_port $((HTTP_PORT + n - 1)) "wsfront node$n" $run/node$n/wsfront.log
done

cat > $run/stack.json <<JSON
{"nodes":[$nodes_json],
 "redis":"redis://127.0.0.1:$REDIS_PORT",
 "store":"sqlite:$run/chat.db",
 "config":"$run/chat.conf",
 "jwt_secret_file":"$run/jwt.secret",
 "redis_password_file":"$run/redis.password"}
JSON

token=$($BUILD/chatctl/chatctl --config $run/chat.conf token demo --ttl 24h)
# the room everyone can use at once (a second run just gets "conflict")
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -u demo -P "$token" -i demo:setup -q 1 \
  -t chat/in/demo/rpc -m '{"id":"setup","method":"room.create","params":{"room":"general"}}'

cat <<TXT

chat stack is up ($NODES node(s)); endpoints are in $run/stack.json
  MQTT:  $(for n in $(seq 1 "$NODES"); do printf 'node%s 127.0.0.1:%s  ' "$n" $((MQTT_PORT + n - 1)); done)
  Redis: 127.0.0.1:$REDIS_PORT, password in $run/redis.password
         (REDISCLI_AUTH=\$(cat $run/redis.password) redis-cli -p $REDIS_PORT)
$([ "$REDIS" = sentinel ] && echo "         replicas on $((REDIS_PORT + 1)) and $((REDIS_PORT + 2)); sentinels $sentinels, master name chat
         (redis-cli -p $SENTINEL_PORT SENTINEL get-master-addr-by-name chat; kill \$(cat $run/redis.pid) to fail over)")
$(tls_banner)

The web app (open it in two browser windows, sign up, and chat):
  $(for n in $(seq 1 "$NODES"); do printf 'http://127.0.0.1:%s/  ' $((HTTP_PORT + n - 1)); done)
  (health: http://127.0.0.1:$HTTP_PORT/healthz  metrics: http://127.0.0.1:$HTTP_PORT/metrics)

A token for the user "demo" (valid 24 h):
  $token

Try it (two terminals; with NODES=2, subscribe on one node and publish on the other):
  mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -u demo -P '$token' -i demo -t 'chat/user/demo/#' -t chat/room/general -v
  mosquitto_pub -h 127.0.0.1 -p $((MQTT_PORT + NODES - 1)) -u demo -P '$token' -i demo:cli -t chat/in/demo/room/general -m 'hello'

More tokens: $BUILD/chatctl/chatctl --config $run/chat.conf token USER [--ttl 1h]
Stop: Ctrl-C here, or 'make stop' from another terminal.
TXT

# Stay in the foreground until a child exits or we are told to stop; with
# REDIS=sentinel a Redis server or sentinel that dies is what the stack is
# there to survive, so only the nodes' servers count.
if [ "$REDIS" = sentinel ]; then
  wait -n $(cat $run/node*.pid $run/bridge*.pid $run/wsfront*.pid)
else
  wait -n
fi
echo "run: a server exited; see the logs under $run/" >&2
