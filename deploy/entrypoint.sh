#!/usr/bin/env bash
# The chat node's entrypoint: writes mosquitto.conf from the image's copy
# (/etc/chat/mosquitto.conf) and the environment, then starts the broker
# with the chat plugin, chat-bridge and chat-wsfront. Settings are CHAT_<KEY>
# variables (README "Configuration"), secrets are files (*_file settings).
# When any of the three exits, the others are stopped and the container
# exits with an error, so the orchestrator restarts the whole node.
#
# Node-only variables (not settings of the C programs):
#   MQTTS_PORT (8883), MQTTS_HOST (all addresses): the TLS MQTT listener
set -euo pipefail

export CHAT_MQTT_PORT=${CHAT_MQTT_PORT:-1883}
export CHAT_HTTP_PORT=${CHAT_HTTP_PORT:-8080}
export CHAT_HTTPS_PORT=${CHAT_HTTPS_PORT:-8443}
export CHAT_STATIC_DIR=${CHAT_STATIC_DIR:-/usr/share/chat/app}
export CHAT_JWT_KEY_FILE=${CHAT_JWT_KEY_FILE:-/run/secrets/jwt_secret}
export CHAT_TLS_CERT_FILE=${CHAT_TLS_CERT_FILE:-/run/secrets/tls_cert}
export CHAT_TLS_KEY_FILE=${CHAT_TLS_KEY_FILE:-/run/secrets/tls_key}
# one name per node in Redis keys and logs: the container's host name
# (unique per replica with --scale) unless set
export CHAT_NODE_NAME=${CHAT_NODE_NAME:-$(hostname | cut -c1-32)}
MQTTS_PORT=${MQTTS_PORT:-8883}
MQTTS_HOST=${MQTTS_HOST:-}

for f in "$CHAT_JWT_KEY_FILE" "$CHAT_TLS_CERT_FILE" "$CHAT_TLS_KEY_FILE"; do
  [ -r "$f" ] || { echo "entrypoint: cannot read $f (a secret; see README \"Deploying\")" >&2; exit 1; }
done
case "$MQTTS_PORT" in ''|*[!0-9]*) echo "entrypoint: MQTTS_PORT must be a port number" >&2; exit 1;; esac

conf=${TMPDIR:-/tmp}/mosquitto.conf
# the plain listener stays on loopback (the bridge and the web front use
# it); the TLS listener is the one the network sees
sed -e "s|^listener 1883 127.0.0.1$|listener $CHAT_MQTT_PORT 127.0.0.1|" \
    -e "s|^listener 8883$|listener $MQTTS_PORT${MQTTS_HOST:+ $MQTTS_HOST}|" \
    -e "s|^certfile .*|certfile $CHAT_TLS_CERT_FILE|" \
    -e "s|^keyfile .*|keyfile $CHAT_TLS_KEY_FILE|" \
    -e "s|^plugin .*|plugin /usr/lib/chat/chat_auth.so|" \
    -e "/^plugin_opt_/d" /etc/chat/mosquitto.conf > "$conf"
# the plugin's settings, from the same variables as the other programs
for key in jwt_alg jwt_key_file jwt_issuer jwt_audience jwt_leeway jwt_max_bytes \
           topic_prefix body_max conn_per_address publish_max publish_props_max \
           connect_burst connect_per_min bridge_grace bridge_queue_max bridge_queue_bytes \
           session_queue_max sessions_per_user session_idle_max; do
  var=CHAT_${key^^}
  [ -n "${!var:-}" ] && echo "plugin_opt_$key ${!var}" >> "$conf"
done
[ -n "${CHAT_JWT_ALG:-}" ] || echo "plugin_opt_jwt_alg HS256" >> "$conf"

pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait
}
trap 'stop_all; exit 0' TERM INT

mosquitto -c "$conf" &
pids+=($!)
# the bridge and the web front connect to the broker at start
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$CHAT_MQTT_PORT") 2>/dev/null && break
  sleep 0.1
done
chat-bridge &
pids+=($!)
chat-wsfront &
pids+=($!)

set +e
wait -n
rc=$?
echo "entrypoint: a node process exited ($rc); stopping the node" >&2
stop_all
exit 1
