#!/usr/bin/env bash
# Installs what building, running and (with --test) testing need on Debian 12,
# and nothing that is already there. Safe to run again: when everything is
# present it only checks, in well under a second.
#
#   scripts/install-deps.sh          build and run dependencies
#   scripts/install-deps.sh --test   also the test servers and clients
set -euo pipefail

FERRETDB_VERSION=v1.24.2
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

run_packages=(build-essential cmake ninja-build pkg-config git openssl
  mosquitto mosquitto-clients libmosquitto-dev mosquitto-dev
  libwebsockets-dev libhiredis-dev libmongoc-dev libbson-dev libjwt-dev
  libcjson-dev libsodium-dev libsqlite3-dev libssl-dev libzxcvbn-dev redis-server)
test_packages=(python3 python3-pytest python3-paho-mqtt python3-pymongo
  gcc-arm-none-eabi libnewlib-arm-none-eabi clang libclang-rt-14-dev
  chromium fonts-dejavu-core redis-sentinel
  docker.io docker-compose debootstrap libnss3-tools)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

packages=("${run_packages[@]}")
[ $want_test -eq 1 ] && packages+=("${test_packages[@]}")
# the web app's build runs npm (MQTT.js; playwright-core for its tests); a
# Node.js that brings its own npm is fine, else Debian's
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian enables and starts these as system services; the project starts
# its own on its own ports, so a system one only holds port 1883/6379.
for svc in mosquitto redis-server redis-sentinel; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    "${sudo_cmd[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done

[ $want_test -eq 1 ] || exit 0

# The Socket.IO peer of make bench-peer and its load generator (Node.js
# packages from bench/peer/package-lock.json), once per lock file.
peer_dir="$(cd "$(dirname "$0")/.." && pwd)/bench/peer"
peer_stamp="$peer_dir/node_modules/.chat-lock-$(sha256sum "$peer_dir/package-lock.json" | cut -c1-16)"
if [ ! -f "$peer_stamp" ]; then
  echo "install-deps: npm ci in bench/peer"
  (cd "$peer_dir" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$peer_stamp"
fi

# FerretDB (MongoDB wire protocol over SQLite) for the storage tests, built
# from the Go module proxy. `go install pkg@version` is refused here (the
# proxy answers 403 to the version-list lookup it makes), and a build from
# the module cache lacks build/version/version.txt, so: download the module,
# copy it, write the version file, build.
ferret_dir="${CHAT_TOOLS_DIR:-$HOME/.cache/chatbroker/bin}"
ferret_ok() {
  local bin
  for bin in "$(command -v ferretdb 2>/dev/null || true)" /usr/local/bin/ferretdb "$ferret_dir/ferretdb"; do
    # read all of its output first: grep -q may exit before ferretdb has
    # written the rest, and under pipefail its SIGPIPE failed the check
    [ -n "$bin" ] && [ -x "$bin" ] && [[ "$("$bin" --version 2>/dev/null)" == *"$FERRETDB_VERSION"* ]] && return 0
  done
  return 1
}
if ! ferret_ok; then
  command -v go >/dev/null || { echo "install-deps: FerretDB needs Go >= 1.22 (not found)" >&2; exit 1; }
  gover=$(go env GOVERSION | sed 's/^go//')
  if [ "$(printf '%s\n1.22\n' "$gover" | sort -V | head -1)" != "1.22" ]; then
    echo "install-deps: FerretDB needs Go >= 1.22, found $gover" >&2
    exit 1
  fi
  echo "install-deps: building FerretDB $FERRETDB_VERSION (about a minute)"
  work=$(mktemp -d)
  trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
  src=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "install-deps: could not download FerretDB" >&2; exit 1; }
  cp -r "$src" "$work/ferretdb"
  chmod -R u+w "$work/ferretdb"
  echo "$FERRETDB_VERSION" > "$work/ferretdb/build/version/version.txt"
  mkdir -p "$ferret_dir"
  (cd "$work/ferretdb" && go build -o "$ferret_dir/ferretdb" ./cmd/ferretdb)
  ferret_ok || { echo "install-deps: FerretDB build did not produce a working binary" >&2; exit 1; }
fi
