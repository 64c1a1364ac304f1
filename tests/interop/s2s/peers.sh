#!/usr/bin/env bash
# Federation peers for interop tests: Prosody and ejabberd on loopback
# addresses of their own, with a test CA, so that a Causerie under test can
# federate with real third-party servers.
#
#   peers.sh install                    Debian packages prosody, ejabberd and
#                                       lua-unbound, without starting them.
#   peers.sh start DIR [--no-ca PEER]   certificates, /etc/hosts entries, a
#                                       DNS responder and the three peers,
#                                       all with their files under DIR.
#   peers.sh stop DIR                   stops what 'start DIR' started.
#   peers.sh status DIR                 one line per process: running or not.
#
# PEER for --no-ca is prosody, ejabberd or prosody2 (the option may repeat;
# PEERS_NO_CA="prosody ejabberd" does the same): that peer does not trust
# the test CA, so it cannot verify the certificates of servers connecting
# to it, and they authenticate to it by dialback (XEP-0220) instead of SASL
# EXTERNAL (XEP-0178). See README.md for which path each peer takes.
#
# Environment:
#   PEERS_DNS_ADDR    address of the NXDOMAIN responder (default 127.0.0.53)
#   PEERS_LOG_LEVEL   Prosody and ejabberd log level (default debug: the
#                     s2s authentication lines are logged at debug level)
#   PEERS_NO_CA       as --no-ca, space separated
#
# Only loopback addresses are used, none of them 127.0.0.1; every process
# started is recorded in DIR/*.pid and stopped by that PID.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Name and address of the hosts the tests know. causerie*.test get
# certificates and /etc/hosts entries only; the server under test runs there.
HOSTS=(
    "causerie.test 127.0.0.2"
    "prosody.test 127.0.0.3"
    "ejabberd.test 127.0.0.4"
    "prosody2.test 127.0.0.5"
    "causerie2.test 127.0.0.6"
)
PROSODY_PEERS=(prosody prosody2)
DNS_ADDR="${PEERS_DNS_ADDR:-127.0.0.53}"
LOG_LEVEL="${PEERS_LOG_LEVEL:-debug}"
PASSWORD="secret-pw"
# Erlang distribution of the ejabberd node: no epmd (the machine may run one
# of its own for other services), a fixed port on ejabberd's own address.
EJABBERD_DIST_PORT=5270

START_TIMEOUT=60   # a peer's start until its ports answer (seconds)
STOP_TIMEOUT=20    # SIGTERM until exit
INSTALL_TIMEOUT=900
APT_PACKAGES=(prosody ejabberd lua-unbound openssl util-linux python3)

say() { printf '%s\n' "$*"; }
die() {
    printf 'peers.sh: %s\n' "$*" >&2
    exit 1
}

addr_of() {
    local entry
    for entry in "${HOSTS[@]}"; do
        [ "${entry%% *}" = "$1" ] && {
            printf '%s\n' "${entry#* }"
            return 0
        }
    done
    return 1
}

# ---------------------------------------------------------------------------
# install

missing_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' || printf '%s\n' "$pkg"
    done
}

# Packaged services must not start: a policy-rc.d that answers 101 for the
# time of the install (the one in place, if any, is put back after), then
# the services disabled for any init system that might start them later.
cmd_install() {
    [ "$(id -u)" -eq 0 ] || die "install needs root"
    local missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -gt 0 ]; then
        local policy=/usr/sbin/policy-rc.d backup=""
        if [ -e "$policy" ]; then
            backup="$(mktemp /usr/sbin/.policy-rc.d.peers.XXXXXX)"
            cp -p "$policy" "$backup"
        fi
        printf '#!/bin/sh\n# peers.sh: no service starts during this install\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        local rc=0
        DEBIAN_FRONTEND=noninteractive timeout "$INSTALL_TIMEOUT" apt-get update -q </dev/null \
            >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive timeout "$INSTALL_TIMEOUT" apt-get install -y -q \
            --no-install-recommends "${missing[@]}" </dev/null >/tmp/peers-apt.log 2>&1 || rc=$?
        if [ -n "$backup" ]; then
            mv -f "$backup" "$policy"
        else
            rm -f "$policy"
        fi
        if [ "$rc" -ne 0 ]; then
            tail -n 30 /tmp/peers-apt.log >&2
            die "apt-get install ${missing[*]} failed (status $rc; log in /tmp/peers-apt.log)"
        fi
        say "installed: ${missing[*]}"
    fi
    disable_services
    check_default_ports
    say "prosody $(prosody_version), ejabberd $(ejabberd_version)"
}

prosody_version() {
    dpkg-query -W -f='${Version}' prosody 2>/dev/null || printf 'missing'
}

ejabberd_version() {
    dpkg-query -W -f='${Version}' ejabberd 2>/dev/null || printf 'missing'
}

disable_services() {
    local svc
    for svc in prosody ejabberd; do
        if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        fi
        if [ -x "/etc/init.d/$svc" ] && command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    # A system instance started by an earlier install (before this script,
    # or by hand) would hold the default ports: stop it through its own
    # init script, which knows its PID file.
    for svc in prosody ejabberd; do
        if pgrep -u "$svc" >/dev/null 2>&1 && [ -x "/etc/init.d/$svc" ]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
    done
}

# Nothing may listen on the XMPP default ports of all addresses (0.0.0.0,
# ::) or of 127.0.0.1 after the install: the project's own tests use them.
check_default_ports() {
    local busy
    busy="$(ss -Hltn 2>/dev/null | awk '{print $4}' |
        grep -E '^(0\.0\.0\.0|\*|\[::\]|127\.0\.0\.1):(5222|5223|5269|5270|5280|5281|5443)$' || true)"
    if [ -n "$busy" ]; then
        die "something listens on an XMPP default port: $(printf '%s ' $busy)"
    fi
}

# ---------------------------------------------------------------------------
# start

need_tools() {
    local tool
    for tool in prosody prosodyctl ejabberdctl openssl setpriv setsid ss; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "$tool not found (hint: bash $HERE/peers.sh install)"
    done
    dpkg-query -W -f='${Status}' lua-unbound 2>/dev/null | grep -q 'ok installed' ||
        die "lua-unbound missing (hint: bash $HERE/peers.sh install)"
}

python_bin() {
    if [ -x /usr/bin/python3 ]; then
        printf '/usr/bin/python3\n'
    else
        command -v python3 || die "python3 not found"
    fi
}

# Test CA and one leaf per host, RSA 2048, DNS-ID only (RFC 6125). Both
# serverAuth and clientAuth: the initiating server presents its certificate
# as a TLS client. Kept when already there, so that a restart keeps them.
make_certs() {
    local certs="$DIR/certs" name entry
    mkdir -p "$certs"
    chmod 755 "$certs"
    if [ ! -s "$certs/ca.crt" ] || [ ! -s "$certs/ca.key" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
            -keyout "$certs/ca.key" -out "$certs/ca.crt" -subj "/O=Causerie interop/CN=Causerie interop test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" >>"$DIR/certs.log" 2>&1
        chmod 600 "$certs/ca.key"
    fi
    for entry in "${HOSTS[@]}"; do
        name="${entry%% *}"
        if [ -s "$certs/$name.crt" ] && [ -s "$certs/$name.key" ] &&
            openssl verify -CAfile "$certs/ca.crt" "$certs/$name.crt" >/dev/null 2>&1; then
            continue
        fi
        openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$certs/$name.key" \
            -out "$certs/$name.csr" -subj "/CN=$name" >>"$DIR/certs.log" 2>&1
        printf '%s\n' \
            "basicConstraints=critical,CA:FALSE" \
            "keyUsage=critical,digitalSignature,keyEncipherment" \
            "extendedKeyUsage=serverAuth,clientAuth" \
            "subjectAltName=DNS:$name" >"$certs/$name.ext"
        openssl x509 -req -in "$certs/$name.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" \
            -CAcreateserial -days 30 -sha256 -extfile "$certs/$name.ext" \
            -out "$certs/$name.crt" >>"$DIR/certs.log" 2>&1
        rm -f "$certs/$name.csr" "$certs/$name.ext"
        # Throwaway test keys: readable by the peers' own users.
        chmod 644 "$certs/$name.key"
        cat "$certs/$name.crt" "$certs/ca.crt" >"$certs/$name.fullchain.crt"
    done
}

# Adds the missing "ADDR NAME" lines; an existing line for NAME with
# another address is replaced.
update_hosts() {
    local entry name addr tmp
    for entry in "${HOSTS[@]}"; do
        name="${entry%% *}"
        addr="${entry#* }"
        if grep -qE "^${addr//./\\.}[[:space:]]+${name//./\\.}([[:space:]]|$)" /etc/hosts; then
            continue
        fi
        if grep -qE "[[:space:]]${name//./\\.}([[:space:]]|$)" /etc/hosts; then
            tmp="$(mktemp)"
            grep -vE "[[:space:]]${name//./\\.}([[:space:]]|$)" /etc/hosts >"$tmp" || true
            # Keep the inode: /etc/hosts may be a bind mount.
            cat "$tmp" >/etc/hosts
            rm -f "$tmp"
        fi
        printf '%s %s\n' "$addr" "$name" >>/etc/hosts
    done
}

pid_alive() {
    local file="$1" pid
    [ -s "$file" ] || return 1
    pid="$(read_pid "$file")"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

port_answers() {
    timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# wait_ports NAME PIDFILE ADDR PORT...: until every port answers, or the
# process died, or START_TIMEOUT passed.
wait_ports() {
    local name="$1" pidfile="$2" addr="$3" port waited=0
    shift 3
    for port in "$@"; do
        until port_answers "$addr" "$port"; do
            if ! pid_alive "$pidfile"; then
                die "$name exited before $addr:$port answered (see $DIR/$name.log)"
            fi
            if [ "$waited" -ge $((START_TIMEOUT * 5)) ]; then
                die "$name: $addr:$port did not answer within ${START_TIMEOUT}s (see $DIR/$name.log)"
            fi
            sleep 0.2
            waited=$((waited + 1))
        done
    done
}

start_dns() {
    local pidfile="$DIR/dns.pid"
    pid_alive "$pidfile" && return 0
    printf 'nameserver %s\noptions timeout:1 attempts:1\n' "$DNS_ADDR" >"$DIR/resolv.conf"
    chmod 644 "$DIR/resolv.conf"
    setsid "$(python_bin)" "$HERE/nxdns.py" --addr "$DNS_ADDR" --log "$DIR/dns-queries.log" \
        </dev/null >>"$DIR/dns.log" 2>&1 &
    printf '%s\n' "$!" >"$pidfile"
    wait_ports dns "$pidfile" "$DNS_ADDR" 53
}

no_ca() {
    local peer
    for peer in $NO_CA; do
        [ "$peer" = "$1" ] && return 0
    done
    return 1
}

# write_prosody_config PEER DOMAIN ADDR
write_prosody_config() {
    local peer="$1" domain="$2" addr="$3" base="$DIR/$1"
    local cafile_line="cafile = \"$DIR/certs/ca.crt\";"
    if no_ca "$peer"; then
        # Not the test CA: a CA file holding only an unrelated CA, so that
        # no system store is consulted either and the check really fails.
        cafile_line="cafile = \"$DIR/certs/other-ca.crt\";"
    fi
    cat >"$base/prosody.cfg.lua" <<EOF
-- Prosody $(prosody_version) for $domain, written by peers.sh.
pidfile = "$base/data/prosody.pid"
certificates = "$DIR/certs"
data_path = "$base/data"
prosody_user = "prosody"
prosody_group = "prosody"
daemonize = false
log = {
    { levels = { min = "$LOG_LEVEL" }, to = "file", filename = "$DIR/$peer.log" };
}

-- Listeners: only $addr, only c2s and s2s with STARTTLS.
interfaces = { "$addr" }
local_interfaces = { "$addr" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
legacy_ssl_ports = { }
http_ports = { }
https_ports = { }
component_ports = { }
http_interfaces = { }
https_interfaces = { }

-- The .test names come from /etc/hosts; every other lookup (the SRV
-- records first) goes to the NXDOMAIN responder and fails at once.
unbound = { hoststxt = "/etc/hosts", resolvconf = "$DIR/resolv.conf" }

-- c2s and s2s both require TLS. s2s_secure_auth = false keeps dialback as
-- the fallback when a certificate cannot be verified.
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
allow_registration = false
authentication = "internal_hashed"
storage = "internal"

modules_enabled = {
    "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "time"; "version";
}

ssl = {
    certificate = "$DIR/certs/$domain.crt";
    key = "$DIR/certs/$domain.key";
    $cafile_line
}

VirtualHost "$domain"
    ssl = {
        certificate = "$DIR/certs/$domain.crt";
        key = "$DIR/certs/$domain.key";
        $cafile_line
    }
EOF
}

# start_prosody PEER
start_prosody() {
    local peer="$1" domain="$1.test" addr base pidfile="$DIR/$1.pid"
    addr="$(addr_of "$domain")"
    base="$DIR/$peer"
    if pid_alive "$pidfile"; then
        wait_ports "$peer" "$pidfile" "$addr" 5222 5269
        return 0
    fi
    mkdir -p "$base/data"
    write_prosody_config "$peer" "$domain" "$addr"
    chown -R prosody:prosody "$base/data"
    : >>"$DIR/$peer.log"
    chown prosody:prosody "$DIR/$peer.log"
    chmod 755 "$base"
    chmod 644 "$base/prosody.cfg.lua"
    # The account first, with the server stopped (internal storage is files).
    register_prosody "$peer" "$domain"
    # setpriv execs prosody: the PID recorded is prosody's own.
    setsid setpriv --reuid=prosody --regid=prosody --init-groups \
        env HOME="$base" prosody --config "$base/prosody.cfg.lua" -F \
        </dev/null >>"$DIR/$peer.console.log" 2>&1 &
    printf '%s\n' "$!" >"$pidfile"
    wait_ports "$peer" "$pidfile" "$addr" 5222 5269
}

register_prosody() {
    local peer="$1" domain="$2" user
    case "$peer" in
        prosody) user=alice ;;
        prosody2) user=carol ;;
    esac
    # prosodyctl run as root switches to prosody_user itself.
    if ! prosodyctl --config "$DIR/$peer/prosody.cfg.lua" register "$user" "$domain" "$PASSWORD" \
        </dev/null >>"$DIR/$peer.ctl.log" 2>&1; then
        die "prosodyctl register $user $domain failed (see $DIR/$peer.ctl.log)"
    fi
}

write_ejabberd_config() {
    local base="$DIR/ejabberd" addr="$1" cafile_line="ca_file: \"$DIR/certs/ca.crt\""
    if no_ca ejabberd; then
        cafile_line="ca_file: \"$DIR/certs/other-ca.crt\""
    fi
    # The Erlang resolver: /etc/hosts first, then DNS at the NXDOMAIN
    # responder only (not /etc/resolv.conf), one try, short timeout.
    cat >"$base/inetrc" <<EOF
{hosts_file, "/etc/hosts"}.
{resolv_conf, "$DIR/resolv.conf"}.
{lookup, [file, dns]}.
{timeout, 1000}.
{retry, 1}.
EOF
    cat >"$base/ejabberdctl.cfg" <<EOF
# ejabberdctl settings for the test node, written by peers.sh.
ERLANG_NODE=ejabberd-peers@$addr
INET_DIST_INTERFACE=$addr
ERL_DIST_PORT=$EJABBERD_DIST_PORT
ERL_OPTIONS="-setcookie $COOKIE -env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$base/ejabberd.beam.pid
EJABBERD_BYPASS_WARNINGS=true
CONTRIB_MODULES_PATH=$base/contrib
CONTRIB_MODULES_CONF_DIR=$base/contrib
EOF
    cat >"$base/ejabberd.yml" <<EOF
# ejabberd $(ejabberd_version) for ejabberd.test, written by peers.sh.
hosts:
  - ejabberd.test
loglevel: $([ "$LOG_LEVEL" = debug ] && printf debug || printf info)
log_rotate_count: 0
hide_sensitive_log_data: false

certfiles:
  - "$DIR/certs/ejabberd.test.crt"
  - "$DIR/certs/ejabberd.test.key"
$cafile_line

listen:
  - port: 5222
    ip: "$addr"
    module: ejabberd_c2s
    starttls_required: true
    max_stanza_size: 262144
    shaper: none
  - port: 5269
    ip: "$addr"
    module: ejabberd_s2s_in
    max_stanza_size: 524288

# TLS required on s2s both ways; certificates verified against ca_file;
# mod_s2s_dialback below is the fallback when that fails.
s2s_use_starttls: required
s2s_access: all
outgoing_s2s_families:
  - ipv4
outgoing_s2s_port: 5269
s2s_dns_timeout: 2
s2s_dns_retries: 1
c2s_ciphers: "HIGH:!aNULL:!eNULL:!3DES:@STRENGTH"

auth_method: internal
default_db: mnesia
disable_sasl_mechanisms:
  - "digest-md5"
  - "x-oauth2"

acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  s2s:
    allow: all

modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_s2s_dialback: {}
  mod_time: {}
  mod_version:
    show_os: false
EOF
}

ejabberdctl_() {
    local base="$DIR/ejabberd"
    # Run as the ejabberd user (ejabberdctl would otherwise 'su' to it).
    timeout 90 setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$base" \
        ejabberdctl --config-dir "$base" --config "$base/ejabberd.yml" \
        --ctl-config "$base/ejabberdctl.cfg" --logs "$base/log" --spool "$base/spool" "$@" \
        </dev/null
}

start_ejabberd() {
    local base="$DIR/ejabberd" addr pidfile="$DIR/ejabberd.pid"
    addr="$(addr_of ejabberd.test)"
    if pid_alive "$pidfile"; then
        wait_ports ejabberd "$pidfile" "$addr" 5222 5269
        return 0
    fi
    mkdir -p "$base/log" "$base/spool" "$base/contrib"
    if [ ! -s "$base/cookie" ]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$base/cookie")
    fi
    COOKIE="$(cat "$base/cookie")"
    write_ejabberd_config "$addr"
    chown -R ejabberd:ejabberd "$base"
    chmod 755 "$base"
    : >>"$DIR/ejabberd.console.log"
    # 'foreground' keeps the shell script as the parent of beam; the beam's
    # own PID lands in ejabberd/ejabberd.beam.pid (EJABBERD_PID_PATH).
    setsid setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME="$base" \
        ejabberdctl --config-dir "$base" --config "$base/ejabberd.yml" \
        --ctl-config "$base/ejabberdctl.cfg" --logs "$base/log" --spool "$base/spool" foreground \
        </dev/null >>"$DIR/ejabberd.console.log" 2>&1 &
    printf '%s\n' "$!" >"$pidfile"
    ln -sf "ejabberd/log/ejabberd.log" "$DIR/ejabberd.log"
    wait_ports ejabberd "$pidfile" "$addr" 5222 5269
    # Ports answer before every module is up; 'started' waits for that.
    ejabberdctl_ started >>"$DIR/ejabberd.ctl.log" 2>&1 ||
        die "ejabberd did not report started (see $DIR/ejabberd.log)"
    local out
    if ! out="$(ejabberdctl_ register bob ejabberd.test "$PASSWORD" 2>&1)"; then
        case "$out" in
            *"already registered"*) ;;
            *)
                printf '%s\n' "$out" >>"$DIR/ejabberd.ctl.log"
                die "ejabberdctl register bob ejabberd.test failed: $out"
                ;;
        esac
    fi
    printf '%s\n' "$out" >>"$DIR/ejabberd.ctl.log"
}

# An unrelated CA: the file a --no-ca peer is given instead of the test CA.
make_other_ca() {
    [ -s "$DIR/certs/other-ca.crt" ] && return 0
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
        -keyout "$DIR/certs/other-ca.key" -out "$DIR/certs/other-ca.crt" \
        -subj "/O=Causerie interop/CN=Unrelated CA (not trusted by anyone)" \
        -addext "basicConstraints=critical,CA:TRUE" >>"$DIR/certs.log" 2>&1
    chmod 600 "$DIR/certs/other-ca.key"
}

cmd_start() {
    [ "$(id -u)" -eq 0 ] || die "start needs root (/etc/hosts, port 53, setpriv)"
    need_tools
    local peer
    for peer in $NO_CA; do
        case "$peer" in
            prosody | prosody2 | ejabberd) ;;
            *) die "--no-ca: unknown peer '$peer' (prosody, prosody2 or ejabberd)" ;;
        esac
    done
    mkdir -p "$DIR"
    DIR="$(cd "$DIR" && pwd)"
    chmod 755 "$DIR"
    # A running set keeps the trust it was started with.
    if pid_alive "$DIR/prosody.pid" || pid_alive "$DIR/ejabberd.pid"; then
        if [ "$(cat "$DIR/no-ca" 2>/dev/null || true)" != "$NO_CA" ]; then
            die "peers in $DIR run with --no-ca '$(cat "$DIR/no-ca" 2>/dev/null || true)'; stop them first"
        fi
    fi
    printf '%s\n' "$NO_CA" >"$DIR/no-ca"
    make_certs
    make_other_ca
    update_hosts
    start_dns
    for peer in "${PROSODY_PEERS[@]}"; do
        start_prosody "$peer"
    done
    start_ejabberd
    say "peers up in $DIR (untrusting the test CA: ${NO_CA:-none})"
}

# ---------------------------------------------------------------------------
# stop

# stop_pid NAME PID: SIGTERM, wait, SIGKILL after STOP_TIMEOUT.
stop_pid() {
    local name="$1" pid="$2"
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_exit "$name" "$pid"
}

# wait_exit NAME PID: until PID is gone; SIGKILL after STOP_TIMEOUT.
wait_exit() {
    local name="$1" pid="$2" waited=0
    [ -n "$pid" ] || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
            say "$name (pid $pid) did not stop within ${STOP_TIMEOUT}s: killed" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
}

read_pid() {
    cat "$1" 2>/dev/null || true
}

cmd_stop() {
    [ -d "$DIR" ] || die "$DIR: no such folder"
    DIR="$(cd "$DIR" && pwd)"
    # ejabberd: the beam's PID is read first (the node removes its PID file
    # as it stops); a clean stop through the node itself (mnesia is
    # flushed), then the beam and its ejabberdctl parent are waited for.
    local beam wrapper
    beam="$(read_pid "$DIR/ejabberd/ejabberd.beam.pid")"
    wrapper="$(read_pid "$DIR/ejabberd.pid")"
    if [ -n "$beam" ] && kill -0 "$beam" 2>/dev/null; then
        ejabberdctl_ stop >>"$DIR/ejabberd.ctl.log" 2>&1 || true
        wait_exit ejabberd "$beam"
    fi
    stop_pid ejabberd "$wrapper"
    rm -f "$DIR/ejabberd/ejabberd.beam.pid" "$DIR/ejabberd.pid"
    local name
    for name in prosody prosody2 dns; do
        stop_pid "$name" "$(read_pid "$DIR/$name.pid")"
        rm -f "$DIR/$name.pid"
    done
}

cmd_status() {
    [ -d "$DIR" ] || die "$DIR: no such folder"
    local name
    for name in dns prosody prosody2 ejabberd ejabberd/ejabberd.beam; do
        if pid_alive "$DIR/$name.pid"; then
            say "$name: running (pid $(cat "$DIR/$name.pid"))"
        else
            say "$name: not running"
        fi
    done
}

# ---------------------------------------------------------------------------

usage() {
    sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 2
}

main() {
    [ $# -ge 1 ] || usage
    local cmd="$1"
    shift
    NO_CA="${PEERS_NO_CA:-}"
    case "$cmd" in
        install) cmd_install ;;
        start | stop | status)
            [ $# -ge 1 ] || usage
            DIR="$1"
            shift
            while [ $# -gt 0 ]; do
                case "$1" in
                    --no-ca)
                        [ $# -ge 2 ] || usage
                        NO_CA="$NO_CA $2"
                        shift 2
                        ;;
                    *) usage ;;
                esac
            done
            NO_CA="$(printf '%s' "$NO_CA" | xargs)"
            "cmd_$cmd"
            ;;
        *) usage ;;
    esac
}

main "$@"
