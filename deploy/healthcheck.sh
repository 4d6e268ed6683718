#!/usr/bin/env bash
# The image's HEALTHCHECK: GET /healthz on the node's loopback HTTP port.
# Healthy only on 200, which the web front answers when the broker, Redis
# and the store all answer. Plain bash, so the image needs no HTTP client.
exec 3<>"/dev/tcp/127.0.0.1/${CHAT_HTTP_PORT:-8080}" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
read -r -t 3 status <&3 || exit 1
case "$status" in "HTTP/1."?" 200"*) exit 0;; *) exit 1;; esac
