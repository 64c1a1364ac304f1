#!/usr/bin/env bash
# Interop tests: real third-party XMPP clients against a freshly started
# Causerie on loopback.
#
# For each suite: a new server with its own config, data folder and free
# ports; users added with causeriectl; scenario scripts that print one line
# per check ("ok - ..." / "not ok - ..."); the server stopped by its PID.
# Suites: slixmpp (login, TLS, SASL), im (RFC 6121 and the XEPs, slixmpp),
# xmppjs (a second client library, xmpp.js on Node, against slixmpp),
# policy (the usage-policy gate, xeps/policy-acceptance.md: a policy
# published with causeriectl, accepted by slixmpp clients through the chat
# prompt and the ad-hoc command, the receipts checked with causeriectl),
# compliance (rules added with causeriectl rules; a slixmpp client's messages
# masked, refused, or its stream ended with an alert to the officer; the
# alert in the audit log), federation (Causerie with a real Prosody and a
# real ejabberd on their own loopback addresses; s2s/suite.sh,
# s2s/README.md; needs root), portable (accounts moved from a real Prosody
# with its XEP-0227 export and causeriectl import; portable/suite.sh; needs
# root).
# The run ends with the line "interop: N passed, M failed" and exits non-zero
# when a check failed or when none ran.
#
# Environment:
#   CAUSERIE_BIN_DIR            folder holding causerie and causeriectl
#                               (default: ${CARGO_TARGET_DIR:-target}/debug,
#                               built with cargo first)
#   CAUSERIE_INTEROP_CACHE      where tools are installed: venv/ (slixmpp),
#                               node/ (xmpp.js)
#                               (default: /var/tmp/causerie-interop)
#   CAUSERIE_INTEROP_LOG_LEVEL  the servers' [log] level (default: info)
#   CAUSERIE_INTEROP_KEEP=1     keep the work folder even when all passed
#   CAUSERIE_INTEROP_SUITES     the suites to run, separated by spaces or
#                               commas, e.g. "policy" or "slixmpp,im"
#                               (default: all of slixmpp im xmppjs policy
#                               compliance federation portable); an unknown
#                               name is a failure
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/interop"
CACHE_DIR="${CAUSERIE_INTEROP_CACHE:-/var/tmp/causerie-interop}"
VENV="$CACHE_DIR/venv"
# Checked with CPython 3.11: binary wheel, STARTTLS, direct TLS and SCRAM.
SLIXMPP_VERSION="1.17.0"
# xmpp.js, pinned with its dependencies by xmppjs/package-lock.json and
# installed with 'npm ci' into NODE_DIR (never into the checkout). Checked
# with Node.js 20.20; it needs at least NODE_MIN.
XMPPJS_VERSION="0.14.0"
NODE_MIN="20.10"
NODE_DIR="$CACHE_DIR/node"
LOG_LEVEL="${CAUSERIE_INTEROP_LOG_LEVEL:-info}"
DOMAIN="localhost"
ALL_SUITES=(slixmpp im xmppjs policy compliance federation portable)
SUITES_WANTED="${CAUSERIE_INTEROP_SUITES:-${ALL_SUITES[*]}}"
read -r -a SUITES <<<"${SUITES_WANTED//,/ }"

# Every wait is bounded (seconds).
SCENARIO_TIMEOUT=120 # one scenario script, overall, unless its line says otherwise
START_TIMEOUT=60     # server start until its ports answer
STOP_TIMEOUT=20      # SIGTERM until the process has exited
CTL_TIMEOUT=60       # one causeriectl command
INSTALL_TIMEOUT=900  # one package install command
BUILD_TIMEOUT=3600   # cargo build of the two binaries

# Debian packages the suites need beyond the base machine; each is
# installed only when dpkg does not list it.
APT_PACKAGES=(
    coreutils  # timeout
    util-linux # flock
)

PASSED=0
FAILED=0
SERVER_PID=""
SERVER_LOG=""
APT_UPDATED=0
XMPPJS_READY=0

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/causerie-interop.XXXXXX")"

say() { printf '%s\n' "$*"; }
header() { printf '\n=== %s ===\n' "$*"; }
pass() {
    PASSED=$((PASSED + 1))
    say "ok - $*"
}
fail() {
    FAILED=$((FAILED + 1))
    say "not ok - $*"
}

# Stops the server started last, by its PID: SIGTERM, then SIGKILL when it
# does not exit in time. Prints nothing; returns the exit status (or 124 when
# it had to be killed).
terminate_server() {
    local pid="$1" waited=0 status=0
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            return 124
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    wait "$pid" 2>/dev/null || status=$?
    return "$status"
}

cleanup() {
    local rc=$?
    stop_peers
    stop_pie_prosody
    stop_pie_ejabberd
    if [ -n "$SERVER_PID" ]; then
        terminate_server "$SERVER_PID" || true
        SERVER_PID=""
    fi
    if [ "$rc" -eq 0 ] && [ "${CAUSERIE_INTEROP_KEEP:-0}" != 1 ]; then
        rm -rf "$WORK_DIR"
    elif [ "$rc" -ne 0 ] && [ "$FAILED" -eq 0 ]; then
        # Stopped before the summary (interrupted or an unexpected error).
        say "interop: stopped with status $rc; files kept in $WORK_DIR" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# suite_selected NAME: true when the run includes that suite.
suite_selected() {
    local suite
    for suite in "${SUITES[@]}"; do
        [ "$suite" = "$1" ] && return 0
    done
    return 1
}

# An unknown name in CAUSERIE_INTEROP_SUITES, or none at all, is a failure:
# a typo must not turn into a run that checks less than asked.
check_suites() {
    local suite rc=0
    for suite in "${SUITES[@]}"; do
        case " ${ALL_SUITES[*]} " in
        *" $suite "*) ;;
        *)
            fail "unknown suite '$suite' in CAUSERIE_INTEROP_SUITES (known: ${ALL_SUITES[*]})"
            rc=1
            ;;
        esac
    done
    if [ "${#SUITES[@]}" -eq 0 ]; then
        fail "CAUSERIE_INTEROP_SUITES='$SUITES_WANTED' names no suite (known: ${ALL_SUITES[*]})"
        rc=1
    fi
    return "$rc"
}

print_file() {
    local title="$1" file="$2" max="${3:-400}"
    if [ ! -s "$file" ]; then
        say "----- $title ($file): empty -----"
        return 0
    fi
    say "----- $title ($file, last $max lines) -----"
    tail -n "$max" "$file"
    say "----- end of $title -----"
}

# ---------------------------------------------------------------------------
# Tools

# ensure_apt PACKAGE...: installs the Debian packages that are missing,
# running 'apt-get update' once per run before the first install.
ensure_apt() {
    local pkg missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' ||
            missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        fail "Debian packages ${missing[*]} missing and apt-get not found (install them by hand)"
        return 1
    fi
    if [ "$APT_UPDATED" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive timeout "$INSTALL_TIMEOUT" apt-get update -q </dev/null ||
            true
        APT_UPDATED=1
    fi
    if DEBIAN_FRONTEND=noninteractive timeout "$INSTALL_TIMEOUT" \
        apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; then
        say "installed Debian packages: ${missing[*]}"
    else
        fail "install Debian packages ${missing[*]} (hint: apt-get update && apt-get install -y ${missing[*]})"
        return 1
    fi
}

# Prints the path of a python3 able to create a virtual environment.
find_python() {
    local candidate
    for candidate in "$(command -v python3 || true)" /usr/bin/python3; do
        if [ -z "$candidate" ] || [ ! -x "$candidate" ]; then
            continue
        fi
        if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' \
            >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

venv_has_slixmpp() {
    [ -x "$VENV/bin/python" ] &&
        [ "$("$VENV/bin/python" -c 'import slixmpp; print(slixmpp.__version__)' 2>/dev/null)" = \
            "$SLIXMPP_VERSION" ]
}

ensure_slixmpp() {
    venv_has_slixmpp && return 0
    local python
    if ! python="$(find_python)"; then
        ensure_apt python3 python3-venv || true
        if ! python="$(find_python)"; then
            fail "python3 (>= 3.11, as slixmpp $SLIXMPP_VERSION requires) with venv not found (hint: apt-get install -y python3 python3-venv)"
            return 1
        fi
    fi
    say "installing slixmpp $SLIXMPP_VERSION into $VENV with $python"
    rm -rf "$VENV"
    if ! timeout "$INSTALL_TIMEOUT" "$python" -m venv "$VENV"; then
        fail "create the Python virtual environment $VENV with $python"
        return 1
    fi
    if ! timeout "$INSTALL_TIMEOUT" "$VENV/bin/python" -m pip install --disable-pip-version-check \
        --no-input -q "slixmpp==$SLIXMPP_VERSION" </dev/null; then
        fail "install slixmpp $SLIXMPP_VERSION (hint: $VENV/bin/python -m pip install slixmpp==$SLIXMPP_VERSION)"
        return 1
    fi
    if ! venv_has_slixmpp; then
        fail "slixmpp $SLIXMPP_VERSION does not import from $VENV"
        return 1
    fi
}

# True when NODE_DIR holds exactly what xmppjs/package-lock.json pins.
xmppjs_installed() {
    [ -f "$NODE_DIR/package-lock.json" ] &&
        cmp -s "$NODE_DIR/package-lock.json" "$HERE/xmppjs/package-lock.json" &&
        cmp -s "$NODE_DIR/package.json" "$HERE/xmppjs/package.json" &&
        [ "$(node -p 'require(process.argv[1]).version' \
            "$NODE_DIR/node_modules/@xmpp/client/package.json" 2>/dev/null)" = "$XMPPJS_VERSION" ]
}

# Node.js and npm come with the machine image: a missing or older one is a
# failure with a hint, not something this script installs.
ensure_xmppjs() {
    local hint="install Node.js >= $NODE_MIN and npm, e.g. apt-get install -y nodejs npm where Debian's nodejs is recent enough"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        fail "node and npm not found, needed for the xmpp.js suite (hint: $hint)"
        return 1
    fi
    local version
    version="$(node --version 2>/dev/null | sed 's/^v//')"
    if [ "$(printf '%s\n%s\n' "$NODE_MIN" "$version" | sort -V | head -n 1)" != "$NODE_MIN" ]; then
        fail "Node.js $version is older than $NODE_MIN, which xmpp.js $XMPPJS_VERSION needs (hint: $hint)"
        return 1
    fi
    if ! xmppjs_installed; then
        say "installing xmpp.js $XMPPJS_VERSION into $NODE_DIR with npm $(npm --version 2>/dev/null)"
        rm -rf "$NODE_DIR"
        mkdir -p "$NODE_DIR"
        cp "$HERE/xmppjs/package.json" "$HERE/xmppjs/package-lock.json" "$NODE_DIR/"
        # 'npm ci' installs exactly the lock file's versions and checks their
        # integrity hashes.
        if ! timeout "$INSTALL_TIMEOUT" npm ci --prefix "$NODE_DIR" --cache "$CACHE_DIR/npm-cache" \
            --no-audit --no-fund --loglevel=error </dev/null; then
            rm -rf "$NODE_DIR"
            fail "install xmpp.js $XMPPJS_VERSION (hint: cp tests/interop/xmppjs/package*.json $NODE_DIR/ && npm ci --prefix $NODE_DIR)"
            return 1
        fi
        if ! xmppjs_installed; then
            fail "xmpp.js $XMPPJS_VERSION not found in $NODE_DIR after npm ci"
            return 1
        fi
    fi
    XMPPJS_READY=1
    say "xmpp.js $XMPPJS_VERSION in $NODE_DIR (Node.js $version)"
}

ensure_tools() {
    header "interop: tools"
    ensure_apt "${APT_PACKAGES[@]}" || return 1
    mkdir -p "$CACHE_DIR"
    # Two runs on one machine share the cache: install one at a time.
    exec 9>"$CACHE_DIR/install.lock"
    if ! flock -w "$INSTALL_TIMEOUT" 9; then
        fail "lock $CACHE_DIR/install.lock within ${INSTALL_TIMEOUT}s"
        return 1
    fi
    local rc=0
    ensure_slixmpp || rc=1
    # Without xmpp.js only its suite fails (ensure_xmppjs counted that).
    if suite_selected xmppjs; then
        ensure_xmppjs || true
    fi
    flock -u 9
    exec 9>&-
    [ "$rc" -eq 0 ] || return 1
    say "slixmpp $SLIXMPP_VERSION in $VENV ($("$VENV/bin/python" --version 2>&1))"
}

ensure_binaries() {
    header "interop: binaries"
    if [ -n "${CAUSERIE_BIN_DIR:-}" ]; then
        BIN_DIR="$CAUSERIE_BIN_DIR"
    else
        local target="${CARGO_TARGET_DIR:-$ROOT/target}"
        case "$target" in /*) ;; *) target="$ROOT/$target" ;; esac
        BIN_DIR="$target/debug"
        # Always ask cargo: it rebuilds only what changed, and a binary left
        # in a shared target folder by an older checkout must not be tested.
        if ! command -v cargo >/dev/null 2>&1; then
            fail "cargo not found (hint: install the Rust toolchain with rustup)"
            return 1
        fi
        if ! (cd "$ROOT" && timeout "$BUILD_TIMEOUT" cargo build -p causerie-server -p causerie-ctl \
            --bin causerie --bin causeriectl); then
            fail "cargo build -p causerie-server -p causerie-ctl"
            return 1
        fi
    fi
    local bin
    for bin in causerie causeriectl; do
        if [ ! -x "$BIN_DIR/$bin" ]; then
            fail "$BIN_DIR/$bin not found (hint: cargo build -p causerie-server -p causerie-ctl, or set CAUSERIE_BIN_DIR)"
            return 1
        fi
    done
    say "binaries from $BIN_DIR"
}

# ---------------------------------------------------------------------------
# Server

# Prints N distinct TCP ports free on 127.0.0.1 right now.
free_ports() {
    "$VENV/bin/python" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

port_answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# start_server NAME [TOML]: sets SUITE_DIR, CONFIG, DATA_DIR, CA_FILE,
# STARTTLS_PORT, DIRECT_TLS_PORT, SERVER_PID and SERVER_LOG. TOML, when
# given, is appended to the config (sections of the suite's own).
start_server() {
    local name="$1" extra="${2:-}" ports
    SUITE_DIR="$(mktemp -d "$WORK_DIR/$name.XXXX")"
    DATA_DIR="$SUITE_DIR/data"
    CONFIG="$SUITE_DIR/causerie.toml"
    SERVER_LOG="$SUITE_DIR/server.log"
    CA_FILE="$DATA_DIR/tls/$DOMAIN.crt"
    ports="$(free_ports 2)"
    STARTTLS_PORT="${ports%% *}"
    DIRECT_TLS_PORT="${ports##* }"
    cat >"$CONFIG" <<EOF
[server]
domains = ["$DOMAIN"]
data_dir = "$DATA_DIR"

[c2s]
starttls_listen = ["127.0.0.1:$STARTTLS_PORT"]
direct_tls_listen = ["127.0.0.1:$DIRECT_TLS_PORT"]

[s2s]
listen = []
direct_tls_listen = []

[log]
level = "$LOG_LEVEL"
EOF
    if [ -n "$extra" ]; then
        printf '\n%s\n' "$extra" >>"$CONFIG"
    fi
    # NO_COLOR: the log is a file, keep terminal colour codes out of it.
    NO_COLOR=1 "$BIN_DIR/causerie" --config "$CONFIG" </dev/null >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    say "$name: causerie pid $SERVER_PID, STARTTLS on $STARTTLS_PORT, direct TLS on $DIRECT_TLS_PORT, files in $SUITE_DIR"

    local deadline=$((SECONDS + START_TIMEOUT)) port
    for port in "$STARTTLS_PORT" "$DIRECT_TLS_PORT"; do
        until port_answers "$port"; do
            if ! kill -0 "$SERVER_PID" 2>/dev/null; then
                local status=0
                wait "$SERVER_PID" 2>/dev/null || status=$?
                SERVER_PID=""
                fail "$name: causerie exited with status $status before listening on $port"
                print_file "server log" "$SERVER_LOG"
                return 1
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                fail "$name: causerie not listening on 127.0.0.1:$port within ${START_TIMEOUT}s"
                print_file "server log" "$SERVER_LOG"
                return 1
            fi
            sleep 0.2
        done
    done
    pass "$name: causerie listening on 127.0.0.1:$STARTTLS_PORT (STARTTLS) and 127.0.0.1:$DIRECT_TLS_PORT (direct TLS)"
    if [ -s "$CA_FILE" ] && grep -q 'BEGIN CERTIFICATE' "$CA_FILE"; then
        pass "$name: self-signed certificate generated at data_dir/tls/$DOMAIN.crt"
    else
        fail "$name: no PEM certificate at $CA_FILE after start"
        print_file "server log" "$SERVER_LOG"
        return 1
    fi
}

stop_server() {
    local name="$1" status=0
    [ -n "$SERVER_PID" ] || return 0
    terminate_server "$SERVER_PID" || status=$?
    SERVER_PID=""
    if [ "$status" -eq 0 ]; then
        pass "$name: causerie exited with status 0 on SIGTERM"
    elif [ "$status" -eq 124 ]; then
        fail "$name: causerie still running ${STOP_TIMEOUT}s after SIGTERM (killed)"
    else
        fail "$name: causerie exited with status $status on SIGTERM"
    fi
}

ctl() {
    timeout "$CTL_TIMEOUT" "$BIN_DIR/causeriectl" --config "$CONFIG" "$@"
}

add_user() {
    local name="$1" jid="$2" password="$3" out="$SUITE_DIR/ctl-add-${2%%@*}.out"
    # causeriectl reads the password from the first line of stdin when it is
    # not a terminal.
    if printf '%s\n' "$password" | ctl user add "$jid" >"$out" 2>&1; then
        pass "$name: causeriectl user add $jid"
    else
        fail "$name: causeriectl user add $jid"
        print_file "causeriectl output" "$out" 50
    fi
}

import_users() {
    local name="$1" csv="$2" out="$SUITE_DIR/ctl-import.out"
    if ctl user import "$csv" >"$out" 2>&1; then
        pass "$name: causeriectl user import $(basename "$csv")"
    else
        fail "$name: causeriectl user import $(basename "$csv")"
        print_file "causeriectl output" "$out" 50
    fi
}

expect_users_listed() {
    local name="$1" jid missing=() out="$SUITE_DIR/ctl-list.out"
    shift
    if ! ctl user list >"$out" 2>&1; then
        fail "$name: causeriectl user list"
        print_file "causeriectl output" "$out" 50
        return 0
    fi
    for jid in "$@"; do
        grep -qF -- "$jid" "$out" || missing+=("$jid")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        pass "$name: causeriectl user list shows $*"
    else
        fail "$name: causeriectl user list misses ${missing[*]}"
        print_file "causeriectl output" "$out" 50
    fi
}

# ---------------------------------------------------------------------------
# Scenarios

SCENARIO_SEQ=0

# run_slixmpp [-t SECONDS] LABEL SCRIPT ARGS...: runs one script under a
# timeout (SCENARIO_TIMEOUT unless -t says otherwise; the script's own limit
# is set 15 seconds below it, so that it can still say where it stopped),
# relays its check lines and counts them. A script that dies, times out or
# checks nothing counts as a failure.
run_slixmpp() {
    local limit="$SCENARIO_TIMEOUT"
    if [ "$1" = "-t" ]; then
        limit="$2"
        shift 2
    fi
    local label="$1" script="$2"
    shift 2
    SCENARIO_SEQ=$((SCENARIO_SEQ + 1))
    local base rc=0 ok bad
    base="$SUITE_DIR/$(printf '%02d' "$SCENARIO_SEQ")-${script%.py}"
    # PYTHONDONTWRITEBYTECODE: leave no __pycache__ in the checkout.
    (cd "$HERE/slixmpp" && PYTHONDONTWRITEBYTECODE=1 timeout -k 10 "$limit" \
        "$VENV/bin/python" "$script" \
        --label "$label" --log-file "$base.xmpp.log" --time-limit "$((limit - 15))" "$@") \
        </dev/null >"$base.out" 2>"$base.err" || rc=$?
    grep -E '^(not )?ok - ' "$base.out" || true
    ok="$(grep -c '^ok - ' "$base.out" || true)"
    bad="$(grep -c '^not ok - ' "$base.out" || true)"
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + bad))
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        fail "$label: $script did not finish within ${limit}s"
    elif [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        fail "$label: $script exited with status $rc"
    elif [ "$rc" -eq 0 ] && [ "$ok" -eq 0 ]; then
        fail "$label: $script checked nothing"
    fi
    if [ "$rc" -ne 0 ]; then
        print_file "$script stderr" "$base.err" 60
        print_file "$script XMPP log" "$base.xmpp.log" 80
    fi
}

suite_slixmpp() {
    local name="slixmpp"
    header "interop suite: $name (slixmpp $SLIXMPP_VERSION)"
    local failed_before="$FAILED"
    # alice administers the server over XMPP (XEP-0133, docs/admin-api.md).
    if ! start_server "$name" "[admin]
admins = [\"alice@$DOMAIN\"]"; then
        stop_server "$name"
        return 0
    fi

    local alice="alice@$DOMAIN" alice_pw="alice-Secret-1"
    local bob="bob@$DOMAIN" bob_pw="Pässwörd-bob-2"
    local carol="carol@$DOMAIN" carol_pw="carol-secret-3"
    add_user "$name" "$alice" "$alice_pw"
    add_user "$name" "$bob" "$bob_pw"
    printf '%s,%s\n' "$carol" "$carol_pw" >"$SUITE_DIR/users.csv"
    import_users "$name" "$SUITE_DIR/users.csv"
    expect_users_listed "$name" "$alice" "$bob" "$carol"

    local tls=(--host 127.0.0.1 --domain "$DOMAIN" --ca-file "$CA_FILE")
    local starttls=("${tls[@]}" --port "$STARTTLS_PORT" --mode starttls)
    local direct=("${tls[@]}" --port "$DIRECT_TLS_PORT" --mode direct)
    # bob asks for a resource of his own; alice lets the server pick one.
    local pair=(--account "$alice" "$alice_pw" --account "$bob/interop" "$bob_pw")

    run_slixmpp "STARTTLS SCRAM-SHA-256" two_users_chat.py \
        "${starttls[@]}" --mech SCRAM-SHA-256 "${pair[@]}"
    run_slixmpp "direct TLS SCRAM-SHA-256" two_users_chat.py \
        "${direct[@]}" --mech SCRAM-SHA-256 "${pair[@]}"
    # XEP-0368: a client SHOULD offer ALPN, and then it is 'xmpp-client'.
    run_slixmpp "direct TLS ALPN xmpp-client" two_users_chat.py \
        "${direct[@]}" --mech SCRAM-SHA-256 --alpn xmpp-client --expect-alpn xmpp-client "${pair[@]}"
    # carol was created by 'user import'.
    run_slixmpp "STARTTLS SCRAM-SHA-1" two_users_chat.py \
        "${starttls[@]}" --mech SCRAM-SHA-1 --account "$alice" "$alice_pw" --account "$carol" "$carol_pw"
    # Python's ssl module has no tls-exporter, and tls-unique does not exist
    # in TLS 1.3 (RFC 9266), so slixmpp cannot bind the channel: offered
    # SCRAM-SHA-256-PLUS, it must fall back to SCRAM-SHA-256 with the GS2
    # flag 'n', which the server must accept.
    run_slixmpp "STARTTLS SCRAM-SHA-256-PLUS offered" two_users_chat.py \
        "${starttls[@]}" --mech SCRAM-SHA-256-PLUS --mech SCRAM-SHA-256 \
        --expect-advertised SCRAM-SHA-256-PLUS --expect-mech SCRAM-SHA-256 "${pair[@]}"
    # Over TLS 1.2 slixmpp tries each -PLUS mechanism with tls-unique, which the
    # server does not support, before plain SCRAM: those refusals must not use
    # up the stream's allowance of failed logins.
    run_slixmpp "STARTTLS TLS 1.2, any mechanism" two_users_chat.py \
        "${starttls[@]}" --tls-max 1.2 "${pair[@]}"
    # slixmpp's connect(host, port) with default settings first tries direct
    # TLS on the STARTTLS port, then plain TCP with STARTTLS.
    run_slixmpp "slixmpp default connect" two_users_chat.py \
        "${tls[@]}" --port "$STARTTLS_PORT" --mode auto "${pair[@]}"
    # Before the refused logins below, whose failures count against alice
    # and 127.0.0.1 for a while.
    local dave="dave@$DOMAIN"
    run_slixmpp -t 90 "service administration" service_admin.py \
        "${starttls[@]}" --account "$alice" "$alice_pw" --account "$bob" "$bob_pw" \
        --new-account "$dave" "dave-Admin-4"
    expect_users_listed "$name" "$dave"
    if ctl_expect "$name" "causeriectl audit list --action user.add" 0 \
        "$SUITE_DIR/ctl-audit-user-add.out" audit list --action user.add; then
        expect_in_file "$name" "the audit log names alice's XMPP session as the one that added $dave" \
            "$SUITE_DIR/ctl-audit-user-add.out" "xmpp:$alice user.add $dave ok"
    fi
    suite_slixmpp_shared_groups "$name" "${starttls[@]}"
    run_slixmpp "STARTTLS refused logins" auth_failure.py \
        "${starttls[@]}" --mech SCRAM-SHA-256 --mech SCRAM-SHA-1 \
        --jid "$alice" --wrong-password "not-$alice_pw" --unknown-jid "nobody@$DOMAIN"
    run_slixmpp "direct TLS refused logins" auth_failure.py \
        "${direct[@]}" --mech SCRAM-SHA-256 \
        --jid "$bob" --wrong-password "pässwörd-bob-2" --unknown-jid "nobody@$DOMAIN"
    run_slixmpp "STARTTLS untrusted" untrusted_cert.py \
        --domain "$DOMAIN" --port "$STARTTLS_PORT" --mode starttls --jid "$alice" --password "$alice_pw"
    run_slixmpp "direct TLS untrusted" untrusted_cert.py \
        --domain "$DOMAIN" --port "$DIRECT_TLS_PORT" --mode direct --jid "$alice" --password "$alice_pw"

    stop_server "$name"
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG"
    fi
}

# suite_slixmpp_shared_groups NAME CONNECTION-OPTIONS...: shared roster groups
# (docs/groups.md) on the running server. Three accounts of their own, so that
# no other scenario's roster or presence changes; causeriectl creates the
# group (a non-ASCII display name) and adds two of them through the admin
# API; shared_groups.py then checks what slixmpp clients see, and adds and
# removes the third with causeriectl while all three are online.
suite_slixmpp_shared_groups() {
    local name="$1"
    shift
    local alice="group-alice@$DOMAIN" alice_pw="group-alice-Secret-5"
    local bob="group-bob@$DOMAIN" bob_pw="group-bob-Secret-6"
    local carol="group-carol@$DOMAIN" carol_pw="group-carol-Secret-7"
    local group="interop-staff" label="Équipe d'interop"
    add_user "$name" "$alice" "$alice_pw"
    add_user "$name" "$bob" "$bob_pw"
    add_user "$name" "$carol" "$carol_pw"
    if ctl_expect "$name" "causeriectl group create $group" 0 "$SUITE_DIR/ctl-group-create.out" \
        group create "$group" --display-name "$label" --json; then
        expect_in_file "$name" "the running server created the group at once" \
            "$SUITE_DIR/ctl-group-create.out" '"applied_now":true'
    fi
    if ctl_expect "$name" "causeriectl group add $group $alice $bob" 0 \
        "$SUITE_DIR/ctl-group-add.out" group add "$group" "$alice" "$bob" --json; then
        expect_in_file "$name" "the running server added both members at once" \
            "$SUITE_DIR/ctl-group-add.out" "\"changed\":[\"$alice\",\"$bob\"]" '"applied_now":true'
    fi
    run_slixmpp -t 90 "shared roster groups" shared_groups.py "$@" \
        --account "$alice" "$alice_pw" --account "$bob" "$bob_pw" --account "$carol" "$carol_pw" \
        --group "$group" --display-name "$label" \
        --causeriectl "$BIN_DIR/causeriectl" --causerie-config "$CONFIG"
    # The script took carol out again.
    if ctl_expect "$name" "causeriectl group show $group" 0 "$SUITE_DIR/ctl-group-show.out" \
        group show "$group"; then
        if grep -qF -- "$carol" "$SUITE_DIR/ctl-group-show.out"; then
            fail "$name: group show still lists $carol after remove-member"
            print_file "group show" "$SUITE_DIR/ctl-group-show.out" 20
        else
            expect_in_file "$name" "group show lists $alice and $bob, shown as '$label'" \
                "$SUITE_DIR/ctl-group-show.out" "shown as: $label" "  $alice" "  $bob"
        fi
    fi
}

# Users of the im and xmppjs suites: SCENARIO-ROLE@DOMAIN, one set per
# scenario so that no scenario sees another's roster, blocklist or stored
# messages. Passwords are derived from the names.
user_password() {
    printf '%s-%s-Secret-7' "$2" "$1"
}

# add_scenario_users NAME SCENARIO:ROLE,ROLE... ...: creates all those users
# with one 'causeriectl user import'.
add_scenario_users() {
    local name="$1" entry scenario role roles csv="$SUITE_DIR/users.csv"
    shift
    : >"$csv"
    for entry in "$@"; do
        scenario="${entry%%:*}"
        IFS=, read -r -a roles <<<"${entry#*:}"
        for role in "${roles[@]}"; do
            printf '%s-%s@%s,%s\n' "$scenario" "$role" "$DOMAIN" "$(user_password "$scenario" "$role")" >>"$csv"
        done
    done
    import_users "$name" "$csv"
}

# accounts SCENARIO ROLE...: sets ACCOUNTS to the --account options for
# those users.
accounts() {
    local scenario="$1" role
    shift
    ACCOUNTS=()
    for role in "$@"; do
        ACCOUNTS+=(--account "$scenario-$role@$DOMAIN" "$(user_password "$scenario" "$role")")
    done
}

suite_im() {
    local name="im"
    header "interop suite: $name (RFC 6121 and the XEPs, slixmpp $SLIXMPP_VERSION)"
    local failed_before="$FAILED"
    if ! start_server "$name"; then
        stop_server "$name"
        return 0
    fi
    add_scenario_users "$name" roster:alice,bob subscription:alice,bob,carol \
        presence:alice,bob,carol offline:alice,bob carbons:alice,bob \
        blocking:alice,bob,carol vcard:alice,bob,carol disco:alice services:alice,bob

    local tls=(--host 127.0.0.1 --domain "$DOMAIN" --ca-file "$CA_FILE")
    local starttls=("${tls[@]}" --port "$STARTTLS_PORT" --mode starttls)
    local direct=("${tls[@]}" --port "$DIRECT_TLS_PORT" --mode direct)

    accounts roster alice bob
    run_slixmpp -t 60 "roster" roster.py "${starttls[@]}" "${ACCOUNTS[@]}"
    accounts subscription alice bob carol
    run_slixmpp -t 90 "subscription" subscription.py "${starttls[@]}" "${ACCOUNTS[@]}"
    accounts presence alice bob carol
    run_slixmpp -t 90 "presence" presence.py "${starttls[@]}" "${ACCOUNTS[@]}"
    # Two on the direct TLS listener: the IM layer must not care which.
    accounts offline alice bob
    run_slixmpp -t 60 "offline" offline.py "${direct[@]}" "${ACCOUNTS[@]}"
    accounts carbons alice bob
    run_slixmpp -t 60 "carbons" carbons.py "${direct[@]}" "${ACCOUNTS[@]}"
    accounts blocking alice bob carol
    run_slixmpp -t 90 "blocking" blocking.py "${starttls[@]}" "${ACCOUNTS[@]}"
    accounts vcard alice bob carol
    run_slixmpp -t 60 "vcard" vcard.py "${starttls[@]}" "${ACCOUNTS[@]}"
    accounts disco alice
    run_slixmpp -t 60 "disco" disco.py "${starttls[@]}" "${ACCOUNTS[@]}"
    accounts services alice bob
    run_slixmpp -t 90 "services" services.py "${starttls[@]}" "${ACCOUNTS[@]}"

    stop_server "$name"
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG"
    fi
}

suite_xmppjs() {
    local name="xmppjs"
    header "interop suite: $name (xmpp.js $XMPPJS_VERSION on Node.js with slixmpp $SLIXMPP_VERSION)"
    if [ "$XMPPJS_READY" -ne 1 ]; then
        # ensure_xmppjs counted the failure and printed the hint.
        say "$name: xmpp.js is not installed; see the failure under 'interop: tools'"
        return 0
    fi
    local failed_before="$FAILED"
    if ! start_server "$name"; then
        stop_server "$name"
        return 0
    fi
    add_scenario_users "$name" chat:slixmpp,xmppjs

    accounts chat slixmpp xmppjs
    # xmpp.js uses STARTTLS and SCRAM-SHA-1; the slixmpp user uses its best
    # SCRAM mechanism.
    run_slixmpp -t 120 "xmpp.js" with_xmppjs.py \
        --host 127.0.0.1 --domain "$DOMAIN" --ca-file "$CA_FILE" --port "$STARTTLS_PORT" \
        --mode starttls --node "$(command -v node)" --node-modules "$NODE_DIR/node_modules" \
        "${ACCOUNTS[@]}"

    stop_server "$name"
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG"
    fi
}

# ---------------------------------------------------------------------------
# Usage policy (xeps/policy-acceptance.md)

# ctl_expect NAME WHAT STATUS OUT ARGS...: runs causeriectl ARGS with its
# output in OUT and checks its exit status; prints the output on a mismatch.
ctl_expect() {
    local name="$1" what="$2" want="$3" out="$4" status=0
    shift 4
    ctl "$@" >"$out" 2>&1 </dev/null || status=$?
    if [ "$status" -eq "$want" ]; then
        pass "$name: $what (exit $status)"
    else
        fail "$name: $what: causeriectl $* exited with $status, expected $want"
        print_file "causeriectl output" "$out" 50
        return 1
    fi
}

# expect_in_file NAME WHAT FILE TEXT...: each TEXT occurs in FILE (as is).
expect_in_file() {
    local name="$1" what="$2" file="$3" text missing=()
    shift 3
    for text in "$@"; do
        grep -qF -- "$text" "$file" || missing+=("$text")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        pass "$name: $what"
    else
        fail "$name: $what: missing $(printf "'%s' " "${missing[@]}")"
        print_file "$(basename "$file")" "$file" 50
    fi
}

# expect_receipts NAME FILE VERSION: the output of 'policy acceptances
# --json' lists, in chain order, bob's and alice's receipts by chat and
# carol's (from her 'laptop' session) by the ad-hoc command, the order in
# which the scenarios accept; all for VERSION, from 127.0.0.1; alice's client
# as her XEP-0092 answer names it, none for the others, who did not answer
# (xeps/policy-acceptance.md 5.10).
expect_receipts() {
    local name="$1" file="$2" version="$3" problems
    if problems="$("$VENV/bin/python" - "$file" "$version" "$DOMAIN" "$SLIXMPP_VERSION" 2>&1 <<'PY'
import json, sys
path, version, domain, slixmpp_version = sys.argv[1:]
try:
    with open(path, encoding="utf-8") as f:
        receipts = json.load(f)
except ValueError as err:
    sys.exit(f"not JSON: {err}")
want = [
    ("bob", "chat", None, None),
    ("alice", "chat", None, f"Slixmpp {slixmpp_version}"),
    ("carol", "adhoc", "laptop", None),
]
if not isinstance(receipts, list) or len(receipts) != len(want):
    sys.exit(f"expected {len(want)} receipts, got {receipts!r}")
problems = []
for i, (r, (user, method, resource, client)) in enumerate(zip(receipts, want), start=1):
    keys = ("seq", "username", "domain", "method", "policy_hash", "remote_addr", "client")
    got = {k: r.get(k) for k in keys}
    expected = dict(zip(keys, (i, user, domain, method, version, "127.0.0.1", client)))
    if got != expected:
        problems.append(f"receipt {i}: {got} is not {expected}")
    res = r.get("resource")
    if not res or (resource is not None and res != resource):
        problems.append(f"receipt {i}: resource {res!r}, expected {resource or 'one'}")
    if r.get("jid") != f"{user}@{domain}/{res}":
        problems.append(f"receipt {i}: jid {r.get('jid')!r}")
if problems:
    sys.exit("; ".join(problems))
PY
    )"; then
        pass "$name: policy acceptances --json lists bob (chat), alice (chat, client Slixmpp $SLIXMPP_VERSION) and carol/laptop (adhoc) as receipts 1 to 3 of the published version, from 127.0.0.1"
    else
        fail "$name: policy acceptances --json: $problems"
        print_file "$(basename "$file")" "$file" 50
    fi
}

suite_policy() {
    local name="policy"
    header "interop suite: $name (usage-policy gate, slixmpp $SLIXMPP_VERSION)"
    local failed_before="$FAILED"
    if ! start_server "$name"; then
        stop_server "$name"
        return 0
    fi

    local alice="alice@$DOMAIN" alice_pw="alice-Policy-1"
    local bob="bob@$DOMAIN" bob_pw="bob-Policy-2"
    local carol="carol@$DOMAIN" carol_pw="carol-Policy-3"
    add_user "$name" "$alice" "$alice_pw"
    add_user "$name" "$bob" "$bob_pw"
    add_user "$name" "$carol" "$carol_pw"

    # Non-ASCII in the title, a category and the text: the version is the
    # SHA-256 of these exact bytes, and clients must get the text unchanged.
    local file="$SUITE_DIR/policy.md" version
    cat >"$file" <<'POLICY'
+++
title = "Use of the Causerie interop service – tests"
effective = "2025-01-01"
categories = ["message archiving", "keyword alerts (café, naïve)"]
+++
This service exists for the interop tests of Causerie.

- Messages are kept only while the tests run.
- Accepting is the only way in: reply with the code, or run the command.
POLICY
    version="$(sha256sum "$file" | cut -d' ' -f1)"
    say "$name: policy file $file, version $version"
    if ! ctl_expect "$name" "causeriectl policy publish" 0 "$SUITE_DIR/ctl-publish.out" \
        policy publish "$file" --by interop; then
        stop_server "$name"
        print_file "server log" "$SERVER_LOG"
        return 0
    fi
    expect_in_file "$name" "policy publish printed version 1, the SHA-256 of the file and its code" \
        "$SUITE_DIR/ctl-publish.out" "published version 1 $version (code ${version:0:4})"
    ctl_expect "$name" "publishing the same file again is refused" 1 \
        "$SUITE_DIR/ctl-publish-again.out" policy publish "$file" || true
    if ctl_expect "$name" "causeriectl policy show" 0 "$SUITE_DIR/ctl-show.out" policy show; then
        expect_in_file "$name" "policy show names the version in force, its title and its text" \
            "$SUITE_DIR/ctl-show.out" "title: Use of the Causerie interop service – tests" \
            "version: 1 $version (code ${version:0:4})" "keyword alerts (café, naïve)" \
            "- Messages are kept only while the tests run."
    fi
    if ctl_expect "$name" "causeriectl policy status (before)" 0 \
        "$SUITE_DIR/ctl-status-before.out" policy status; then
        expect_in_file "$name" "policy status lists alice, bob and carol as not accepted" \
            "$SUITE_DIR/ctl-status-before.out" "$DOMAIN: 3 of 3 accounts have not accepted" \
            "$alice" "$bob" "$carol"
    fi

    local tls=(--host 127.0.0.1 --domain "$DOMAIN" --ca-file "$CA_FILE" --policy-file "$file")
    # bob accepts in the first scenario; the second relies on it.
    run_slixmpp -t 90 "policy chat" policy_chat.py \
        "${tls[@]}" --port "$STARTTLS_PORT" --mode starttls \
        --account "$alice" "$alice_pw" --account "$bob" "$bob_pw"
    run_slixmpp -t 90 "policy adhoc" policy_adhoc.py \
        "${tls[@]}" --port "$DIRECT_TLS_PORT" --mode direct \
        --account "$carol" "$carol_pw" --account "$bob" "$bob_pw"

    if ctl_expect "$name" "causeriectl policy acceptances --json" 0 \
        "$SUITE_DIR/ctl-acceptances.json" policy acceptances --json; then
        expect_receipts "$name" "$SUITE_DIR/ctl-acceptances.json" "$version"
    fi
    if ctl_expect "$name" "causeriectl policy verify" 0 "$SUITE_DIR/ctl-verify.out" policy verify; then
        expect_in_file "$name" "policy verify found the 3 receipts intact" \
            "$SUITE_DIR/ctl-verify.out" "3 receipts, chain intact, signatures valid"
    fi
    local after="$SUITE_DIR/ctl-status-after.out"
    if ctl_expect "$name" "causeriectl policy status (after)" 0 "$after" policy status; then
        if grep -qF -- "$DOMAIN: 0 of 3 accounts have not accepted version 1" "$after" &&
            ! grep -qE -- "(alice|bob|carol)@" "$after"; then
            pass "$name: policy status no longer lists alice, bob or carol"
        else
            fail "$name: policy status still lists accounts that accepted"
            print_file "policy status" "$after" 20
        fi
    fi

    stop_server "$name"
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG"
    fi
}

# ---------------------------------------------------------------------------
# Compliance rules ([compliance] in docs/configuration.md, causeriectl rules)

RULES_TIMEOUT=30 # a rules change until the running server applies it

# wait_for_ctl NAME WHAT SECONDS OUT TEXT ARGS...: runs causeriectl ARGS,
# with its output in OUT, every half second until that output has TEXT (as
# is), for at most SECONDS; prints the last output when it never did.
wait_for_ctl() {
    local name="$1" what="$2" limit="$3" out="$4" text="$5" deadline
    shift 5
    deadline=$((SECONDS + limit))
    while :; do
        if ctl "$@" >"$out" 2>&1 </dev/null && grep -qF -- "$text" "$out"; then
            pass "$name: $what"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            fail "$name: $what: 'causeriectl $*' did not show '$text' within ${limit}s"
            print_file "causeriectl output" "$out" 50
            return 1
        fi
        sleep 0.5
    done
}

suite_compliance() {
    local name="compliance"
    header "interop suite: $name (compliance rules, slixmpp $SLIXMPP_VERSION)"
    local failed_before="$FAILED"
    local alice="alice@$DOMAIN" alice_pw="alice-Rules-1"
    local bob="bob@$DOMAIN" bob_pw="bob-Rules-2"
    local carol="carol@$DOMAIN" carol_pw="carol-Rules-3"
    # carol is the security officer; the server looks at the rules file every
    # second, so that 'causeriectl rules add' takes effect quickly.
    if ! start_server "$name" "$(printf '[compliance]\nofficers = ["%s"]\nreload_secs = 1' "$carol")"; then
        stop_server "$name"
        return 0
    fi
    add_user "$name" "$alice" "$alice_pw"
    add_user "$name" "$bob" "$bob_pw"
    add_user "$name" "$carol" "$carol_pw"

    # One rule per kind of outcome: delivered masked, refused, session ended.
    # compliance.py finds them by their actions.
    local rules="$SUITE_DIR/rules-add.toml"
    cat >"$rules" <<'RULES'
[[rule]]
id = "card-numbers"
description = "Payment card numbers are masked in chat."
category = "payment card data"
severity = "high"
detectors = ["payment-card"]
actions = ["mask"]

[[rule]]
id = "insider-tips"
description = "Tips on unpublished results may not be sent."
category = "market abuse"
keywords = ["insider tip"]
actions = ["block", "log"]

[[rule]]
id = "customer-list"
description = "The customer list stays inside the company."
category = "confidential customer data"
severity = "critical"
keywords = ["customer list"]
actions = ["capture", "terminate", "alert"]
RULES
    if ! ctl_expect "$name" "causeriectl rules add" 0 "$SUITE_DIR/ctl-rules-add.out" \
        rules add "$rules"; then
        stop_server "$name"
        print_file "server log" "$SERVER_LOG"
        return 0
    fi
    expect_in_file "$name" "rules add named the three rules" "$SUITE_DIR/ctl-rules-add.out" \
        "added card-numbers, insider-tips, customer-list to $DATA_DIR/rules.toml"
    if ctl_expect "$name" "causeriectl rules list" 0 "$SUITE_DIR/ctl-rules-list.out" rules list; then
        expect_in_file "$name" "rules list shows each rule's id, severity, actions, category and description" \
            "$SUITE_DIR/ctl-rules-list.out" \
            "card-numbers high mask payment card data — Payment card numbers are masked in chat." \
            "insider-tips medium block,log market abuse — Tips on unpublished results may not be sent." \
            "customer-list critical capture,terminate,alert confidential customer data — The customer list stays inside the company."
    fi
    if ctl_expect "$name" "adding the same rules again is refused" 2 \
        "$SUITE_DIR/ctl-rules-add-again.out" rules add "$rules"; then
        expect_in_file "$name" "the refusal names the rule whose id is taken" \
            "$SUITE_DIR/ctl-rules-add-again.out" "rule card-numbers: the id is already used"
    fi
    if ctl_expect "$name" "causeriectl rules check (the rules file)" 0 \
        "$SUITE_DIR/ctl-rules-check.out" rules check; then
        expect_in_file "$name" "rules check found the rules file valid" \
            "$SUITE_DIR/ctl-rules-check.out" "$DATA_DIR/rules.toml: 3 rules, valid"
    fi
    local bad="$SUITE_DIR/rules-bad.toml"
    cat >"$bad" <<'RULES'
[[rule]]
id = "wire-transfers"
description = "Wire transfer requests go through the bank portal."
category = "payments"
keywords = ["wire transfer"]
actions = ["capture", "explode"]
RULES
    if ctl_expect "$name" "rules check refuses a file with an unknown action" 2 \
        "$SUITE_DIR/ctl-rules-check-bad.out" rules check "$bad"; then
        expect_in_file "$name" "the refusal names the file, the rule, the field and the action" \
            "$SUITE_DIR/ctl-rules-check-bad.out" \
            "$bad: line 1: rule wire-transfers, actions: unknown action \`explode\`"
    fi
    if ctl_expect "$name" "causeriectl rules test (customer list)" 0 \
        "$SUITE_DIR/ctl-rules-test-leak.out" \
        rules test --from "$alice" --to "$bob" "here is the Customer List"; then
        expect_in_file "$name" "rules test reports that rule customer-list fires and ends the session" \
            "$SUITE_DIR/ctl-rules-test-leak.out" "$alice (local) -> $bob (local), path chat" \
            "rule customer-list fires" \
            "outcome: not delivered, and the sender's session would be ended"
    fi
    if ctl_expect "$name" "causeriectl rules test (card number)" 0 \
        "$SUITE_DIR/ctl-rules-test-card.out" \
        rules test --from "$alice" --to "$bob" "card 5555 5555 5555 4444, ok?"; then
        expect_in_file "$name" "rules test reports that rule card-numbers fires and masks the number" \
            "$SUITE_DIR/ctl-rules-test-card.out" "rule card-numbers fires" \
            "outcome: delivered as: card *******************, ok?"
    fi
    # The server reloads the file within reload_secs and records it.
    wait_for_ctl "$name" "the running server applied the three rules (audit compliance.rules.reload)" \
        "$RULES_TIMEOUT" "$SUITE_DIR/ctl-audit-reload.out" \
        "compliance compliance.rules.reload - ok 3 rules in force" \
        audit list --action compliance.rules.reload || true

    run_slixmpp -t 90 "compliance" compliance.py \
        --host 127.0.0.1 --domain "$DOMAIN" --ca-file "$CA_FILE" \
        --port "$STARTTLS_PORT" --mode starttls --rules-file "$rules" \
        --account "$alice" "$alice_pw" --account "$bob" "$bob_pw" --account "$carol" "$carol_pw"

    local audit="$SUITE_DIR/ctl-audit.out"
    if wait_for_ctl "$name" "causeriectl audit list --action compliance. shows the alert" \
        "$RULES_TIMEOUT" "$audit" \
        "compliance compliance.alert $alice ok rule customer-list (confidential customer data): the session was ended; peer $bob; actions capture,terminate,alert" \
        audit list --action compliance.; then
        expect_in_file "$name" "the audit log also has the rules added with causeriectl" "$audit" \
            "compliance.rules.add card-numbers,insider-tips,customer-list ok rules file $DATA_DIR/rules.toml"
        if grep -F -- "compliance.alert" "$audit" | grep -qvF -- "rule customer-list"; then
            fail "$name: only rule customer-list alerts, but the audit log has other alerts"
            print_file "audit" "$audit" 50
        else
            pass "$name: the audit log has no alert of the rules without the alert action"
        fi
    fi

    # Evidence records (the capture action): read with 'causeriectl evidence'
    # once causeriectl has that command; until then only the Rust tests
    # (crates/server/tests/compliance.rs) look at them.
    if ctl --help 2>/dev/null | grep -qE '^  evidence( |$)'; then
        # The server stores evidence after the message was handled: wait.
        if wait_for_ctl "$name" "causeriectl evidence list shows the record of rule customer-list" \
            "$RULES_TIMEOUT" "$SUITE_DIR/ctl-evidence-list.out" "customer-list" evidence list; then
            expect_in_file "$name" "the evidence record is alice's" \
                "$SUITE_DIR/ctl-evidence-list.out" "alice"
        fi
        ctl_expect "$name" "causeriectl evidence verify" 0 "$SUITE_DIR/ctl-evidence-verify.out" \
            evidence verify || true
    else
        say "$name: causeriectl has no 'evidence' command yet; evidence not checked here"
    fi

    # SIGHUP reads the rules file again at once and does not stop the server. The
    # file has not changed, so the automatic reload would not read it: one more
    # audit record of a reload comes from the signal.
    local reloads_before reloads_after=0
    reloads_before=$(ctl audit list --action compliance.rules.reload 2>/dev/null | grep -c "ok 3 rules in force" || true)
    kill -HUP "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        reloads_after=$(ctl audit list --action compliance.rules.reload 2>/dev/null | grep -c "ok 3 rules in force" || true)
        [ "$reloads_after" -gt "$reloads_before" ] && break
        sleep 0.2
    done
    if kill -0 "$SERVER_PID" 2>/dev/null && [ "$reloads_after" -gt "$reloads_before" ]; then
        pass "$name: SIGHUP reloaded the rules (audit compliance.rules.reload) and the server kept running"
    else
        fail "$name: after SIGHUP: running=$(kill -0 "$SERVER_PID" 2>/dev/null && echo yes || echo no), reloads $reloads_before -> $reloads_after"
    fi

    stop_server "$name"
    # The 'log' action and the evidence writer speak at level info; once the
    # server has stopped, every record it took is stored and logged.
    case "$LOG_LEVEL" in
    info | debug | trace)
        expect_in_file "$name" "the server log has the line of the log action and the stored evidence" \
            "$SERVER_LOG" "compliance rule matched rule=insider-tips user=$alice" \
            "evidence recorded seq=1 rule=customer-list"
        ;;
    *) say "$name: log level '$LOG_LEVEL' hides the log action's line; not checked" ;;
    esac
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG"
    fi
}

# shellcheck source=s2s/suite.sh
. "$HERE/s2s/suite.sh"
# shellcheck source=portable/suite.sh
. "$HERE/portable/suite.sh"

# ---------------------------------------------------------------------------

main() {
    header "interop"
    say "suites: ${SUITES[*]}"
    if check_suites && ensure_tools && ensure_binaries; then
        local suite
        for suite in "${ALL_SUITES[@]}"; do
            if suite_selected "$suite"; then
                "suite_$suite"
            fi
        done
    fi
    printf '\n'
    if [ "$FAILED" -gt 0 ] || [ "${CAUSERIE_INTEROP_KEEP:-0}" = 1 ]; then
        say "interop: configs and logs kept in $WORK_DIR"
    fi
    say "interop: $PASSED passed, $FAILED failed"
    if [ "$FAILED" -gt 0 ] || [ "$PASSED" -eq 0 ]; then
        return 1
    fi
}

main "$@"
