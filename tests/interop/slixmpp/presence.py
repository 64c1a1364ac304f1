#!/usr/bin/env python3
"""Presence (RFC 6121 section 4) and client state indication (XEP-0352).

alice and bob subscribe to each other; carol is a stranger to both.

- bob closes his stream without unavailable presence: alice gets
  unavailable presence from his resource (4.5).
- bob logs in again with show, status and priority: alice gets that
  initial presence (4.2.2); bob gets alice's current presence, the answer
  to the server's probe (4.3), and his own presence back (4.2.2: a user is
  subscribed to itself).
- Changes of show and status reach the other side, both ways (4.4.2).
- CSI: alice says she is inactive (XEP-0352, announced as a stream
  feature); bob changes presence twice and then sends a chat message. The
  message reaches alice at once, the presence is held back, and when she
  is active again she gets bob's latest presence only.
- bob sends unavailable presence with a status: alice gets it with the
  status (4.5.2); then available again, which alice sees too.
- bob's connection is reset (TCP RST) without a word, then another
  session of his is dropped with a plain TCP close, no TLS close_notify
  and no </stream:stream>: each time alice gets unavailable presence from
  that resource (4.5).
- Directed presence (4.6): a second resource of alice sends presence to
  carol, who gets it; when that resource's connection is dropped, carol
  gets unavailable presence from it (4.6.3).

Example:
  presence.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --account carol@localhost pw3
"""

from __future__ import annotations

import sys

import im
import scenario

ROLES = ["alice", "bob", "carol"]
CSI_FEATURE = "{urn:xmpp:csi:0}csi"


def priority(st) -> str | None:
    elem = st.xml.find(f"{{{im.CLIENT_NS}}}priority") if st is not None else None
    return None if elem is None else (elem.text or "").strip()


def with_status(jid: str, status: str, ptype: str = "available"):
    return lambda st: im.is_presence(ptype, jid)(st) and st["status"] == status


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    carol_jid, carol_pw = args.accounts["carol"]
    alice = bob1 = bob2 = bob3 = alice2 = carol = None
    try:
        alice = await im.open_session(
            report,
            args,
            "alice",
            alice_jid,
            alice_pw,
            plugins=["xep_0352"],
            show="away",
            status="here",
        )
        bob1 = await im.open_session(report, args, "bob/1", bob_jid, bob_pw)
        carol = await im.open_session(report, args, "carol", carol_jid, carol_pw)
        if alice is None or bob1 is None or carol is None:
            return
        if not await im.befriend(report, alice, bob1):
            return

        # A stream closed without unavailable presence.
        ma = alice.mark()
        bob1_full = bob1.full
        reason = await bob1.close()
        report.check(
            reason == scenario.END_OF_STREAM,
            "bob/1 closed its stream (no unavailable presence sent)",
            f"disconnect reason: {reason}",
        )
        got = await alice.expect(im.is_presence("unavailable", bob1_full), since=ma)
        report.check(
            got is not None,
            "alice got unavailable presence from bob/1 when its stream closed (4.5)",
            "none arrived",
        )

        # Initial presence and the probe (4.2, 4.3).
        ma = alice.mark()
        bob2 = await im.open_session(
            report, args, "bob/2", bob_jid, bob_pw, show="chat", status="back ✓", priority=5
        )
        if bob2 is None:
            return
        got = await alice.expect(im.is_presence("available", bob2.full), since=ma)
        report.check(
            got is not None
            and got["show"] == "chat"
            and got["status"] == "back ✓"
            and priority(got) == "5",
            "alice got bob/2's initial presence with show chat, status 'back ✓' and priority 5 (4.2.2)",
            im.short(got),
        )
        got = await bob2.expect(im.is_presence("available", alice.full))
        report.check(
            got is not None and got["show"] == "away" and got["status"] == "here",
            "bob/2 got alice's current presence (show away, status 'here') after its initial presence (4.3)",
            im.short(got),
        )
        got = await bob2.expect(im.is_presence("available", bob2.full))
        report.check(
            got is not None and got["status"] == "back ✓",
            "bob/2 got its own initial presence back (4.2.2)",
            im.short(got),
        )

        # Changes (4.4).
        ma = alice.mark()
        bob2.send_presence(pshow="away", pstatus="brb", ppriority=5)
        got = await alice.expect(with_status(bob2.full, "brb"), since=ma)
        report.check(
            got is not None and got["show"] == "away",
            "alice sees bob/2 change to away 'brb' (4.4.2)",
            im.short(got),
        )
        mb = bob2.mark()
        alice.send_presence(pshow="dnd", pstatus="busy")
        got = await bob2.expect(with_status(alice.full, "busy"), since=mb)
        report.check(
            got is not None and got["show"] == "dnd",
            "bob/2 sees alice change to dnd 'busy' (4.4.2)",
            im.short(got),
        )

        # Client state indication (XEP-0352).
        offered = [t for features in alice.features_seen for t in features]
        if report.check(
            CSI_FEATURE in offered,
            "CSI announced as a stream feature (XEP-0352 section 3)",
            f"features: {offered}",
        ):
            alice.plugin["xep_0352"].send_inactive()
            await alice.sync()
            ma = alice.mark()
            bob2.send_presence(pshow="xa", pstatus="csi one", ppriority=5)
            bob2.send_presence(pshow="away", pstatus="csi two", ppriority=5)
            bob2.send_message(mto=alice.bare, mbody="while you were inactive", mtype="chat")
            got = await alice.expect(im.is_message("while you were inactive"), since=ma)
            if report.check(
                got is not None,
                "inactive alice still got bob's chat message at once",
                "none arrived",
            ):
                held = alice.received(im.is_presence("available", bob2.full), ma)
                report.check(
                    not held,
                    "bob's presence changes were held back while alice was inactive",
                    f"delivered: {[im.short(p) for p in held]}",
                )
            alice.plugin["xep_0352"].send_active()
            got = await alice.expect(with_status(bob2.full, "csi two"), since=ma)
            report.check(
                got is not None,
                "alice got bob's latest presence ('csi two') once active again",
                f"presence received: {[im.short(p) for p in alice.received(im.is_presence(frm=bob2.full), ma)]}",
            )
            stale = alice.received(with_status(bob2.full, "csi one"), ma)
            report.check(
                not stale,
                "the superseded presence ('csi one') was not delivered",
                f"delivered: {[im.short(p) for p in stale]}",
            )

        # Unavailable with a status, then available again (4.5, 4.2).
        ma = alice.mark()
        bob2.send_presence(ptype="unavailable", pstatus="bye for now")
        got = await alice.expect(im.is_presence("unavailable", bob2.full), since=ma)
        report.check(
            got is not None and got["status"] == "bye for now",
            "alice got bob/2's unavailable presence with status 'bye for now' (4.5.2)",
            im.short(got),
        )
        ma = alice.mark()
        bob2.send_presence(pstatus="here again", ppriority=1)
        got = await alice.expect(with_status(bob2.full, "here again"), since=ma)
        report.check(got is not None, "alice sees bob/2 available again", "none arrived")

        # Abrupt ends (4.5): a reset, then a bare TCP close.
        ma = alice.mark()
        bob2_full = bob2.full
        bob2.kill(reset=True)
        got = await alice.expect(im.is_presence("unavailable", bob2_full), since=ma)
        report.check(
            got is not None,
            "alice got unavailable presence from bob/2 after its TCP connection was reset",
            "none arrived",
        )
        ma = alice.mark()
        bob3 = await im.open_session(report, args, "bob/3", bob_jid, bob_pw, status="third")
        if bob3 is None:
            return
        bob3_full = bob3.full
        got = await alice.expect(with_status(bob3_full, "third"), since=ma)
        report.check(got is not None, "alice sees bob/3 available", "none arrived")
        ma = alice.mark()
        bob3.kill(reset=False)
        got = await alice.expect(im.is_presence("unavailable", bob3_full), since=ma)
        report.check(
            got is not None,
            "alice got unavailable presence from bob/3 after its TCP connection closed "
            "without </stream:stream> or TLS close_notify",
            "none arrived",
        )

        # Directed presence (4.6).
        alice2 = await im.open_session(report, args, "alice/2", alice_jid, alice_pw)
        if alice2 is None:
            return
        mc = carol.mark()
        alice2.send_presence(pto=carol.bare, pstatus="hello carol")
        got = await carol.expect(with_status(alice2.full, "hello carol"), since=mc)
        report.check(
            got is not None,
            "carol, not subscribed, got alice/2's directed presence (4.6.2)",
            "none arrived",
        )
        mc = carol.mark()
        alice2_full = alice2.full
        alice2.kill(reset=True)
        got = await carol.expect(im.is_presence("unavailable", alice2_full), since=mc)
        report.check(
            got is not None,
            "carol got unavailable presence from alice/2 when its connection was dropped (4.6.3)",
            "none arrived",
        )
    finally:
        await im.close_all((alice, bob1, bob2, bob3, alice2, carol))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "presence")


if __name__ == "__main__":
    sys.exit(main())
