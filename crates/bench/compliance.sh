#!/usr/bin/env bash
# Compliance rules on against off, in one run (docs/performance.md, "Compliance rules: on against
# off"): two release Causerie servers on loopback from the same binaries, with the same accounts,
#   rules on    127.0.0.1:15262   a rules file of 1000 keywords (20 rules), 50 regular expressions
#                                 (one rule each) and one rule with the four detectors
#   rules off   127.0.0.1:15272   no rules file
# then `causerie-bench alternate`, which runs the message scenario against each in turn, round by
# round, with realistic chat sentences as bodies, and prints on/off ratios. Every action of the
# rules lets the message through (log, capture, mask). At the end the evidence records of the
# rules-on server are counted: one per message whose text a capture rule matched. Both servers
# are stopped by their PIDs.
#
#   bash crates/bench/compliance.sh [causerie-bench alternate options]
#
# ROUNDS (10, after one warm-up round), USERS (200) and MESSAGES (200 per user and round) size the
# run; MATCHING (1) is how many of every 100 message texts a capture rule matches (0 to 10);
# PARTS ("keywords patterns detectors") which kinds of rule the rules file holds, to tell their
# costs apart; PIN=1 runs the servers on the second processor and the load tool on the first,
# so that they do not take each other's (the machine needs two). Other options go to the tool
# as they are (for instance --keep-sessions). Builds the three release binaries first, unless
# BIN names a folder that already holds causerie, causeriectl and causerie-bench.
#
# ORDER (on-first) is which server starts first: on-first or off-first. In two of five control
# runs (below) of 99 rounds, the server started first was 2 and 4 % slower than its twin
# (docs/performance.md); a run in each order tells whether that weighs on a result.
# CONTROL=1 starts the rules-on server without rules too: the two are then the same, and the
# ratios the run prints are what the method reads when there is nothing to tell apart, to set
# beside a run with the rules.
#
# MEASURE=instructions counts instead of timing: both servers run under valgrind's callgrind,
# and each gets, after a warm-up run of WARMUP messages per user (10 × MESSAGES), the same two
# message phases (USERS users sending MESSAGES, then 3 × MESSAGES messages each, logins
# included in both); the instructions of the second phase less those of the first, over the
# extra messages, are the server's instructions per message. The warm-up is what a server
# that has run for a while has done already: the regular-expression engine builds the states
# of its automaton as texts need them, and keeps them. A count does
# not depend on what else the machine is doing, unlike messages/s and CPU time. Use small
# sizes (USERS=20 MESSAGES=100): callgrind runs the server about fifty times slower.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-10}"
USERS="${USERS:-200}"
MESSAGES="${MESSAGES:-200}"
MATCHING="${MATCHING:-1}"
MEASURE="${MEASURE:-time}"
case "$MEASURE" in
time) RUNNER=() ;;
instructions)
    command -v valgrind >/dev/null && command -v callgrind_control >/dev/null ||
        { echo "compliance.sh: MEASURE=instructions needs valgrind (apt-get install valgrind)" >&2; exit 2; }
    RUNNER=(valgrind --tool=callgrind --quiet) ;;
*) echo "compliance.sh: MEASURE must be time or instructions" >&2; exit 2 ;;
esac
PARTS=" ${PARTS:-keywords patterns detectors} "
case "${ORDER:=on-first}" in
on-first | off-first) ;;
*) echo "compliance.sh: ORDER must be on-first or off-first" >&2; exit 2 ;;
esac
case "${CONTROL:=0}" in
0) ON_LABEL="rules on" ;;
1) ON_LABEL="control, no rules" ;;
*) echo "compliance.sh: CONTROL must be 0 or 1" >&2; exit 2 ;;
esac
# PIN=1: each server on the second processor, the load tool on the first (taskset).
SERVER_CPU=()
TOOL_CPU=()
case "${PIN:-0}" in
0) ;;
1)
    command -v taskset >/dev/null || { echo "compliance.sh: PIN=1 needs taskset (util-linux)" >&2; exit 2; }
    SERVER_CPU=(taskset -c 1)
    TOOL_CPU=(taskset -c 0) ;;
*) echo "compliance.sh: PIN must be 0 or 1" >&2; exit 2 ;;
esac
# The warm-up of MEASURE=instructions: messages per user before the count starts.
WARMUP="${WARMUP:-$((10 * MESSAGES))}"
for v in ROUNDS USERS MESSAGES MATCHING WARMUP; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "compliance.sh: $v must be a number" >&2; exit 2; }
done
[ "$MATCHING" -le 10 ] || { echo "compliance.sh: MATCHING must be at most 10 (of 100)" >&2; exit 2; }
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
DIR="$(mktemp -d /tmp/causerie-compliance-bench.XXXXXX)"
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
    [ -x "$BIN/$b" ] || { echo "compliance.sh: $BIN/$b is missing" >&2; exit 2; }
done

# ---- The rules: 20 keyword rules of 50 phrases each, from 40 qualifiers × 25 subjects. ----
QUALIFIERS=(
    insider leaked unreleased undisclosed offshore unofficial backdated off-book
    falsified inflated secret hidden private unapproved restricted embargoed
    draft stolen pirated cracked forged fake anonymous personal
    unreported illegal sanctioned blacklisted classified proprietary internal-only
    pre-announcement whistleblower disputed suppressed shredded deleted encrypted
    under-the-table side-deal
)
SUBJECTS=(
    earnings revenue forecast guidance merger acquisition takeover bid
    layoffs redundancies "salary figures" "bonus pool" "board minutes" "audit findings"
    "customer list" "price list" "source code" "trade secrets" "patent filing"
    "tender documents" "credit report" "medical record" "passport scan" invoices kickbacks
)
CATEGORIES=(
    "market abuse" "insider information" "fraud" "bribery" "data protection"
    "intellectual property" "export control" "human resources" "finance" "legal"
    "procurement" "security" "health data" "competition law" "records retention"
    "sanctions" "money laundering" "software licensing" "customer data" "conduct"
)
want() { [[ $PARTS == *" $1 "* ]]; }
want keywords || want patterns || want detectors ||
    { echo "compliance.sh: PARTS names none of keywords, patterns, detectors" >&2; exit 2; }
keyword_rules() {
    r=0
    i=0
    for q in "${QUALIFIERS[@]}"; do
        for s in "${SUBJECTS[@]}"; do
            if [ $((i % 50)) -eq 0 ]; then
                [ "$i" -eq 0 ] || printf ']\n\n'
                r=$((i / 50))
                printf '[[rule]]\nid = "keywords-%02d"\n' "$((r + 1))"
                printf 'description = "Wording about %s is logged."\n' "${CATEGORIES[$r]}"
                printf 'category = "%s"\nseverity = "low"\nactions = ["log"]\nkeywords = [' \
                    "${CATEGORIES[$r]}"
            fi
            [ $((i % 50)) -eq 0 ] || printf ', '
            printf '"%s %s"' "${q//-/ }" "$s"
            i=$((i + 1))
        done
    done
    printf ']\n\n'
}

pattern_rules() {
    # 50 regular expressions, one rule each: ticket and document references, credentials,
    # national identifiers, words in (?i) with \b.
    n=0
    pattern_rule() { # ACTION CATEGORY PATTERN (TOML literal string: no escaping)
        n=$((n + 1))
        printf "[[rule]]\nid = \"pattern-%02d\"\n" "$n"
        printf 'description = "A %s reference was shared."\ncategory = "%s"\n' "$2" "$2"
        printf "actions = [%s]\npatterns = ['%s']\n\n" "$1" "$3"
    }
    for prefix in INV PO CASE CLAIM CONTRACT TENDER HR LEGAL AUDIT PAT \
                  NDA SOW RFP MNA DEAL EXPORT RECALL INCIDENT VULN BREACH; do
        pattern_rule '"capture"' "$(tr 'A-Z' 'a-z' <<<"$prefix") document" "\\b${prefix}-[0-9]{4,8}\\b"
    done
    pattern_rule '"capture", "mask"' credential '\bAKIA[0-9A-Z]{16}\b'
    pattern_rule '"capture", "mask"' credential '\bgh[pousr]_[A-Za-z0-9]{36}\b'
    pattern_rule '"capture", "mask"' credential '\bxox[baprs]-[A-Za-z0-9-]{10,48}\b'
    pattern_rule '"capture", "mask"' credential '\bsk_live_[0-9a-zA-Z]{24,}\b'
    pattern_rule '"capture", "mask"' credential '-----BEGIN [A-Z ]*PRIVATE KEY-----'
    pattern_rule '"capture", "mask"' credential '(?i)\bpass(word|wd|phrase)\s*[:=]\s*\S+'
    pattern_rule '"capture", "mask"' credential '(?i)\bapi[_ -]?key\s*[:=]\s*\S+'
    pattern_rule '"capture", "mask"' credential '(?i)\bsecret[_ -]?token\s*[:=]\s*\S+'
    pattern_rule '"capture", "mask"' credential '\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b'
    pattern_rule '"capture", "mask"' credential '(?i)\bBearer\s+[A-Za-z0-9._~+/-]{20,}'
    pattern_rule '"capture", "mask"' "national identifier" '\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b'
    pattern_rule '"capture", "mask"' "national identifier" '\b[12] ?[0-9]{2} ?(0[1-9]|1[0-2]) ?[0-9]{2} ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b'
    pattern_rule '"capture", "mask"' "national identifier" '\b[A-CEGHJ-PR-TW-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b'
    pattern_rule '"capture", "mask"' "national identifier" '\b[0-9]{2}\.[0-9]{2}\.[0-9]{2}-[0-9]{3}\.[0-9]{2}\b'
    pattern_rule '"capture", "mask"' "passport number" '(?i)\bpassport\s*(no|number|#)?\s*[:.]?\s*[A-Z0-9]{8,9}\b'
    pattern_rule '"capture"' "phone number" '\+[1-9][0-9]{0,2}[ .-]?\(?[0-9]{1,4}\)?([ .-]?[0-9]{2,4}){2,4}\b'
    pattern_rule '"capture"' "bank reference" '(?i)\bswift\s*[:=]?\s*[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?\b'
    pattern_rule '"capture"' "bank reference" '(?i)\brouting\s*(no|number)?\s*[:=]?\s*[0-9]{9}\b'
    pattern_rule '"capture"' "internal host" '\b10\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b'
    pattern_rule '"capture"' "internal host" '(?i)\b[a-z0-9-]+\.corp\.internal\b'
    pattern_rule '"log"' "market abuse" '(?i)\b(buy|sell|short)\s+(before|ahead of)\s+the\s+(announcement|results|earnings)\b'
    pattern_rule '"log"' "market abuse" '(?i)\bdelete\s+(this|these|the)\s+(chat|messages?|thread)\b'
    pattern_rule '"log"' "conduct" '(?i)\b(keep|take)\s+(this|it)\s+off\s+the\s+record\b'
    pattern_rule '"log"' "conduct" '(?i)\bdon.?t\s+tell\s+(compliance|legal|audit)\b'
    pattern_rule '"log"' "conduct" '(?i)\b(burner|personal)\s+(phone|e-?mail)\b'
    pattern_rule '"log"' "bribery" '(?i)\b(facilitation|grease)\s+payments?\b'
    pattern_rule '"log"' "bribery" '(?i)\bcash\s+in\s+an?\s+envelope\b'
    pattern_rule '"log"' "sanctions" '(?i)\b(re-?export|transship(ment)?)\s+(via|through)\b'
    pattern_rule '"log"' "fraud" '(?i)\b(backdate|antedate)[ds]?\b'
    pattern_rule '"log"' "fraud" '(?i)\bwire\s+(it|the money)\s+today\b'
}

detector_rule() {
    cat <<'EOF'
[[rule]]
id = "sensitive-data"
description = "Card numbers, IBANs, e-mail addresses and project names are masked and kept as evidence."
category = "sensitive data in messages"
severity = "high"
detectors = ["payment-card", "iban", "email", "project"]
actions = ["capture", "mask"]
EOF
}

{
    if want keywords; then keyword_rules; fi
    if want patterns; then pattern_rules; fi
    if want detectors; then detector_rule; fi
} >"$DIR/rules.toml"

# ---- The message texts: 100 sentences of chat, MATCHING of which a capture rule matches. ----
OPENERS=("Hi," "Morning," "Quick one:" "Sorry to bother you," "FYI," "Hey," "Thanks for earlier," "Before I forget," "Just checking:" "OK so")
MIDDLES=(
    "can we move the standup to half past ten tomorrow"
    "did you get a chance to look at the slides for the client review"
    "the build on the release branch is green again after the rebase"
    "I am stuck in traffic and will join the call about ten minutes late"
    "could you send me the notes from yesterday's planning session"
    "the meeting room on the third floor is booked, let's use the small one"
    "lunch at the Italian place around the corner at noon works for me"
    "I pushed a fix for the login page, it should be on staging in a bit"
    "the printer near the kitchen is out of toner again"
    "are we still on for the team dinner on Thursday evening"
)
CLOSERS=("." "?" ", thanks!" " when you have a minute?" ", let me know." ", no rush." ", cheers" " :)" ", see you later." ", ok?")
{
    echo "# Chat texts for causerie-bench --bodies: $MATCHING of every 100 are matched by a capture rule."
    k=0
    for o in "${OPENERS[@]}"; do
        for m in "${MIDDLES[@]}"; do
            k=$((k + 1))
            c="${CLOSERS[$(((k * 7) % 10))]}"
            if [ $((k % 100)) -lt "$MATCHING" ]; then
                # Mask and capture: a card number (payment-card), or an invoice reference (pattern).
                if [ $((k % 2)) -eq 0 ]; then
                    echo "$o the card for the hotel is 4111 1111 1111 1111, $m$c"
                else
                    echo "$o invoice INV-204518 is still open, $m$c"
                fi
            else
                echo "$o $m$c"
            fi
        done
    done
} >"$DIR/bodies.txt"

"$BIN/causerie-bench" users-csv --count "$USERS" --domain localhost --out "$DIR/users.csv"

# start_server NAME PORT RULES: configure, create the accounts, start. RULES is the rules file's
# path, or empty for none.
start_server() {
    local name="$1" port="$2" rules="$3" cfg="$DIR/$1.toml"
    {
        printf '[server]\ndomains = ["localhost"]\ndata_dir = "%s"\n\n' "$DIR/$name-data"
        printf '[c2s]\nstarttls_listen = ["127.0.0.1:%s"]\n' "$port"
        printf 'direct_tls_listen = ["127.0.0.1:%s"]\n\n' "$((port + 1))"
        printf '[s2s]\nlisten = []\ndirect_tls_listen = []\n\n'
        # Two servers at once: neither takes the default metrics port.
        printf '[http]\nlisten = []\n\n'
        printf '[compliance]\nproject_names = ["Project Falcon", "Bluebird", "Northwind Merger", "Atlas"]\n'
        if [ -n "$rules" ]; then
            printf 'rules_file = "%s"\n' "$rules"
        else
            # No file at this path: no rules.
            printf 'rules_file = "%s"\n' "$DIR/$name-no-rules.toml"
        fi
        printf '\n[log]\nlevel = "warn"\n'
    } >"$cfg"
    "$BIN/causeriectl" --config "$cfg" user import "$DIR/users.csv" >/dev/null
    local wait_secs=30
    if [ "${#RUNNER[@]}" -gt 0 ]; then
        wait_secs=300
        "${RUNNER[@]}" --callgrind-out-file="$DIR/callgrind.$name" \
            "$BIN/causerie" --config "$cfg" >"$DIR/$name.log" 2>&1 &
    else
        "${SERVER_CPU[@]}" "$BIN/causerie" --config "$cfg" >"$DIR/$name.log" 2>&1 &
    fi
    PIDS+=("$!")
    local pid=$! deadline=$((SECONDS + wait_secs))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { cat "$DIR/$name.log" >&2; echo "$name exited" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { cat "$DIR/$name.log" >&2; echo "$name did not start" >&2; exit 1; }
        sleep 0.1
    done
    echo "$name: PID $pid, c2s 127.0.0.1:$port, $USERS accounts"
}

ON_RULES="$DIR/rules.toml"
[ "$CONTROL" = 0 ] || ON_RULES=""
if [ "$ORDER" = on-first ]; then
    start_server on 15262 "$ON_RULES"
    start_server off 15272 ""
    ON_PID="${PIDS[0]}"
    OFF_PID="${PIDS[1]}"
else
    start_server off 15272 ""
    start_server on 15262 "$ON_RULES"
    OFF_PID="${PIDS[0]}"
    ON_PID="${PIDS[1]}"
fi
echo "started first: ${ORDER%-first}"
[ "$CONTROL" = 0 ] || echo "control run: neither server has rules"

# The rules in force, and what they make of a matching and a non-matching text.
if [ "$CONTROL" = 0 ]; then
    "$BIN/causeriectl" --config "$DIR/on.toml" rules check
    keywords=$(grep -c '^keywords' "$DIR/rules.toml" || true)
    phrases=$(grep '^keywords' "$DIR/rules.toml" | grep -o '"[^"]*"' | wc -l || true)
    patterns=$(grep -c '^patterns' "$DIR/rules.toml" || true)
    detectors=$(grep '^detectors' "$DIR/rules.toml" | grep -o '"[^"]*"' | wc -l || true)
    echo "rules on: $keywords keyword rules with $phrases phrases, $patterns patterns, $detectors detectors"
    texts=$(grep -vc '^#' "$DIR/bodies.txt")
    matching=$(grep -c 'INV-\|4111' "$DIR/bodies.txt" || true)
    echo "message texts: $texts, of which $matching are matched by a capture rule"
    no_match=0
    while IFS= read -r line; do
        case "$line" in '#'* | *INV-* | *4111*) continue ;; esac
        out=$("$BIN/causeriectl" --config "$DIR/on.toml" rules test \
            --from bench1@localhost --to bench2@localhost "0 123456 $line")
        grep -q '^no rule fires' <<<"$out" || { echo "$line: $out" >&2; echo "a text meant not to match does" >&2; exit 1; }
        no_match=$((no_match + 1))
        [ "$no_match" -lt 10 ] || break
    done <"$DIR/bodies.txt"
    echo "checked with causeriectl rules test: $no_match non-matching texts fire no rule"
    if [ "$matching" -gt 0 ]; then
        line=$(grep -m1 'INV-\|4111' "$DIR/bodies.txt")
        out=$("$BIN/causeriectl" --config "$DIR/on.toml" rules test \
            --from bench1@localhost --to bench2@localhost "0 123456 $line")
        grep -q '^rule .* fires' <<<"$out" || { echo "$out" >&2; echo "a text meant to match does not" >&2; exit 1; }
        echo "checked with causeriectl rules test: a matching text: $(grep '^outcome' <<<"$out")"
    fi
fi

if [ "$MEASURE" = instructions ]; then
    # total_of FILE: the instruction count of a callgrind dump.
    total_of() { awk '/^(summary|totals):/ { print $2; exit }' "$1"; }
    per_message() { # NAME PID PORT: instructions per message of that server
        local name="$1" pid="$2" port="$3" m
        # Dump 1: start-up (rules compiled, database opened) and the warm-up run; dumps 2 and
        # 3: the phases.
        if [ "$WARMUP" -gt 0 ]; then
            "$BIN/causerie-bench" run --addr "127.0.0.1:$port" --label "$name" --users "$USERS" \
                --messages "$WARMUP" --bodies "$DIR/bodies.txt" --mechanism SCRAM-SHA-256 \
                --idle-secs 0 --max-duration-secs 1200 --concurrency 10 >"$DIR/$name-warm-up.txt"
        fi
        callgrind_control --dump="$name-start" "$pid" >/dev/null 2>&1
        for m in "$MESSAGES" "$((3 * MESSAGES))"; do
            "$BIN/causerie-bench" run --addr "127.0.0.1:$port" --label "$name" --users "$USERS" \
                --messages "$m" --bodies "$DIR/bodies.txt" --mechanism SCRAM-SHA-256 \
                --idle-secs 0 --max-duration-secs 600 --concurrency 10 >"$DIR/$name-run-$m.txt"
            callgrind_control --dump="$name-$m" "$pid" >/dev/null 2>&1
        done
        local first second
        first=$(total_of "$DIR/callgrind.$name.2")
        second=$(total_of "$DIR/callgrind.$name.3")
        echo $(((second - first) / (2 * MESSAGES * USERS)))
    }
    on_ir=$(per_message on "$ON_PID" 15262)
    off_ir=$(per_message off "$OFF_PID" 15272)
    echo "server instructions per message (callgrind, $USERS users, phases of $MESSAGES and $((3 * MESSAGES)) messages each):"
    echo "  rules on   $on_ir"
    echo "  rules off  $off_ir"
    awk -v a="$on_ir" -v b="$off_ir" 'BEGIN { printf "  on/off     %.3f  (throughput bound on/off, CPU-bound server: %.3f)\n", a / b, b / a }'
    exit 0
fi

"${TOOL_CPU[@]}" "$BIN/causerie-bench" alternate \
    --on 127.0.0.1:15262 --on-pid "$ON_PID" --on-label "$ON_LABEL" \
    --off 127.0.0.1:15272 --off-pid "$OFF_PID" --off-label "rules off" \
    --rounds "$ROUNDS" --users "$USERS" --messages "$MESSAGES" --bodies "$DIR/bodies.txt" \
    --mechanism SCRAM-SHA-256 "$@"

[ "$CONTROL" = 0 ] || exit 0
records=$("$BIN/causeriectl" --config "$DIR/on.toml" evidence list 2>/dev/null | grep -c . || true)
sent=$(((ROUNDS + 1) * USERS * MESSAGES))
echo "evidence records on the rules-on server: $records; about $((sent * matching / texts)) expected" \
    "($sent messages sent there, $matching in $texts texts matched by a capture rule)"
