#!/usr/bin/env bash
# Proves the federation peers without Causerie: Prosody <-> ejabberd and
# Prosody <-> Prosody exchange subscriptions, presence and messages through
# exchange.py, in four trust modes, and the logs show the s2s authentication
# each mode must use (see README.md for the table).
#
#   bash tests/interop/s2s/check.sh        (as root)
#
# Installs what is missing (peers.sh install; slixmpp into the venv the
# interop suite uses), starts the peers in a fresh folder, and stops them by
# PID at the end, also on failure. Ends with "s2s-peers: N passed, M failed";
# exits non-zero when a check failed or none ran. PEERS_KEEP=1 keeps the
# folder (configs and logs of each mode under DIR/runs/).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE_DIR="${CAUSERIE_INTEROP_CACHE:-/var/tmp/causerie-interop}"
VENV="$CACHE_DIR/venv"
SLIXMPP_VERSION="1.17.0" # the pin of tests/interop/run.sh
EXCHANGE_TIMEOUT=60
PASSWORD="secret-pw"

PASSED=0
FAILED=0
DIR=""

say() { printf '%s\n' "$*"; }
pass() {
    PASSED=$((PASSED + 1))
    say "PASS $*"
}
fail() {
    FAILED=$((FAILED + 1))
    say "FAIL $*"
}

cleanup() {
    local rc=$?
    if [ -n "$DIR" ] && [ -d "$DIR" ]; then
        bash "$HERE/peers.sh" stop "$DIR" || true
        if [ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ] && [ "${PEERS_KEEP:-0}" != 1 ]; then
            rm -rf "$DIR"
        else
            say "s2s-peers: configs and logs kept in $DIR"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

venv_has_slixmpp() {
    [ -x "$VENV/bin/python" ] &&
        [ "$("$VENV/bin/python" -c 'import slixmpp; print(slixmpp.__version__)' 2>/dev/null)" = \
            "$SLIXMPP_VERSION" ]
}

# The same virtual environment, made the same way, as tests/interop/run.sh.
ensure_slixmpp() {
    venv_has_slixmpp && return 0
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/install.lock"
    flock -w 900 9 || {
        fail "lock $CACHE_DIR/install.lock"
        return 1
    }
    if ! venv_has_slixmpp; then
        say "installing slixmpp $SLIXMPP_VERSION into $VENV"
        rm -rf "$VENV"
        if ! { timeout 900 python3 -m venv "$VENV" &&
            timeout 900 "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input -q \
                "slixmpp==$SLIXMPP_VERSION" </dev/null; }; then
            fail "install slixmpp $SLIXMPP_VERSION (hint: python3 -m venv $VENV && $VENV/bin/python -m pip install slixmpp==$SLIXMPP_VERSION)"
            flock -u 9
            return 1
        fi
    fi
    flock -u 9
    exec 9>&-
}

# exchange LABEL A HOST_A B HOST_B: runs exchange.py and counts its lines.
exchange() {
    local label="$1" a="$2" a_host="$3" b="$4" b_host="$5" out rc=0 ok bad
    out="$DIR/runs/$MODE/exchange-${a%%@*}-${b%%@*}.out"
    PYTHONDONTWRITEBYTECODE=1 timeout -k 5 $((EXCHANGE_TIMEOUT + 15)) "$VENV/bin/python" \
        "$HERE/exchange.py" --a "$a" --a-pass "$PASSWORD" --a-host "$a_host" --a-port 5222 \
        --b "$b" --b-pass "$PASSWORD" --b-host "$b_host" --b-port 5222 \
        --ca "$DIR/certs/ca.crt" --timeout "$EXCHANGE_TIMEOUT" \
        --log-file "${out%.out}.xmpp.log" </dev/null >"$out" 2>&1 || rc=$?
    sed -n 's/^\(PASS\|FAIL\) /  \1 /p' "$out"
    ok="$(grep -c '^PASS ' "$out" || true)"
    bad="$(grep -c '^FAIL ' "$out" || true)"
    if [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]; then
        pass "$label: $a <-> $b ($ok checks)"
    else
        fail "$label: $a <-> $b (status $rc, $bad failed checks; see $out)"
    fi
}

# expect_log LABEL FILE PATTERN: the log has a line matching PATTERN.
expect_log() {
    if grep -qE -- "$3" "$2" 2>/dev/null; then
        pass "$1"
    else
        fail "$1: no line matching '$3' in $2"
    fi
}

# absent_log LABEL FILE PATTERN: the log has no line matching PATTERN.
absent_log() {
    if grep -qE -- "$3" "$2" 2>/dev/null; then
        fail "$1: found '$(grep -m1 -E -- "$3" "$2" | cut -c1-200)' in $2"
    else
        pass "$1"
    fi
}

# run_mode NO_CA: a fresh start of the peers with those peers untrusting the
# test CA, the exchanges, the authentication each side logged, a stop.
run_mode() {
    MODE="ca"
    [ -n "$1" ] && MODE="no-ca-${1// /-}"
    say ""
    say "=== mode $MODE (untrusting the test CA: ${1:-none}) ==="
    mkdir -p "$DIR/runs/$MODE"
    if ! PEERS_NO_CA="$1" bash "$HERE/peers.sh" start "$DIR" >"$DIR/runs/$MODE/start.out" 2>&1; then
        fail "$MODE: peers.sh start ($(tail -n 1 "$DIR/runs/$MODE/start.out"))"
        bash "$HERE/peers.sh" stop "$DIR" || true
        return 0
    fi
    pass "$MODE: peers.sh start"
    local t0 t1
    t0="$(date +%s%N)"
    exchange "$MODE" alice@prosody.test 127.0.0.3 bob@ejabberd.test 127.0.0.4
    t1="$(date +%s%N)"
    say "  (first Prosody <-> ejabberd exchange, s2s set-up included: $(((t1 - t0) / 1000000)) ms)"
    exchange "$MODE" alice@prosody.test 127.0.0.3 carol@prosody2.test 127.0.0.5

    local ej="$DIR/ejabberd/log/ejabberd.log" p1="$DIR/prosody.log" p2="$DIR/prosody2.log"
    local in_ext="Accepted inbound s2s EXTERNAL authentication prosody.test -> ejabberd.test"
    local in_db="Accepted inbound s2s dialback authentication prosody.test -> ejabberd.test"
    local out_ext="Accepted outbound s2s EXTERNAL authentication ejabberd.test -> prosody.test"
    local out_db="Accepted outbound s2s dialback authentication ejabberd.test -> prosody.test"
    case "$1" in
        "")
            expect_log "$MODE: prosody -> ejabberd authenticated by SASL EXTERNAL" "$ej" "$in_ext"
            expect_log "$MODE: ejabberd -> prosody authenticated by SASL EXTERNAL" "$ej" "$out_ext"
            absent_log "$MODE: no dialback between prosody and ejabberd" "$ej" "$in_db|$out_db"
            expect_log "$MODE: prosody -> prosody2 by SASL EXTERNAL" "$p2" \
                "Accepting SASL EXTERNAL identity from prosody.test"
            expect_log "$MODE: prosody2 -> prosody by SASL EXTERNAL" "$p1" \
                "Accepting SASL EXTERNAL identity from prosody2.test"
            absent_log "$MODE: no dialback key sent by prosody" "$p1" "sent dialback key"
            ;;
        prosody)
            expect_log "$MODE: prosody -> ejabberd still by SASL EXTERNAL (ejabberd trusts prosody)" "$ej" "$in_ext"
            expect_log "$MODE: ejabberd -> prosody by dialback (prosody offers no EXTERNAL)" "$ej" "$out_db"
            absent_log "$MODE: ejabberd -> prosody never by EXTERNAL" "$ej" "$out_ext"
            expect_log "$MODE: ejabberd sent prosody a dialback key" "$p1" \
                "Received\\[s2sin_unauthed\\]: <result [^>]*from='ejabberd\\.test'"
            ;;
        ejabberd)
            expect_log "$MODE: prosody -> ejabberd by dialback after EXTERNAL was refused" "$ej" "$in_db"
            expect_log "$MODE: prosody fell back from EXTERNAL to dialback" "$p1" \
                "SASL EXTERNAL failed, falling back to dialback"
            absent_log "$MODE: prosody -> ejabberd never by EXTERNAL" "$ej" "$in_ext"
            expect_log "$MODE: ejabberd -> prosody still by SASL EXTERNAL (prosody trusts ejabberd)" "$ej" "$out_ext"
            ;;
        "prosody ejabberd")
            expect_log "$MODE: prosody -> ejabberd by dialback" "$ej" "$in_db"
            expect_log "$MODE: ejabberd -> prosody by dialback" "$ej" "$out_db"
            absent_log "$MODE: no SASL EXTERNAL between prosody and ejabberd" "$ej" "$in_ext|$out_ext"
            ;;
    esac
    absent_log "$MODE: no DNS timeout in the ejabberd log" "$ej" "DNS lookup failed"

    bash "$HERE/peers.sh" stop "$DIR"
    local f
    for f in prosody.log prosody2.log ejabberd/log/ejabberd.log dns-queries.log; do
        [ -e "$DIR/$f" ] && mv "$DIR/$f" "$DIR/runs/$MODE/$(basename "$f")"
    done
    # A restart must not mistake a leftover for a running peer.
    if bash "$HERE/peers.sh" status "$DIR" | grep -q ': running'; then
        fail "$MODE: peers.sh stop left a process running"
    else
        pass "$MODE: peers.sh stop"
    fi
}

main() {
    [ "$(id -u)" -eq 0 ] || {
        fail "check.sh needs root (apt-get, /etc/hosts, port 53)"
        return 1
    }
    say "=== tools ==="
    if bash "$HERE/peers.sh" install; then
        pass "peers.sh install"
    else
        fail "peers.sh install"
        return 1
    fi
    ensure_slixmpp || return 1
    pass "slixmpp $SLIXMPP_VERSION in $VENV"
    DIR="$(mktemp -d "${TMPDIR:-/tmp}/s2s-peers.XXXXXX")"
    run_mode ""
    run_mode "prosody"
    run_mode "ejabberd"
    run_mode "prosody ejabberd"
}

rc=0
main || rc=$?
say ""
say "s2s-peers: $PASSED passed, $FAILED failed"
if [ "$rc" -ne 0 ] || [ "$FAILED" -gt 0 ] || [ "$PASSED" -eq 0 ]; then
    exit 1
fi
