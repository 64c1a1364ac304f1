#!/usr/bin/env python3
"""Offline messages (XEP-0160, RFC 6121 section 8.5.2.2) with delay stamps (XEP-0203).

bob has never logged in. alice sends him three messages at his bare JID
(chat, normal, chat), plus a headline, which the server discards (RFC 6121
8.5.2.2.1), and a groupchat message, refused with service-unavailable.

bob logs in without presence: nothing is delivered. Once he sends initial
presence (XEP-0160 section 3) he gets the three messages, in the order
sent, with the bodies, types and alice's full JID as sent, each with a
<delay/> from the server's domain and a UTC stamp from the time it was
stored; then a live message from alice, and no headline before it.

A fresh login of bob then gets no stored message again: alice's next live
message is the first thing that arrives.

Example:
  offline.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2
"""

from __future__ import annotations

import datetime as dt
import secrets
import sys

import im
import scenario

ROLES = ["alice", "bob"]
# The stamps are compared with this machine's clock, which the server shares;
# the margin covers the whole-second precision of stamps.
CLOCK_MARGIN = dt.timedelta(seconds=5)


def delay_of(st):
    return st.xml.find(f"{{{im.DELAY_NS}}}delay") if st is not None else None


def parse_stamp(stamp: str | None) -> dt.datetime | None:
    """An XEP-0082 DateTime in UTC ('Z' or +00:00), or None."""
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.utcoffset() != dt.timedelta(0):
        return None
    return when


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    alice = bob = bob_again = None
    token = secrets.token_hex(3)
    sent = [
        (f"offline 1 <{token}> – café", "chat"),
        (f"offline 2 {token} &amp; ✓", "normal"),
        (f"offline 3 {token}", "chat"),
    ]
    try:
        alice = await im.open_session(report, args, "alice", alice_jid, alice_pw)
        if alice is None:
            return

        before = dt.datetime.now(dt.timezone.utc) - CLOCK_MARGIN
        for body, mtype in sent:
            alice.send_message(mto=bob_jid, mbody=body, mtype=mtype)
        alice.send_message(mto=bob_jid, mbody=f"headline {token}", mtype="headline")
        ma = alice.mark()
        alice.send_message(mto=bob_jid, mbody=f"groupchat {token}", mtype="groupchat")
        report.check(
            await alice.sync(), "alice sent three messages to offline bob", "no answer to a ping"
        )
        bounce = await alice.expect(im.is_message(mtype="error", frm=bob_jid), since=ma)
        report.check(
            bounce is not None and im.error_condition(bounce) == "service-unavailable",
            "alice's groupchat message to offline bob bounced with service-unavailable (RFC 6121 8.5.2.2.1)",
            im.short(bounce),
        )
        errors = [e for e in alice.received(im.is_message(mtype="error")) if e is not bounce]
        report.check(
            not errors,
            "no error for the chat, normal and headline messages",
            f"errors: {[im.short(e) for e in errors]}",
        )

        # Logged in, not yet available: nothing delivered.
        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw, presence=False)
        if bob is None:
            return
        await bob.sync()
        early = bob.received(im.is_message())
        report.check(
            not early,
            "bob got no stored message before sending presence",
            f"got {[im.short(m) for m in early]}",
        )

        bob.send_presence()
        for body, _ in sent:
            await bob.expect(im.is_message(body=body))
        got = bob.received(im.is_message(frm=alice_jid))
        bodies = [im.message_body(m) for m in got]
        after = dt.datetime.now(dt.timezone.utc) + CLOCK_MARGIN
        report.check(
            bodies[:3] == [b for b, _ in sent],
            "bob got the three messages, in the order sent, once he sent presence",
            f"bodies received: {bodies}",
        )
        for i, (msg, (body, mtype)) in enumerate(zip(got[:3], sent), start=1):
            if im.message_body(msg) != body:
                continue
            report.check(
                msg.xml.get("from") == alice.full,
                f"message {i}: from alice's full JID",
                f"from={msg.xml.get('from')!r}, expected {alice.full!r}",
            )
            report.check(
                (msg.xml.get("type") or "normal") == mtype,
                f"message {i}: type {mtype} kept",
                f"type={msg.xml.get('type')!r}",
            )
            delay = delay_of(msg)
            if not report.check(
                delay is not None, f"message {i}: has a XEP-0203 delay", im.short(msg)
            ):
                continue
            report.check(
                delay.get("from") == bob.boundjid.domain,
                f"message {i}: the delay is from the server's domain ({bob.boundjid.domain})",
                f"from={delay.get('from')!r}",
            )
            stamp = parse_stamp(delay.get("stamp"))
            report.check(
                stamp is not None and before <= stamp <= after,
                f"message {i}: the delay stamp is a UTC time from when it was stored",
                f"stamp={delay.get('stamp')!r}, sent around {before + CLOCK_MARGIN:%H:%M:%S}",
            )

        # alice's live message comes after anything stored.
        live = f"live after login {token}"
        alice.send_message(mto=bob_jid, mbody=live, mtype="chat")
        index = await bob.expect_index(im.is_message(body=live))
        if report.check(
            index is not None, "bob got alice's live message after the stored ones", "none arrived"
        ):
            report.check(
                delay_of(bob.inbox[index]) is None,
                "the live message has no delay",
                im.short(bob.inbox[index]),
            )
            headline = bob.received(im.is_message(body=f"headline {token}"), 0, index)
            report.check(
                not headline,
                "the headline sent while bob was offline was not stored (RFC 6121 8.5.2.2.1)",
                f"got {[im.short(m) for m in headline]}",
            )
            extra = [
                m
                for m in bob.received(im.is_message(), 0, index)
                if im.message_body(m) not in {b for b, _ in sent}
            ]
            report.check(
                not extra and len(bob.received(im.is_message(), 0, index)) == len(sent),
                "nothing but the three stored messages came before it",
                f"also got {[im.short(m) for m in extra]}",
            )

        reason = await bob.close()
        report.check(
            reason == scenario.END_OF_STREAM, "bob logged out", f"disconnect reason: {reason}"
        )

        bob_again = await im.open_session(report, args, "bob (again)", bob_jid, bob_pw)
        if bob_again is None:
            return
        live = f"live after second login {token}"
        alice.send_message(mto=bob_jid, mbody=live, mtype="chat")
        index = await bob_again.expect_index(im.is_message(body=live))
        if report.check(index is not None, "bob (again) got alice's live message", "none arrived"):
            replayed = bob_again.received(im.is_message(), 0, index)
            report.check(
                not replayed,
                "bob (again) got no stored message a second time",
                f"got {[im.short(m) for m in replayed]}",
            )
    finally:
        await im.close_all((alice, bob, bob_again))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "offline")


if __name__ == "__main__":
    sys.exit(main())
