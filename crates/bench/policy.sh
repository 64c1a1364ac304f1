#!/usr/bin/env bash
# The usage-policy gate on against off, in one run (docs/performance.md, "Usage-policy gate"):
# two release Causerie servers on loopback with the same accounts and the same published policy,
#   gate on    127.0.0.1:15242   [policy] enabled = true (the default)
#   gate off   127.0.0.1:15252   [policy] enabled = false
# then `causerie-bench policy-gate`, which has every bench account accept the policy on the
# gate-on server through the protocol and alternates its rounds between the two servers. At the
# end the receipts written by the gate-on server are counted with causeriectl: one per account
# that accepted, whatever the number of its sessions. Both servers are stopped by their PIDs.
#
#   bash crates/bench/policy.sh [causerie-bench policy-gate options]
#
# ROUNDS (8), SESSIONS (50), USERS (200) and MESSAGES (200) set the size of the run; the
# accounts needed (USERS + ROUNDS × SESSIONS) are created on both servers. Other options go to
# the tool as they are. Builds the three release binaries first, unless BIN names a folder that
# already holds causerie, causeriectl and causerie-bench.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-8}"
SESSIONS="${SESSIONS:-50}"
USERS="${USERS:-200}"
MESSAGES="${MESSAGES:-200}"
for v in ROUNDS SESSIONS USERS MESSAGES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "policy.sh: $v must be a number" >&2; exit 2; }
done
ACCOUNTS=$((USERS + ROUNDS * SESSIONS))
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DIR="$(mktemp -d /tmp/causerie-policy-bench.XXXXXX)"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    echo "files in $DIR"
}
trap cleanup EXIT

if [ -z "${BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release -p causerie-server -p causerie-ctl -p causerie-bench \
        --bin causerie --bin causeriectl --bin causerie-bench)
    BIN="$TARGET_DIR/release"
fi
for b in causerie causeriectl causerie-bench; do
    [ -x "$BIN/$b" ] || { echo "policy.sh: $BIN/$b is missing" >&2; exit 2; }
done

# The policy: any file with a front matter will do; its SHA-256 is the version.
cat >"$DIR/policy.md" <<'EOF'
+++
title = "Benchmark usage policy"
effective = "2020-01-01"
categories = ["message archiving"]
+++
This version exists to measure the cost of the usage-policy gate.
EOF

"$BIN/causerie-bench" users-csv --count "$ACCOUNTS" --domain localhost --out "$DIR/users.csv"

# start_server NAME PORT ENABLED: configure, create the accounts, publish the policy, start.
start_server() {
    local name="$1" port="$2" enabled="$3" cfg="$DIR/$1.toml"
    cat >"$cfg" <<EOF
[server]
domains = ["localhost"]
data_dir = "$DIR/$name-data"

[c2s]
starttls_listen = ["127.0.0.1:$port"]
direct_tls_listen = ["127.0.0.1:$((port + 1))"]

[s2s]
listen = []
direct_tls_listen = []

# Two servers at once: neither takes the default metrics port.
[http]
listen = []

[policy]
enabled = $enabled

[log]
level = "warn"
EOF
    "$BIN/causeriectl" --config "$cfg" user import "$DIR/users.csv" >/dev/null
    "$BIN/causeriectl" --config "$cfg" policy publish "$DIR/policy.md" --by bench >/dev/null
    "$BIN/causerie" --config "$cfg" >"$DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    local pid=$! deadline=$((SECONDS + 30))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$DIR/$name.log" >&2; echo "$name exited" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { cat "$DIR/$name.log" >&2; echo "$name did not start" >&2; exit 1; }
        sleep 0.1
    done
    echo "$name: PID $pid, c2s 127.0.0.1:$port, $ACCOUNTS accounts, [policy] enabled = $enabled"
}

start_server on 15242 true
ON_PID="${PIDS[0]}"
start_server off 15252 false
OFF_PID="${PIDS[1]}"

"$BIN/causerie-bench" policy-gate \
    --on 127.0.0.1:15242 --on-pid "$ON_PID" --off 127.0.0.1:15252 --off-pid "$OFF_PID" \
    --rounds "$ROUNDS" --sessions "$SESSIONS" --users "$USERS" --messages "$MESSAGES" \
    --mechanism SCRAM-SHA-256 "$@"

receipts=$("$BIN/causeriectl" --config "$DIR/on.toml" policy acceptances --csv | tail -n +2 | wc -l)
echo "receipts on the gate-on server: $receipts for $ACCOUNTS accounts (each accepted once)"
[ "$receipts" -eq "$ACCOUNTS" ] || { echo "expected $ACCOUNTS receipts" >&2; exit 1; }
