#!/usr/bin/env bash
# Stop the Prosody that start.sh started from DIR, by the PID it wrote there.
# usage: stop.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 1; }
pidfile=$1/prosody.pid
[ -s "$pidfile" ] || { echo "stop.sh: no $pidfile, nothing to stop" >&2; exit 0; }
pid=$(cat "$pidfile")
if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: PID $pid did not stop on SIGTERM within 5 s, sending SIGKILL" >&2
        kill -KILL "$pid"
    fi
fi
rm -f "$pidfile"
echo "prosody PID $pid stopped"
