#!/usr/bin/env python3
"""Two users log in with slixmpp and exchange chat messages.

Each user connects (STARTTLS, direct TLS per XEP-0368, or slixmpp's default
connect), verifies the server certificate against the given CA file for the
XMPP domain, authenticates with the SASL mechanism(s) allowed on the command
line, binds a resource (RFC 6120 section 7), sends initial presence and asks
for its roster (RFC 6121 sections 2.1.3 and 4.2), then sends a chat message
to the other user's bare JID. Each checks that it received the other's
message with the exact body and a 'from' equal to the sender's full JID
(RFC 6120 section 8.1.2.1: the server stamps the full JID of the sending
resource; RFC 6121 section 8.5.2.1.1: a chat message to a bare JID reaches
the available resources). Both then close their streams and check that the
server closed its stream too (RFC 6120 section 4.4).

Example:
  two_users_chat.py --port 5222 --ca-file localhost.crt --mode starttls \\
      --mech SCRAM-SHA-256 \\
      --account alice@localhost 'alice password' \\
      --account bob@localhost/phone 'bob password'
"""

from __future__ import annotations

import asyncio
import secrets
import sys

from slixmpp.exceptions import IqError, IqTimeout

import scenario


def parse_args():
    parser = scenario.base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--account",
        nargs=2,
        action="append",
        metavar=("JID", "PASSWORD"),
        required=True,
        help="a user (give exactly two); a JID with a resource asks to bind that resource",
    )
    parser.add_argument(
        "--expect-mech",
        help="mechanism the login must end up using (default: the first --mech, if any)",
    )
    parser.add_argument(
        "--expect-advertised",
        action="append",
        default=[],
        help="mechanism the server must offer (repeatable)",
    )
    parser.add_argument(
        "--expect-alpn",
        help="ALPN protocol the server must select (RFC 7301; XEP-0368 names xmpp-client)",
    )
    args = parser.parse_args()
    if len(args.account) != 2:
        parser.error("give exactly two --account")
    return args


async def log_in(report: scenario.Report, name: str, client: scenario.Client, args) -> bool:
    outcome = await client.login()
    if not report.check(outcome is True, f"{name} logged in", str(outcome)):
        return False

    names = client.cert_names()
    report.check(
        args.domain in names,
        f"{name}: server certificate verified against the CA file for {args.domain} "
        f"over {client.tls_version}"
        + (f", ALPN offered {args.alpn}, selected {client.alpn_selected!r}" if args.alpn else ""),
        f"verified certificate names: {names}",
    )
    if args.mode == "direct":
        offered = [tag for features in client.features_seen for tag in features]
        report.check(
            not any(tag.endswith("}starttls") for tag in offered),
            f"{name}: no STARTTLS offered on the direct TLS stream",
            f"features offered: {offered}",
        )
    expected_mech = args.expect_mech or (args.mech[0] if args.mech else None)
    if expected_mech:
        report.check(
            client.used_mechanism == expected_mech,
            f"{name}: authenticated with {expected_mech}",
            f"used {client.used_mechanism}; server offered {sorted(client.advertised_mechanisms)}",
        )
    else:
        report.check(
            client.used_mechanism is not None,
            f"{name}: authenticated with the best mechanism offered ({client.used_mechanism})",
        )
    for mech in args.expect_advertised:
        report.check(
            mech in client.advertised_mechanisms,
            f"{name}: server offered {mech}",
            f"offered {sorted(client.advertised_mechanisms)}",
        )
    if args.expect_alpn:
        report.check(
            client.alpn_selected == args.expect_alpn,
            f"{name}: server selected ALPN protocol {args.expect_alpn}",
            f"selected {client.alpn_selected!r}",
        )

    bound = client.boundjid
    requested = client.requested_jid
    report.check(
        bound.bare == requested.bare and bool(bound.resource),
        f"{name}: bound a full JID for {requested.bare} ({bound.full})",
        f"bound {bound.full!r}",
    )

    # Initial presence makes the resource available, so that messages sent
    # to the bare JID are delivered to it; the roster request afterwards is
    # answered only once the server has processed the presence (a stream's
    # stanzas are handled in order), so both clients are known available
    # before anyone sends a message.
    client.send_presence()
    iq = client.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    try:
        reply = await iq.send(timeout=scenario.STEP_TIMEOUT)
        answered, detail = True, f"type={reply['type']}"
    except IqError as err:
        answered, detail = True, f"type=error, {err.iq['error']['condition']}"
    except IqTimeout:
        answered, detail = False, "no reply"
    report.check(answered, f"{name}: roster request answered ({detail})", detail)
    return True


async def receive_chat(client: scenario.Client, body: str):
    """Returns the first chat message carrying `body`, or None on timeout.

    Other messages (a server's welcome message, say) are skipped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + scenario.STEP_TIMEOUT
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return None
        try:
            msg = await asyncio.wait_for(client.messages.get(), remaining)
        except asyncio.TimeoutError:
            return None
        if msg["body"] == body:
            return msg


async def run(args, report: scenario.Report) -> None:
    (jid_a, pw_a), (jid_b, pw_b) = args.account
    first = scenario.Client(jid_a, pw_a, args)
    second = scenario.Client(jid_b, pw_b, args)
    name_a, name_b = first.requested_jid.user, second.requested_jid.user
    try:
        logged = await asyncio.gather(
            log_in(report, name_a, first, args),
            log_in(report, name_b, second, args),
        )
        if not all(logged):
            return

        # Bodies with markup characters and non-ASCII text: the server must
        # carry them through its parser and serializer unchanged.
        token = secrets.token_hex(4)
        body_a = f"hello {name_b} <&> \"quoted\" 'single' – café ✓ {token}"
        body_b = f"hi {name_a}, réponse ✓ {token} <b>not markup</b>"
        first.send_message(mto=second.boundjid.bare, mbody=body_a, mtype="chat")
        second.send_message(mto=first.boundjid.bare, mbody=body_b, mtype="chat")
        got_b, got_a = await asyncio.gather(
            receive_chat(second, body_a), receive_chat(first, body_b)
        )
        for receiver, sender, msg in ((name_b, first, got_b), (name_a, second, got_a)):
            sender_name = sender.boundjid.user
            if report.check(
                msg is not None,
                f"{receiver} received {sender_name}'s message sent to its bare JID",
                "not received",
            ):
                report.check(
                    msg["from"].full == sender.boundjid.full,
                    f"{receiver}: message from is {sender_name}'s full JID",
                    f"from={msg['from'].full!r}, expected {sender.boundjid.full!r}",
                )
                report.check(
                    msg["type"] == "chat",
                    f"{receiver}: message type is chat",
                    f"type={msg['type']!r}",
                )

        reasons = await asyncio.gather(first.close(), second.close())
        for name, reason in ((name_a, reasons[0]), (name_b, reasons[1])):
            report.check(
                reason == scenario.END_OF_STREAM,
                f"{name}: server closed the stream after </stream:stream>",
                f"disconnect reason: {reason}",
            )
    finally:
        for client in (first, second):
            client.cancel_connection_attempt()
            if client.is_connected():
                client.abort()


def main() -> int:
    args = parse_args()
    mechs = "+".join(args.mech) if args.mech else "any mechanism"
    return scenario.main(run, args, f"{scenario.mode_name(args.mode)}/{mechs}")


if __name__ == "__main__":
    sys.exit(main())
