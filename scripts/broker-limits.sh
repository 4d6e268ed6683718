#!/usr/bin/env bash
# Prints the per-client queue limits of the repository's mosquitto.conf,
# for scripts that write a broker configuration of their own: the chat
# plugin checks its bridge bounds against them at start (README
# "Security"), and a broker without them would refuse to load it.
exec grep -E '^(max_inflight_messages|max_inflight_bytes|max_queued_messages|max_queued_bytes|allow_duplicate_messages) ' \
  "$(dirname "$0")/../mosquitto.conf"
