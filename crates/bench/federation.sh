#!/usr/bin/env bash
# Messages per second across one server-to-server stream, three ways in one run:
#   causerie->causerie   dave@causerie.test (127.0.0.2) to erin@causerie2.test (127.0.0.6)
#   causerie->prosody    dave@causerie.test to alice@prosody.test (127.0.0.3)
#   prosody->prosody     carol@prosody2.test (127.0.0.5) to alice@prosody.test
# The peers come from tests/interop/s2s/peers.sh (Debian's Prosody, test CA, /etc/hosts entries;
# needs root). Causerie is the release build. Every server is stopped by its PID at the end.
#
#   bash crates/bench/federation.sh [MESSAGES] [WINDOW]      (defaults 5000 and 100)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/tests/interop/s2s/peers.sh"
MESSAGES="${1:-5000}"
WINDOW="${2:-100}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DIR="$(mktemp -d /tmp/causerie-s2s-bench.XXXXXX)"
chmod 0711 "$DIR"
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    bash "$PEERS" stop "$DIR/peers" >/dev/null 2>&1 || true
    echo "files in $DIR"
}
trap cleanup EXIT

(cd "$ROOT" && cargo build --release -p causerie-server -p causerie-ctl -p causerie-bench \
    --bin causerie --bin causeriectl --bin causerie-bench)
BIN="$TARGET_DIR/release"

bash "$PEERS" install
mkdir -p "$DIR/peers"
bash "$PEERS" start "$DIR/peers"
CERTS="$DIR/peers/certs"

# causerie_node NAME DOMAIN IP OTHER_DOMAIN OTHER_IP USER
causerie_node() {
    local name="$1" domain="$2" ip="$3" other="$4" other_ip="$5" user="$6" cfg="$DIR/$1.toml"
    {
        printf '[server]\ndomains = ["%s"]\ndata_dir = "%s"\n\n' "$domain" "$DIR/$name-data"
        printf '[[tls.certificates]]\ndomain = "%s"\ncert = "%s"\nkey = "%s"\n\n' \
            "$domain" "$CERTS/$domain.crt" "$CERTS/$domain.key"
        printf '[c2s]\nstarttls_listen = ["%s:5222"]\ndirect_tls_listen = []\n\n' "$ip"
        printf '[s2s]\nlisten = ["%s:5269"]\ndirect_tls_listen = []\n' "$ip"
        printf 'use_system_roots = false\nca_file = "%s"\n\n' "$CERTS/ca.crt"
        printf '[[federation.partners]]\ndomain = "%s"\nroute = "%s:5269"\n\n' "$other" "$other_ip"
        printf '[[federation.partners]]\ndomain = "prosody.test"\nroute = "127.0.0.3:5269"\n\n'
        # Two servers at once: each serves its metrics on its own address.
        printf '[http]\nlisten = ["%s:5280"]\n\n' "$ip"
        printf '[log]\nlevel = "warn"\n'
    } >"$cfg"
    printf 'secret-pw\n' | "$BIN/causeriectl" --config "$cfg" user add "$user@$domain" >/dev/null
    "$BIN/causerie" --config "$cfg" >"$DIR/$name.log" 2>&1 &
    PIDS+=("$!")
    local deadline=$((SECONDS + 30))
    until timeout 1 bash -c "exec 3<>/dev/tcp/$ip/5269" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || { echo "$name did not start"; cat "$DIR/$name.log"; exit 1; }
        sleep 0.2
    done
}

causerie_node causerie causerie.test 127.0.0.2 causerie2.test 127.0.0.6 dave
causerie_node causerie2 causerie2.test 127.0.0.6 causerie.test 127.0.0.2 erin

"$BIN/causerie-bench" federation --messages "$MESSAGES" --window "$WINDOW" \
    --run "causerie->causerie=dave@causerie.test,secret-pw,127.0.0.2:5222=>erin@causerie2.test,secret-pw,127.0.0.6:5222" \
    --run "causerie->prosody=dave@causerie.test,secret-pw,127.0.0.2:5222=>alice@prosody.test,secret-pw,127.0.0.3:5222" \
    --run "prosody->prosody=carol@prosody2.test,secret-pw,127.0.0.5:5222=>alice@prosody.test,secret-pw,127.0.0.3:5222"
