#!/usr/bin/env bash
# Creates the secrets docker-compose.yml reads, once, under deploy/secrets/
# (or $CHAT_SECRETS_DIR): the JWT secret, the Redis password, and a local
# CA with a server certificate for localhost and the names given (the host
# names clients will use). Existing files are kept. The folder is 0700, the
# files inside readable, because Compose bind-mounts them into containers
# that run as other users.
#   deploy/init-secrets.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${CHAT_SECRETS_DIR:-deploy/secrets}
mkdir -p "$dir"
chmod 700 "$dir"
rand() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -s "$dir/jwt_secret" ] || { rand > "$dir/jwt_secret"; echo >> "$dir/jwt_secret"; }
[ -s "$dir/redis_password" ] || rand > "$dir/redis_password"
deploy/gen-certs.sh "$dir" "$@"
chmod 644 "$dir/jwt_secret" "$dir/redis_password" "$dir/server.key"
echo "secrets in $dir; clients trust $dir/ca.crt"
