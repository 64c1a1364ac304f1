#!/usr/bin/env python3
"""Message carbons (XEP-0280) between two resources of one account.

alice is logged in twice (alice/1, alice/2), both enable carbons; bob is
another user.

- bob writes to alice/1's full JID: alice/1 gets the message, alice/2 a
  <received/> carbon of it, from alice's bare JID (the XEP's security
  considerations have clients check that), wrapping the original message
  with its from and to (XEP-0297).
- alice/1 writes to bob: bob gets it, alice/2 gets a <sent/> carbon
  carbon; alice/1 gets no copy of its own message.
- A message with <private/> and <no-copy/> (XEP-0334) is not copied.
- After alice/2 disables carbons it gets no copies.

Example:
  carbons.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2
"""

from __future__ import annotations

import secrets
import sys
import xml.etree.ElementTree as ET

import im
import scenario

ROLES = ["alice", "bob"]
HINTS_NS = "urn:xmpp:hints"


def carbon(kind: str, body: str | None = None):
    """A carbon of kind 'received' or 'sent', optionally of a message with `body`."""

    def match(st) -> bool:
        if im.tag(st) != "message":
            return False
        inner = forwarded(st, kind)
        if inner is None:
            return False
        if body is None:
            return True
        text = inner.find(f"{{{im.CLIENT_NS}}}body")
        return text is not None and text.text == body

    return match


def forwarded(st, kind: str):
    """The message inside a carbon of `kind`, or None."""
    wrapper = st.xml.find(f"{{{im.CARBONS_NS}}}{kind}")
    if wrapper is None:
        return None
    fwd = wrapper.find(f"{{{im.FORWARD_NS}}}forwarded")
    if fwd is None:
        return None
    return fwd.find(f"{{{im.CLIENT_NS}}}message")


async def enable(report: scenario.Report, client: im.ImClient, on: bool) -> bool:
    verb = "enable" if on else "disable"
    iq = client.raw_iq("set", ET.Element(f"{{{im.CARBONS_NS}}}{verb}"))
    kind, reply = await client.query(iq)
    return report.check(
        kind == "result", f"{client.name}: carbons {verb}d", f"{kind}: {im.short(reply)}"
    )


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    a1 = a2 = bob = None
    token = secrets.token_hex(3)
    try:
        a1 = await im.open_session(
            report, args, "alice/1", alice_jid, alice_pw, plugins=["xep_0280"]
        )
        a2 = await im.open_session(
            report, args, "alice/2", alice_jid, alice_pw, plugins=["xep_0280"]
        )
        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw)
        if a1 is None or a2 is None or bob is None:
            return
        # slixmpp's own call for the first one, a raw IQ for the second.
        try:
            await a1.plugin["xep_0280"].enable(timeout=scenario.STEP_TIMEOUT)
            report.check(True, "alice/1: carbons enabled (slixmpp xep_0280)")
        except Exception as err:  # IqError, IqTimeout
            report.check(False, "alice/1: carbons enabled (slixmpp xep_0280)", repr(err))
        await enable(report, a2, True)

        # Received carbons.
        body = f"to alice/1 only {token}"
        m1, m2 = a1.mark(), a2.mark()
        bob.send_message(mto=a1.full, mbody=body, mtype="chat")
        direct = await a1.expect(im.is_message(body=body), since=m1)
        report.check(
            direct is not None and direct.xml.get("from") == bob.full,
            "alice/1 got bob's message to its full JID",
            im.short(direct),
        )
        copy = await a2.expect(carbon("received", body), since=m2)
        if report.check(copy is not None, "alice/2 got a received carbon of it", "none arrived"):
            inner = forwarded(copy, "received")
            report.check(
                copy.xml.get("from") == a2.bare and copy.xml.get("to") == a2.full,
                "the received carbon is from alice's bare JID to alice/2",
                f"from={copy.xml.get('from')!r} to={copy.xml.get('to')!r}",
            )
            report.check(
                inner.get("from") == bob.full
                and inner.get("to") == a1.full
                and inner.get("type") == "chat",
                "the forwarded message keeps from=bob's full JID, to=alice/1 and type chat",
                im.short(copy),
            )
        plain = a2.received(im.is_message(body=body), m2)
        report.check(
            not plain,
            "alice/2 did not get the message itself, only the carbon",
            f"got {[im.short(p) for p in plain]}",
        )

        # Sent carbons.
        body = f"from alice/1 {token}"
        m1, m2, mb = a1.mark(), a2.mark(), bob.mark()
        a1.send_message(mto=bob.bare, mbody=body, mtype="chat")
        got = await bob.expect(im.is_message(body=body), since=mb)
        report.check(got is not None, "bob got alice/1's message", "none arrived")
        copy = await a2.expect(carbon("sent", body), since=m2)
        if report.check(copy is not None, "alice/2 got a sent carbon of it", "none arrived"):
            inner = forwarded(copy, "sent")
            report.check(
                copy.xml.get("from") == a2.bare,
                "the sent carbon is from alice's bare JID",
                f"from={copy.xml.get('from')!r}",
            )
            report.check(
                inner.get("from") == a1.full and inner.get("to") == bob.bare,
                "the forwarded message has from=alice/1 and to=bob's bare JID",
                im.short(copy),
            )
        # Private; alice/1's next message is the barrier.
        private = f"private {token}"
        after = f"after private {token}"
        m1, m2 = a1.mark(), a2.mark()
        msg = a1.make_message(mto=bob.bare, mbody=private, mtype="chat")
        ET.SubElement(msg.xml, f"{{{im.CARBONS_NS}}}private")
        ET.SubElement(msg.xml, f"{{{HINTS_NS}}}no-copy")
        msg.send()
        a1.send_message(mto=bob.bare, mbody=after, mtype="chat")
        index = await a2.expect_index(carbon("sent", after), since=m2)
        if report.check(
            index is not None, "alice/2 got a sent carbon of the next message", "none arrived"
        ):
            leaked = a2.received(carbon("sent", private), m2)
            report.check(
                not leaked,
                "a message marked <private/> and <no-copy/> was not copied",
                f"got {[im.short(p) for p in leaked]}",
            )
        own = a1.received(lambda st: carbon("sent")(st) or carbon("received")(st), 0)
        report.check(
            not own,
            "alice/1 got no carbon of its own traffic",
            f"got {[im.short(p) for p in own]}",
        )

        # Disabled: bob's message to alice/2 itself is the barrier.
        if await enable(report, a2, False):
            body = f"after disable {token}"
            barrier = f"barrier {token}"
            m2 = a2.mark()
            bob.send_message(mto=a1.full, mbody=body, mtype="chat")
            bob.send_message(mto=a2.full, mbody=barrier, mtype="chat")
            index = await a2.expect_index(im.is_message(body=barrier), since=m2)
            if report.check(
                index is not None, "alice/2 got bob's message to its full JID", "none arrived"
            ):
                leaked = a2.received(carbon("received"), m2, index)
                report.check(
                    not leaked,
                    "alice/2 got no carbon after disabling carbons",
                    f"got {[im.short(p) for p in leaked]}",
                )
    finally:
        await im.close_all((a1, a2, bob))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "carbons")


if __name__ == "__main__":
    sys.exit(main())
