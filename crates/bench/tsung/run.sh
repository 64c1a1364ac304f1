#!/usr/bin/env bash
# Run crates/bench/tsung/causerie.xml against an XMPP server on loopback, with tsung's logs and
# reports under LOGDIR (outside the repository).
#
# usage: run.sh LOGDIR [--host 127.0.0.1] [--port 5222] [--domain localhost] [--users 50]
#                      [--duration 60]
#   --users     accounts bench1..benchN must exist with passwords bench1..benchN
#   --duration  upper bound of the whole test in seconds
set -euo pipefail
die() { echo "run.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: run.sh LOGDIR [options] (see the header of this script)"
logdir=$1; shift
host=127.0.0.1
port=5222
domain=localhost
users=50
duration=60
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "option $1 needs a value"
    case $1 in
        --host) host=$2 ;;
        --port) port=$2 ;;
        --domain) domain=$2 ;;
        --users) users=$2 ;;
        --duration) duration=$2 ;;
        *) die "unknown option $1" ;;
    esac
    shift 2
done
case $host in 127.*) ;; *) die "--host must be a 127.0.0.0/8 address" ;; esac
for n in "$port" "$users" "$duration"; do [[ $n =~ ^[0-9]+$ ]] || die "not a number: $n"; done
[[ $domain =~ ^[a-z0-9.-]+$ ]] || die "--domain must be lowercase letters, digits, . -"
command -v tsung >/dev/null || die "tsung is not installed (apt-get install -y tsung)"

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
# Arrivals at 10 per second, so that every user is online before the chat loop starts.
arrival_secs=$(( (users + 9) / 10 ))
sed -e "s|<server host=\"127.0.0.1\" port=\"5222\"|<server host=\"$host\" port=\"$port\"|" \
    -e "s|<load duration=\"60\"|<load duration=\"$duration\"|" \
    -e "s|<arrivalphase phase=\"1\" duration=\"5\"|<arrivalphase phase=\"1\" duration=\"$arrival_secs\"|" \
    -e "s|maxnumber=\"50\"|maxnumber=\"$users\"|" \
    -e "s|name=\"global_number\" value=\"50\"|name=\"global_number\" value=\"$users\"|" \
    -e "s|name=\"userid_max\" value=\"50\"|name=\"userid_max\" value=\"$users\"|" \
    -e "s|name=\"domain\" value=\"localhost\"|name=\"domain\" value=\"$domain\"|" \
    "$here/causerie.xml" > "$logdir/scenario.xml"

# tsung keeps state under $HOME/.tsung; point HOME at the log folder so nothing else is touched.
HOME=$logdir tsung -f "$logdir/scenario.xml" -l "$logdir" start
