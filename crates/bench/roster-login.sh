#!/usr/bin/env bash
# The roster-login comparison in one go: a fresh Causerie and a fresh Prosody on loopback, the
# same accounts on both (user bench1 and contacts bench2..benchN+1, SCRAM-SHA-256 credentials of
# 4096 iterations), `causerie-bench roster-login` against both in the same run (Prosody first),
# then both servers stopped by PID whatever happened.
#
# usage: roster-login.sh WORKDIR [causerie-bench roster-login options...]
#   WORKDIR must not exist yet (or be empty): it holds both servers' data, configs and logs.
# The binaries are taken from $TARGET_DIR (default ${CARGO_TARGET_DIR:-target}/release): build
# them first with `cargo build --release -p causerie-server -p causerie-ctl -p causerie-bench`.
# CONTACTS (default 500) sets the number of contacts; pass the same --contacts to the tool.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
die() { echo "roster-login.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: roster-login.sh WORKDIR [roster-login options]"
work=$1; shift
if [ -e "$work" ] && [ -n "$(ls -A "$work" 2>/dev/null)" ]; then
    die "$work is not empty; the comparison needs fresh servers"
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
bin=${TARGET_DIR:-${CARGO_TARGET_DIR:-target}/release}
for b in causerie causeriectl causerie-bench; do
    [ -x "$bin/$b" ] || die "$bin/$b is missing; build the release binaries first"
done
contacts=${CONTACTS:-500}
[[ $contacts =~ ^[0-9]+$ ]] || die "CONTACTS must be a number"
accounts=$((contacts + 1))

causerie_pid=
cleanup() {
    if [ -n "$causerie_pid" ] && kill -0 "$causerie_pid" 2>/dev/null; then
        kill -TERM "$causerie_pid"
        for _ in $(seq 1 50); do kill -0 "$causerie_pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$causerie_pid" 2>/dev/null && kill -KILL "$causerie_pid"
        echo "causerie PID $causerie_pid stopped"
    fi
    "$here/prosody/stop.sh" "$work/prosody" || true
}
trap cleanup EXIT

# Prosody: STARTTLS on 15322, the same credential kind as Causerie's default.
"$here/prosody/start.sh" "$work/prosody" --addr 127.0.0.1 --port 15322 --tls-port 15323 \
    --users "$accounts" --hash SHA-256 --iterations 4096

# Causerie: STARTTLS on 15222, default settings but for the presence flood limit.
mkdir -p "$work/causerie"
cat > "$work/causerie/causerie.toml" <<EOF
[server]
domains = ["localhost"]
data_dir = "$work/causerie/data"

[c2s]
starttls_listen = ["127.0.0.1:15222"]
direct_tls_listen = ["127.0.0.1:15223"]

[im]
# Preparing sends two subscription stanzas per contact from one session, and the broadcast phase
# hundreds of presence updates within seconds: both far past the default presence flood limit,
# which Prosody (without mod_limits) does not have either.
presence_burst = 100000
presence_per_minute = 100000

[log]
level = "warn"
EOF
"$bin/causerie-bench" users-csv --count "$accounts" --domain localhost --out "$work/causerie/users.csv"
"$bin/causeriectl" --config "$work/causerie/causerie.toml" user import "$work/causerie/users.csv"
"$bin/causerie" --config "$work/causerie/causerie.toml" >"$work/causerie/causerie.log" 2>&1 &
causerie_pid=$!
for _ in $(seq 1 100); do
    kill -0 "$causerie_pid" 2>/dev/null || { cat "$work/causerie/causerie.log" >&2; die "causerie exited"; }
    (exec 3<>/dev/tcp/127.0.0.1/15222) 2>/dev/null && break
    sleep 0.1
done
echo "causerie PID $causerie_pid: c2s 127.0.0.1:15222 (STARTTLS), $accounts accounts"

"$bin/causerie-bench" roster-login \
    --target 127.0.0.1:15222 --target-pid "$causerie_pid" \
    --reference 127.0.0.1:15322 --reference-pid "$(cat "$work/prosody/prosody.pid")" \
    --contacts "$contacts" --mechanism SCRAM-SHA-256 "$@"
