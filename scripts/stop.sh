#!/usr/bin/env bash
# Stops what scripts/run.sh started, using the pid files under run/.
cd "$(dirname "$0")/.."
run=${RUN_DIR:-run}
stopped=0
for f in "$run"/*.pid; do
  [ -e "$f" ] || continue
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    stopped=$((stopped + 1))
  fi
  rm -f "$f"
done
echo "stopped $stopped process(es)"
