#!/usr/bin/env bash
# Interoperability check of causerie-testkit's client against Prosody: two throwaway Prosody
# instances on loopback (SCRAM-SHA-1 and SCRAM-SHA-256 credentials), and for each of them
# STARTTLS and direct TLS logins with SCRAM and PLAIN, a chat message each way, stream close,
# and a wrong password refused. Both servers are stopped by PID whatever happens.
#
# usage: check.sh [WORKDIR]     (default: a new folder under /tmp, removed afterwards)
# The load tool is run as $BENCH if set, else with `cargo run --release -p causerie-bench`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then
    work=$1
    keep=1
else
    work=$(mktemp -d /tmp/causerie-prosody-check.XXXXXX)
    keep=0
fi
if [ -n "${BENCH:-}" ]; then
    read -r -a bench <<<"$BENCH"
else
    bench=(cargo run --release -q -p causerie-bench --)
fi

cleanup() {
    "$here/stop.sh" "$work/sha1" >/dev/null 2>&1 || true
    "$here/stop.sh" "$work/sha256" >/dev/null 2>&1 || true
    [ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

"$here/start.sh" "$work/sha1" --addr 127.0.0.1 --port 15322 --tls-port 15323 --users 2 --hash SHA-1
"$here/start.sh" "$work/sha256" --addr 127.0.0.1 --port 15332 --tls-port 15333 --users 2 --hash SHA-256

status=0
"${bench[@]}" check --addr 127.0.0.1:15322 --direct-tls-port 15323 \
    --mechanisms SCRAM-SHA-1,PLAIN || status=1
"${bench[@]}" check --addr 127.0.0.1:15332 --direct-tls-port 15333 \
    --mechanisms SCRAM-SHA-256,PLAIN || status=1
exit $status
