#!/usr/bin/env bash
# What TLS costs per connect: sequential connects/s and milliseconds per
# connect, plain next to TLS (full handshake) and TLS resuming the session,
# to one broker (MQTT CONNECT with a token through the chat plugin, CONNACK,
# DISCONNECT; the TLS listener is the block of mosquitto.conf) and to one
# chat-wsfront (GET /, its HTTPS vhost). The certificates are a local CA
# made by deploy/gen-certs.sh (ECDSA P-256), as make run and compose use.
# build/bench/tlsbench is the client.
#
# Settings (environment): SECONDS_PER_RUN (5), REPEAT (3; the median is
# reported), MOSQUITTO_PRELOAD (as for run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
REPEAT=${REPEAT:-3}
bench=$BUILD/bench/tlsbench
for f in $bench $BUILD/wsfront/chat-wsfront $BUILD/authplugin/chat_auth.so $BUILD/chatctl/chatctl; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "bench-tls: $f is not built" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "bench-tls: nothing on port $1" >&2; exit 1; }

deploy/gen-certs.sh $work/tls
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $work/jwt.secret
printf 'jwt_alg HS256\njwt_key_file %s\n' "$work/jwt.secret" > $work/chat.conf
token=$($BUILD/chatctl/chatctl --config $work/chat.conf token bench --ttl 1h)

mqtt=$(free_port); mqtts=$(free_port); http=$(free_port); https=$(free_port)
{
  printf 'per_listener_settings false\nallow_anonymous false\npersistence false\n'
  # as mosquitto.conf: without it a TLS handshake waits on delayed ACKs
  printf 'set_tcp_nodelay true\nlog_dest stderr\nlog_type error\nuser %s\n' "$(id -un)"
  scripts/broker-limits.sh
  # every connect is the one user "bench": lift its CONNECT budget
  # (plugin_opt_connect_burst, 30 by default), which would refuse all but
  # the first 30 of the measured connects
  printf 'plugin %s\nplugin_opt_jwt_alg HS256\nplugin_opt_jwt_key_file %s\n' \
    "$(realpath $BUILD/authplugin/chat_auth.so)" "$work/jwt.secret"
  printf 'plugin_opt_connect_burst 1000000\nplugin_opt_connect_per_min 1000000\n'
  printf 'listener %s 127.0.0.1\n' $mqtt
  sed -n '/^# --- TLS/,/^# --- end TLS/p' mosquitto.conf |
    sed "s|^listener 8883$|listener $mqtts 127.0.0.1|; s|^certfile .*|certfile $work/tls/server.crt|
         s|^keyfile .*|keyfile $work/tls/server.key|"
} > $work/mosquitto.conf
env ${MOSQUITTO_PRELOAD:+LD_PRELOAD=$MOSQUITTO_PRELOAD ASAN_OPTIONS=detect_leaks=0} \
  mosquitto -c $work/mosquitto.conf 2> $work/mosquitto.log &
pids+=($!)
mkdir -p $work/app
echo '<!doctype html><title>bench</title>' > $work/app/index.html
cat > $work/wsfront.conf <<CONF
jwt_alg HS256
jwt_key_file $work/jwt.secret
mqtt_port $mqtt
http_port $http
https_host 127.0.0.1
https_port $https
tls_cert_file $work/tls/server.crt
tls_key_file $work/tls/server.key
store_url sqlite:$work/chat.db
static_dir $work/app
CONF
$BUILD/wsfront/chat-wsfront --config $work/wsfront.conf 2> $work/wsfront.log &
pids+=($!)
wait_port $mqtt; wait_port $mqtts; wait_port $http; wait_port $https

run() { # name proto mode port
  $bench "$2" "$3" localhost "$4" "$SECONDS_PER_RUN" $work/tls/ca.crt bench "$token" |
    sed -n 's/.* = \([0-9]*\) connects\/s.*/\1/p' >> $work/$1
}
echo "bench-tls: $REPEAT x ${SECONDS_PER_RUN}s of sequential connects per case (median reported)"
for r in $(seq 1 "$REPEAT"); do
  run mqtt-plain mqtt plain $mqtt; run mqtt-tls mqtt tls $mqtts; run mqtt-resume mqtt resume $mqtts
  run http-plain http plain $http; run http-tls http tls $https; run http-resume http resume $https
done
median() { sort -n "$work/$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

python3 - $(for k in mqtt-plain mqtt-tls mqtt-resume http-plain http-tls http-resume; do median $k; done) <<'PY'
import sys
mp, mt, mr, hp, ht, hr = (float(x) for x in sys.argv[1:])
ms = lambda rate: 1000.0 / rate
print()
print("| sequential connects/s (median) | plain | TLS, full handshake | TLS, resumed | handshake cost per connect (full / resumed) |")
print("|---|---:|---:|---:|---:|")
for name, p, t, r in (("MQTT CONNECT+CONNACK (broker, chat plugin)", mp, mt, mr),
                      ("HTTP GET / (chat-wsfront)", hp, ht, hr)):
    print("| %s | %d | **%d** | %d | **+%.2f ms** / +%.2f ms |" % (name, p, t, r, ms(t) - ms(p), ms(r) - ms(p)))
PY
