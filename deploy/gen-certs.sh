#!/usr/bin/env bash
# Makes a local certificate authority and one server certificate signed by
# it, for development and tests (make run, the compose stack's first start):
#   DIR/ca.crt  the CA clients trust (mosquitto_sub --cafile, the browser)
#   DIR/ca.key  its key (keep it to sign more; never give it to a server)
#   DIR/server.crt, DIR/server.key  what the broker, web front use
# The server certificate names localhost, 127.0.0.1 and every extra name
# given (DNS names or IP addresses). Existing files are kept, so a CA the
# user already trusts stays valid across restarts.
#   deploy/gen-certs.sh DIR [NAME...]
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
chmod 700 "$dir"
[ -s "$dir/ca.crt" ] && [ -s "$dir/server.crt" ] && [ -s "$dir/server.key" ] && exit 0

san="DNS:localhost,IP:127.0.0.1"
for name in "$@"; do
  if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then san+=",IP:$name"; else san+=",DNS:$name"; fi
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(
  umask 077
  [ -s "$dir/ca.key" ] || openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 -subj "/CN=chatbroker local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$tmp/ca.crt"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/server.key" 2>/dev/null
  openssl req -new -key "$tmp/server.key" -subj "/CN=localhost" -out "$tmp/server.csr"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" > "$tmp/ext"
  openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$tmp/ext" -out "$tmp/server.crt" 2>/dev/null
)
# readable by the servers' users; the folder (0700) keeps others out
chmod 644 "$tmp/ca.crt" "$tmp/server.crt"
chmod 600 "$tmp/server.key"
mv "$tmp/ca.crt" "$tmp/server.crt" "$tmp/server.key" "$dir/"
