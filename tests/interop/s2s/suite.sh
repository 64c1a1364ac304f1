# Federation suite of tests/interop/run.sh (sourced by it; uses its helpers
# pass, fail, say, header, print_file, add_user, stop_server and its
# variables BIN_DIR, VENV, WORK_DIR, LOG_LEVEL, START_TIMEOUT).
#
# Causerie (causerie.test, 127.0.0.2) federates with Prosody (prosody.test,
# 127.0.0.3) and ejabberd (ejabberd.test, 127.0.0.4), started by peers.sh.
# Two rounds: every server trusts the test CA (SASL EXTERNAL both ways), then
# nobody trusts anybody's certificate (dialback both ways: the peers ask
# Causerie to verify its keys, and Causerie asks them to verify theirs).

PEERS_DIR=""
CAUSERIE_S2S_IP="127.0.0.2"
S2S_HERE="$HERE/s2s"

stop_peers() {
    [ -n "$PEERS_DIR" ] || return 0
    bash "$S2S_HERE/peers.sh" stop "$PEERS_DIR" >"$WORK_DIR/peers-stop.log" 2>&1 || true
    PEERS_DIR=""
}

# start_federated_server NAME TRUST_CA(1|0): Causerie for causerie.test with
# static routes to both peers.
start_federated_server() {
    local name="$1" trust="$2" ca_line=""
    SUITE_DIR="$(mktemp -d "$WORK_DIR/$name.XXXX")"
    DATA_DIR="$SUITE_DIR/data"
    CONFIG="$SUITE_DIR/causerie.toml"
    SERVER_LOG="$SUITE_DIR/server.log"
    if [ "$trust" = 1 ]; then
        ca_line="ca_file = \"$PEERS_DIR/certs/ca.crt\""
    fi
    {
        printf '[server]\ndomains = ["causerie.test"]\ndata_dir = "%s"\n\n' "$DATA_DIR"
        printf '[[tls.certificates]]\ndomain = "causerie.test"\n'
        printf 'cert = "%s"\nkey = "%s"\n\n' "$PEERS_DIR/certs/causerie.test.crt" \
            "$PEERS_DIR/certs/causerie.test.key"
        printf '[c2s]\nstarttls_listen = ["%s:5222"]\ndirect_tls_listen = []\n\n' "$CAUSERIE_S2S_IP"
        printf '[s2s]\nlisten = ["%s:5269"]\ndirect_tls_listen = ["%s:5270"]\n' \
            "$CAUSERIE_S2S_IP" "$CAUSERIE_S2S_IP"
        printf 'use_system_roots = false\n%s\n\n' "$ca_line"
        printf '[federation]\nmode = "allowlist"\n\n'
        printf '[[federation.partners]]\ndomain = "prosody.test"\nroute = "127.0.0.3:5269"\n\n'
        printf '[[federation.partners]]\ndomain = "ejabberd.test"\nroute = "127.0.0.4:5269"\n\n'
        printf '[log]\nlevel = "%s"\n' "$LOG_LEVEL"
    } >"$CONFIG"
    NO_COLOR=1 "$BIN_DIR/causerie" --config "$CONFIG" </dev/null >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    until timeout 2 bash -c "exec 3<>/dev/tcp/$CAUSERIE_S2S_IP/5269" 2>/dev/null; do
        if ! kill -0 "$SERVER_PID" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            fail "$name: causerie not listening on $CAUSERIE_S2S_IP:5269"
            print_file "server log" "$SERVER_LOG"
            return 1
        fi
        sleep 0.2
    done
    pass "$name: causerie.test listening on $CAUSERIE_S2S_IP (c2s 5222, s2s 5269 and 5270)"
}

# exchange NAME A_JID A_HOST B_JID B_HOST: subscriptions, presence and
# messages between two accounts on two servers (exchange.py).
exchange() {
    local name="$1" a="$2" a_host="$3" b="$4" b_host="$5" out rc=0 ok bad
    out="$SUITE_DIR/exchange-${a%%@*}-${b%%@*}.out"
    PYTHONDONTWRITEBYTECODE=1 timeout -k 10 90 "$VENV/bin/python" "$S2S_HERE/exchange.py" \
        --a "$a" --a-pass secret-pw --a-host "$a_host" --a-port 5222 \
        --b "$b" --b-pass secret-pw --b-host "$b_host" --b-port 5222 \
        --ca "$PEERS_DIR/certs/ca.crt" --timeout 60 \
        --log-file "${out%.out}.xmpp.log" </dev/null >"$out" 2>&1 || rc=$?
    ok="$(grep -c '^PASS ' "$out" || true)"
    bad="$(grep -c '^FAIL ' "$out" || true)"
    sed -n -e "s/^PASS \(.*\)/ok - $name: \1/p" -e "s/^FAIL \(.*\)/not ok - $name: \1/p" "$out"
    PASSED=$((PASSED + ok))
    FAILED=$((FAILED + bad))
    if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
        fail "$name: exchange.py exited with status $rc"
        print_file "exchange output" "$out" 40
    elif [ "$ok" -eq 0 ]; then
        fail "$name: exchange.py checked nothing"
    fi
}

# expect_auth NAME DIRECTION REMOTE METHOD: Causerie's log shows that stream.
expect_auth() {
    local name="$1" direction="$2" remote="$3" method="$4"
    if grep -F "s2s stream authenticated" "$SERVER_LOG" | grep -F "direction=\"$direction\"" |
        grep -F "remote=\"$remote\"" | grep -qF "method=\"$method\""; then
        pass "$name: $direction stream with $remote authenticated by $method"
    else
        fail "$name: no $direction stream with $remote authenticated by $method in the server log"
        grep -F "s2s stream" "$SERVER_LOG" | tail -n 20 || true
    fi
}

# federation_round NAME TRUST_CA METHOD [peers.sh start options]
federation_round() {
    local name="$1" trust="$2" method="$3" failed_before="$FAILED" peer direction
    shift 3
    PEERS_DIR="$(mktemp -d "$WORK_DIR/peers-$name.XXXX")"
    if ! bash "$S2S_HERE/peers.sh" start "$PEERS_DIR" "$@" >"$WORK_DIR/peers-$name.log" 2>&1; then
        fail "$name: peers.sh start (Prosody, ejabberd)"
        print_file "peers.sh output" "$WORK_DIR/peers-$name.log" 40
        stop_peers
        return 0
    fi
    pass "$name: Prosody on 127.0.0.3 and ejabberd on 127.0.0.4 started"
    if start_federated_server "$name" "$trust"; then
        add_user "$name" dave@causerie.test secret-pw
        exchange "$name" dave@causerie.test "$CAUSERIE_S2S_IP" alice@prosody.test 127.0.0.3
        exchange "$name" dave@causerie.test "$CAUSERIE_S2S_IP" bob@ejabberd.test 127.0.0.4
        for peer in prosody.test ejabberd.test; do
            for direction in outbound inbound; do
                expect_auth "$name" "$direction" "$peer" "$method"
            done
        done
    fi
    stop_server "$name"
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG" 80
        for peer in prosody.log ejabberd.log; do
            [ -f "$PEERS_DIR/$peer" ] && print_file "$peer" "$PEERS_DIR/$peer" 40
        done
    fi
    stop_peers
}

suite_federation() {
    header "interop suite: federation (Prosody and ejabberd from Debian's packages)"
    if [ "$(id -u)" -ne 0 ]; then
        fail "federation: needs root (it edits /etc/hosts and runs a DNS responder on port 53)"
        return 0
    fi
    if ! bash "$S2S_HERE/peers.sh" install >"$WORK_DIR/peers-install.log" 2>&1; then
        fail "federation: peers.sh install (apt-get install prosody ejabberd lua-unbound)"
        print_file "install log" "$WORK_DIR/peers-install.log" 40
        return 0
    fi
    pass "federation: Prosody and ejabberd installed"
    # The peers run as their own users and read their configs under WORK_DIR.
    chmod 0711 "$WORK_DIR"
    federation_round "s2s-certificates" 1 sasl-external
    federation_round "s2s-dialback" 0 dialback --no-ca prosody --no-ca ejabberd
}
