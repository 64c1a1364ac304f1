#!/usr/bin/env bash
# Stop the Prosody that start.sh started from DIR, by the PID it wrote there.
# usage: stop.sh DIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: stop.sh DIR" >&2; exit 1; }
dir=$(cd "$1" 2>/dev/null && pwd) || { echo "stop.sh: no folder $1, nothing to stop" >&2; exit 0; }
pidfile=$dir/prosody.pid
[ -s "$pidfile" ] || { echo "stop.sh: no $pidfile, nothing to stop" >&2; exit 0; }
pid=$(cat "$pidfile")
[[ $pid =~ ^[0-9]+$ ]] || { echo "stop.sh: $pidfile does not hold a PID" >&2; exit 1; }
# Only signal the process if it is still the Prosody started with this folder's config: after a
# crash and a reboot the PID may belong to something else.
if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$dir/prosody.cfg.lua"; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "stop.sh: PID $pid did not stop on SIGTERM within 5 s, sending SIGKILL" >&2
        kill -KILL "$pid"
    fi
    echo "prosody PID $pid stopped"
else
    echo "stop.sh: PID $pid is not the Prosody of $dir (already stopped)" >&2
fi
rm -f "$pidfile"
