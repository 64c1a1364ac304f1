# Portable suite of tests/interop/run.sh (sourced by it; uses its helpers
# pass, fail, say, header, print_file, start_server, stop_server, ctl,
# ctl_expect, expect_in_file, run_slixmpp and its variables WORK_DIR, VENV,
# HERE, SUITE_DIR).
#
# A move from a real Prosody to Causerie with XEP-0227:
# 1. Prosody (Debian's package, installed by s2s/peers.sh install) runs for
#    pie.test on 127.0.0.7 with its files under a folder of the run; three
#    accounts are registered with prosodyctl, and portable_seed.py gives them
#    a roster, a pending subscription request, a vCard and private bookmarks
#    through Prosody itself.
# 2. Prosody is stopped and its own migrator (prosody-migrator, from the
#    'internal' store to 'xep0227', i.e. mod_storage_xep0227) writes one
#    XEP-0227 file per user. The migrator writes into Prosody's data folder
#    (/var/lib/prosody) whatever its configuration says: it runs in a mount
#    namespace of its own where that folder is the run's export folder.
# 3. causeriectl import reads the files into a fresh Causerie serving
#    pie.test (dry run, import, the same again refused, --skip-existing,
#    malformed files refused with file and line), portable_check.py logs in
#    with the passwords set in Prosody and finds the data, and causeriectl
#    export writes it back out.
# 4. The same from a real ejabberd (Debian's package, SCRAM storage): users,
#    roster, an offline message and a vCard made with ejabberdctl, then
#    'ejabberdctl export_piefxis'; the main file is imported (XInclude), the
#    users log in with their ejabberd passwords (two_users_chat.py), and
#    causeriectl export shows what came.

PIE_DOMAIN="pie.test"
PIE_ADDR="127.0.0.7"
PIE_PROSODY_PID=""
PIE_USERS=(alice bob carol)

# pie_password USER: the password USER was given in Prosody.
pie_password() {
    printf '%s-Prosody-pw\n' "$1"
}

stop_pie_prosody() {
    [ -n "$PIE_PROSODY_PID" ] || return 0
    terminate_server "$PIE_PROSODY_PID" || true
    PIE_PROSODY_PID=""
}

# pie_prosody_config DIR: Prosody for pie.test with every file under DIR.
pie_prosody_config() {
    local dir="$1"
    cat >"$dir/prosody.cfg.lua" <<EOF
-- Prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null) for $PIE_DOMAIN, written by tests/interop/portable/suite.sh.
pidfile = "$dir/data/prosody.pid"
data_path = "$dir/data"
daemonize = false
log = { { levels = { min = "info" }, to = "file", filename = "$dir/prosody.log" } }
interfaces = { "$PIE_ADDR" }
local_interfaces = { "$PIE_ADDR" }
c2s_ports = { 5222 }
s2s_ports = { }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
legacy_ssl_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
c2s_require_encryption = true
allow_registration = false
authentication = "internal_hashed"
storage = "internal"
-- mod_vcard keeps vcard-temp in the 'vcard' store, which XEP-0227 exports.
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "vcard"; "private"; }
modules_disabled = { "s2s" }
ssl = { certificate = "$dir/pie.test.crt"; key = "$dir/pie.test.key"; }
VirtualHost "$PIE_DOMAIN"
EOF
    cat >"$dir/migrator.cfg.lua" <<EOF
input {
	type = "internal";
	path = "$dir/data";
	hosts = { ["$PIE_DOMAIN"] = { "accounts", "roster", "vcard", "private" } };
}
output {
	type = "xep0227";
}
EOF
}

# pie_prosody NAME DIR: registers the users and starts Prosody; fails the
# suite step and returns 1 when it does not come up.
pie_prosody() {
    local name="$1" dir="$2" user waited=0
    mkdir -p "$dir/data" "$dir/export"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -keyout "$dir/pie.test.key" \
        -out "$dir/pie.test.crt" -subj "/CN=$PIE_DOMAIN" \
        -addext "subjectAltName=DNS:$PIE_DOMAIN" >"$dir/openssl.log" 2>&1 || {
        fail "$name: test certificate for $PIE_DOMAIN (openssl)"
        return 1
    }
    chmod 644 "$dir/pie.test.key" "$dir/pie.test.crt"
    pie_prosody_config "$dir"
    : >"$dir/prosody.log"
    chown -R prosody:prosody "$dir/data" "$dir/export" "$dir/prosody.log"
    chmod 755 "$dir"
    for user in "${PIE_USERS[@]}"; do
        # Registered with the server stopped: the internal store is files.
        if ! prosodyctl --config "$dir/prosody.cfg.lua" register "$user" "$PIE_DOMAIN" \
            "$(pie_password "$user")" </dev/null >>"$dir/prosodyctl.log" 2>&1; then
            fail "$name: prosodyctl register $user $PIE_DOMAIN"
            print_file "prosodyctl" "$dir/prosodyctl.log" 20
            return 1
        fi
    done
    pass "$name: prosodyctl registered ${PIE_USERS[*]} on $PIE_DOMAIN"
    setsid setpriv --reuid=prosody --regid=prosody --init-groups env HOME="$dir" \
        prosody --config "$dir/prosody.cfg.lua" -F </dev/null >>"$dir/console.log" 2>&1 &
    PIE_PROSODY_PID=$!
    until timeout 2 bash -c "exec 3<>/dev/tcp/$PIE_ADDR/5222" 2>/dev/null; do
        if ! kill -0 "$PIE_PROSODY_PID" 2>/dev/null || [ "$waited" -ge 300 ]; then
            fail "$name: Prosody listening on $PIE_ADDR:5222"
            print_file "prosody log" "$dir/prosody.log" 40
            stop_pie_prosody
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    pass "$name: Prosody $(dpkg-query -W -f='${Version}' prosody) listening on $PIE_ADDR:5222"
}

# pie_export NAME DIR: Prosody's own migrator writes DIR/export/USER@pie.test.xml.
pie_export() {
    local name="$1" dir="$2" user missing=()
    # The xep0227 driver writes into Prosody's data folder: in this mount
    # namespace only, that folder is the export folder.
    if ! timeout 120 unshare --mount sh -c \
        'mount --bind "$1" /var/lib/prosody && exec prosody-migrator --config="$2" input output' \
        sh "$dir/export" "$dir/migrator.cfg.lua" </dev/null >"$dir/migrator.log" 2>&1; then
        fail "$name: prosody-migrator internal -> xep0227"
        print_file "migrator" "$dir/migrator.log" 40
        return 1
    fi
    for user in "${PIE_USERS[@]}"; do
        [ -s "$dir/export/$user@$PIE_DOMAIN.xml" ] || missing+=("$user@$PIE_DOMAIN.xml")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        fail "$name: prosody-migrator wrote no ${missing[*]}"
        print_file "migrator" "$dir/migrator.log" 40
        ls -la "$dir/export"
        return 1
    fi
    pass "$name: prosody-migrator (mod_storage_xep0227) wrote one XEP-0227 file per user"
    if grep -q "urn:xmpp:pie:0#scram" "$dir/export/alice@$PIE_DOMAIN.xml" &&
        ! grep -q "password=" "$dir/export/alice@$PIE_DOMAIN.xml"; then
        pass "$name: Prosody's export has SCRAM credentials and no password"
    else
        fail "$name: Prosody's export of alice has no scram-credentials (or a password)"
        print_file "alice's export" "$dir/export/alice@$PIE_DOMAIN.xml" 20
    fi
}

PIE_EJABBERD_ADDR="127.0.0.8"
PIE_EJABBERD_DIR=""
PIE_EJABBERD_PID=""
PIE_EJABBERD_MAIN=""

# pie_ejabberdctl ARGS...: ejabberdctl for the suite's node, as the ejabberd user.
pie_ejabberdctl() {
    local base="$PIE_EJABBERD_DIR"
    timeout 90 setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$base" \
        ejabberdctl --config-dir "$base" --config "$base/ejabberd.yml" \
        --ctl-config "$base/ejabberdctl.cfg" --logs "$base/log" --spool "$base/spool" "$@" \
        </dev/null
}

stop_pie_ejabberd() {
    [ -n "$PIE_EJABBERD_PID" ] || return 0
    pie_ejabberdctl stop >>"$PIE_EJABBERD_DIR/ctl.log" 2>&1 || true
    terminate_server "$PIE_EJABBERD_PID" || true
    PIE_EJABBERD_PID=""
}

# pie_ejabberd_config DIR: ejabberd for pie.test keeping SCRAM keys.
pie_ejabberd_config() {
    local base="$1"
    cat >"$base/ejabberdctl.cfg" <<CFG
ERLANG_NODE=ejabberd-pie@$PIE_EJABBERD_ADDR
INET_DIST_INTERFACE=$PIE_EJABBERD_ADDR
ERL_DIST_PORT=5270
ERL_OPTIONS="-setcookie $(cat "$base/cookie") -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$base/ejabberd.beam.pid
EJABBERD_BYPASS_WARNINGS=true
CONTRIB_MODULES_PATH=$base/contrib
CONTRIB_MODULES_CONF_DIR=$base/contrib
CFG
    cat >"$base/ejabberd.yml" <<CFG
# ejabberd for $PIE_DOMAIN, written by tests/interop/portable/suite.sh.
hosts:
  - $PIE_DOMAIN
loglevel: info
log_rotate_count: 0
listen:
  - port: 5222
    ip: "$PIE_EJABBERD_ADDR"
    module: ejabberd_c2s
auth_method: internal
# SCRAM keys instead of the passwords: what XEP-0227 1.1 exports.
auth_password_format: scram
default_db: mnesia
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
modules:
  mod_admin_extra: {}
  mod_offline: {}
  mod_private: {}
  mod_roster: {}
  mod_vcard: {}
CFG
}

# pie_ejabberd NAME DIR: two users with a mutual subscription, an offline
# message and a vCard, all made with ejabberdctl, then 'ejabberdctl
# export_piefxis DIR/export'. Sets PIE_EJABBERD_MAIN to the main file.
pie_ejabberd() {
    local name="$1" base="$2"
    [ -n "$base" ] && [ -d "$base" ] || return 1
    PIE_EJABBERD_DIR="$base"
    mkdir -p "$base/log" "$base/spool" "$base/contrib" "$base/export"
    (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$base/cookie")
    pie_ejabberd_config "$base"
    chown -R ejabberd:ejabberd "$base"
    chmod 755 "$base"
    setsid setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$base" \
        ejabberdctl --config-dir "$base" --config "$base/ejabberd.yml" \
        --ctl-config "$base/ejabberdctl.cfg" --logs "$base/log" --spool "$base/spool" \
        foreground </dev/null >>"$base/console.log" 2>&1 &
    PIE_EJABBERD_PID=$!
    local steps=(
        "started"
        "register dave $PIE_DOMAIN dave-ejabberd-pw"
        "register erin $PIE_DOMAIN erin-ejabberd-pw"
        "add_rosteritem dave $PIE_DOMAIN erin $PIE_DOMAIN Erin Colleagues both"
        "add_rosteritem erin $PIE_DOMAIN dave $PIE_DOMAIN Dave Colleagues both"
        "send_message chat erin@$PIE_DOMAIN dave@$PIE_DOMAIN Hi While-you-were-away"
        "set_vcard dave $PIE_DOMAIN FN Dave-from-ejabberd"
        "export_piefxis $base/export"
    )
    local step ok=1
    for step in "${steps[@]}"; do
        # shellcheck disable=SC2086 # the words of each step are its arguments
        if ! pie_ejabberdctl $step >>"$base/ctl.log" 2>&1; then
            fail "$name: ejabberdctl $step"
            ok=0
            break
        fi
    done
    stop_pie_ejabberd
    if [ "$ok" != 1 ]; then
        print_file "ejabberdctl" "$base/ctl.log" 30
        print_file "ejabberd console" "$base/console.log" 30
        return 1
    fi
    PIE_EJABBERD_MAIN="$(find "$base/export" -maxdepth 1 -name '*.xml' ! -name '*_*' | head -n 1)"
    if [ -n "$PIE_EJABBERD_MAIN" ] && grep -q "xi:include" "$PIE_EJABBERD_MAIN" &&
        cat "$base/export/"*_*.xml | grep -q "urn:xmpp:pie:0#scram"; then
        pass "$name: ejabberd $(dpkg-query -W -f='${Version}' ejabberd): users, roster, offline message and vCard made with ejabberdctl, exported with export_piefxis (a main file including a host file, SCRAM keys)"
    else
        fail "$name: ejabberdctl export_piefxis wrote no main file with an XInclude and SCRAM keys"
        ls -la "$base/export"
        return 1
    fi
}

suite_portable() {
    local name="portable"
    header "interop suite: $name (XEP-0227 from a real Prosody, slixmpp $SLIXMPP_VERSION)"
    if [ "$(id -u)" -ne 0 ]; then
        fail "$name: needs root (it runs Prosody as its own user and the migrator in a mount namespace)"
        return 0
    fi
    if ! bash "$S2S_HERE/peers.sh" install >"$WORK_DIR/portable-install.log" 2>&1; then
        fail "$name: peers.sh install (apt-get install prosody ejabberd lua-unbound)"
        print_file "install log" "$WORK_DIR/portable-install.log" 40
        return 0
    fi
    local tool
    for tool in prosody prosodyctl prosody-migrator unshare setpriv openssl; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            fail "$name: $tool not found (hint: apt-get install -y prosody util-linux openssl)"
            return 0
        fi
    done
    # Prosody runs as its own user and reads its files under WORK_DIR.
    chmod 0711 "$WORK_DIR"
    local failed_before="$FAILED" dir
    dir="$(mktemp -d "$WORK_DIR/portable-prosody.XXXX")"
    if ! pie_prosody "$name" "$dir"; then
        return 0
    fi
    local accounts=() user
    for user in "${PIE_USERS[@]}"; do
        accounts+=(--account "$user@$PIE_DOMAIN" "$(pie_password "$user")")
    done
    local saved_suite_dir="${SUITE_DIR:-}"
    SUITE_DIR="$dir"
    run_slixmpp -t 90 "portable seed (Prosody)" portable_seed.py \
        --host "$PIE_ADDR" --port 5222 --domain "$PIE_DOMAIN" --ca-file "$dir/pie.test.crt" \
        --mode starttls "${accounts[@]}"
    SUITE_DIR="$saved_suite_dir"
    stop_pie_prosody
    if ! pie_export "$name" "$dir"; then
        print_file "prosody log" "$dir/prosody.log" 40
        return 0
    fi

    # Causerie for the same domain: the users keep their addresses.
    local DOMAIN="$PIE_DOMAIN"
    if ! start_server "$name"; then
        stop_server "$name"
        return 0
    fi
    local files=()
    for user in "${PIE_USERS[@]}"; do
        cp "$dir/export/$user@$PIE_DOMAIN.xml" "$SUITE_DIR/"
        files+=("$SUITE_DIR/$user@$PIE_DOMAIN.xml")
    done

    # Malformed or foreign files are refused with file and line, and nothing is imported.
    local broken="$SUITE_DIR/broken.xml" foreign="$SUITE_DIR/foreign.xml"
    head -c 300 "${files[0]}" >"$broken"
    sed "s/host jid='$PIE_DOMAIN'/host jid='elsewhere.example'/" "${files[1]}" >"$foreign"
    if ctl_expect "$name" "import of a truncated file is refused" 2 "$SUITE_DIR/ctl-broken.out" \
        import "${files[2]}" "$broken"; then
        expect_in_file "$name" "the refusal names the file, the line and the reason" \
            "$SUITE_DIR/ctl-broken.out" "$broken:1: not well-formed XML" "nothing was imported"
    fi
    if ctl_expect "$name" "import of a host this server does not serve is refused" 2 \
        "$SUITE_DIR/ctl-foreign.out" import "$foreign"; then
        expect_in_file "$name" "the refusal names the unknown host and its line" \
            "$SUITE_DIR/ctl-foreign.out" "$foreign:1: unknown host 'elsewhere.example'"
    fi
    if ctl_expect "$name" "causeriectl user list after the refusals" 0 \
        "$SUITE_DIR/ctl-list-empty.out" user list; then
        if grep -q "@" "$SUITE_DIR/ctl-list-empty.out"; then
            fail "$name: a refused import created accounts"
            print_file "user list" "$SUITE_DIR/ctl-list-empty.out" 20
        else
            pass "$name: the refused imports created no account"
        fi
    fi

    if ctl_expect "$name" "causeriectl import --dry-run of Prosody's files" 0 \
        "$SUITE_DIR/ctl-dry.out" import --dry-run "${files[@]}"; then
        expect_in_file "$name" "the dry run would create the three accounts" \
            "$SUITE_DIR/ctl-dry.out" "would import 3 account(s): 3 created"
    fi
    if ctl_expect "$name" "causeriectl import of Prosody's files" 0 "$SUITE_DIR/ctl-import.out" \
        import "${files[@]}"; then
        expect_in_file "$name" "import created the three accounts from their SCRAM keys" \
            "$SUITE_DIR/ctl-import.out" \
            "imported 3 account(s): 3 created, 0 replaced, 0 skipped (existing); 0 with keys derived from a plaintext password, 0 without credentials"
    fi
    if ctl_expect "$name" "the same import again is refused" 1 "$SUITE_DIR/ctl-again.out" \
        import "${files[@]}"; then
        expect_in_file "$name" "the refusal names the existing accounts and the options" \
            "$SUITE_DIR/ctl-again.out" "alice@$PIE_DOMAIN (${files[0]}:1)" "--skip-existing" "--replace"
    fi
    if ctl_expect "$name" "import --skip-existing" 0 "$SUITE_DIR/ctl-skip.out" \
        import --skip-existing "${files[@]}"; then
        expect_in_file "$name" "import --skip-existing left the three accounts alone" \
            "$SUITE_DIR/ctl-skip.out" "0 created, 0 replaced, 3 skipped (existing)"
    fi

    # Prosody keeps SCRAM-SHA-1 keys only: the clients use that mechanism.
    run_slixmpp -t 90 "portable check (Causerie)" portable_check.py \
        --host 127.0.0.1 --port "$STARTTLS_PORT" --domain "$PIE_DOMAIN" --ca-file "$CA_FILE" \
        --mode starttls --mech SCRAM-SHA-1 "${accounts[@]}"

    local out="$SUITE_DIR/export.xml"
    if ctl_expect "$name" "causeriectl export --out" 0 "$SUITE_DIR/ctl-export.out" \
        export --out "$out"; then
        expect_in_file "$name" "export names the three accounts" "$SUITE_DIR/ctl-export.out" \
            "exported 3 account(s) of 1 domain(s)"
        if [ "$(stat -c %a "$out")" = 600 ]; then
            pass "$name: the export file is readable by its owner only (0600)"
        else
            fail "$name: the export file has mode $(stat -c %a "$out")"
        fi
        if [ "$(grep -o "mechanism='SCRAM-SHA-1'" "$out" | wc -l)" -eq 3 ] && ! grep -q "password=" "$out"; then
            pass "$name: the export has the three users' SCRAM-SHA-1 keys and no password"
        else
            fail "$name: the export lacks SCRAM keys or has a password"
            print_file "export" "$out" 30
        fi
        expect_in_file "$name" "the export has alice's roster, vCard and bookmarks" "$out" \
            "<item jid='bob@$PIE_DOMAIN' subscription='both'" "<FN>" "storage:bookmarks"
    fi

    # The same from ejabberd, into the same Causerie: its export is a main file
    # that includes a host file, keys base64-encoded twice, an offline message.
    local ej
    ej="$(mktemp -d "$WORK_DIR/portable-ejabberd.XXXX")"
    if pie_ejabberd "$name" "$ej"; then
        if ctl_expect "$name" "causeriectl import of ejabberd's export_piefxis main file" 0 \
            "$SUITE_DIR/ctl-import-ejabberd.out" import "$PIE_EJABBERD_MAIN"; then
            expect_in_file "$name" "import created dave and erin from their SCRAM keys" \
                "$SUITE_DIR/ctl-import-ejabberd.out" \
                "imported 2 account(s): 2 created, 0 replaced, 0 skipped (existing); 0 with keys derived"
        fi
        if ctl_expect "$name" "causeriectl export --domain $PIE_DOMAIN (standard output)" 0 \
            "$SUITE_DIR/export-all.xml" export --domain "$PIE_DOMAIN"; then
            expect_in_file "$name" "dave's roster, vCard and offline message came from ejabberd" \
                "$SUITE_DIR/export-all.xml" \
                "<item jid='erin@$PIE_DOMAIN' subscription='both' name='Erin'><group>Colleagues</group></item>" \
                "<FN>Dave-from-ejabberd</FN>" "<body>While-you-were-away</body>"
        fi
        # dave and erin log in with their ejabberd passwords and chat (dave's
        # login takes his offline message, hence after the export).
        run_slixmpp "portable ejabberd logins (Causerie)" two_users_chat.py \
            --host 127.0.0.1 --port "$STARTTLS_PORT" --domain "$PIE_DOMAIN" --ca-file "$CA_FILE" \
            --mode starttls --mech SCRAM-SHA-1 \
            --account "dave@$PIE_DOMAIN" dave-ejabberd-pw --account "erin@$PIE_DOMAIN" erin-ejabberd-pw
    fi

    stop_server "$name"
    if [ "$FAILED" -gt "$failed_before" ]; then
        print_file "server log" "$SERVER_LOG"
        print_file "prosody log" "$dir/prosody.log" 40
        print_file "ejabberd log" "$ej/log/ejabberd.log" 40
    fi
}
