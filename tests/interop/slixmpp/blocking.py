#!/usr/bin/env python3
"""Blocking command (XEP-0191).

alice and bob subscribe to each other; carol writes to both to mark the
point up to which something would have arrived.

- The blocklist starts empty (3.2).
- alice blocks bob (3.3): the result, a block push to her session, which
  had requested the blocklist, and bob gets her unavailable presence.
- bob's message to alice bounces with service-unavailable, his IQ too, his
  presence is dropped without an error: alice gets nothing from him.
- alice's message to bob bounces with not-acceptable and <blocked/>, and
  her presence no longer reaches him.
- A block without items is a bad request (3.3).
- alice unblocks bob (3.4): result, unblock push, bob gets her current
  presence, and bob's messages and presence reach alice again.
- Blocking two addresses then unblocking all (3.5) empties the list.

Example:
  blocking.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --account carol@localhost pw3
"""

from __future__ import annotations

import secrets
import sys
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError, IqTimeout

import im
import scenario

ROLES = ["alice", "bob", "carol"]
BLOCKING_ERRORS_NS = "urn:xmpp:blocking:errors"


def block_push(kind: str, jid: str | None = None):
    """A blocklist push of `kind` ('block' or 'unblock'), naming `jid` (None:
    an empty one, for unblock-all)."""

    def match(st) -> bool:
        if im.tag(st) != "iq" or st.xml.get("type") != "set":
            return False
        elem = st.xml.find(f"{{{im.BLOCKING_NS}}}{kind}")
        if elem is None:
            return False
        jids = [i.get("jid") for i in elem.findall(f"{{{im.BLOCKING_NS}}}item")]
        return jids == [] if jid is None else jid in jids

    return match


async def blocklist(client: im.ImClient) -> tuple[bool, set[str], str]:
    try:
        jids = await client.plugin["xep_0191"].get_blocked_jids(timeout=scenario.STEP_TIMEOUT)
        return True, {str(j) for j in jids}, ""
    except (IqError, IqTimeout) as err:
        return False, set(), repr(err)


async def call(report: scenario.Report, what: str, coro) -> bool:
    try:
        await coro
        return report.check(True, what)
    except IqError as err:
        return report.check(False, what, im.short(err.iq))
    except IqTimeout:
        return report.check(False, what, "no answer")


async def run(args, report: scenario.Report) -> None:
    alice = bob = carol = None
    token = secrets.token_hex(3)
    try:
        alice = await im.open_session(
            report, args, "alice", *args.accounts["alice"], plugins=["xep_0191"]
        )
        bob = await im.open_session(
            report, args, "bob", *args.accounts["bob"], plugins=["xep_0092"]
        )
        carol = await im.open_session(report, args, "carol", *args.accounts["carol"])
        if alice is None or bob is None or carol is None:
            return
        if not await im.befriend(report, alice, bob):
            return

        ok, jids, detail = await blocklist(alice)
        report.check(
            ok and not jids, "alice's blocklist is empty at first (3.2)", detail or str(jids)
        )

        # Block (3.3).
        ma, mb = alice.mark(), bob.mark()
        blocking = alice.plugin["xep_0191"]
        await call(
            report,
            "alice blocked bob (3.3)",
            blocking.block(bob.bare, timeout=scenario.STEP_TIMEOUT),
        )
        push = await alice.expect(block_push("block", bob.bare), since=ma)
        report.check(push is not None, "alice got the block push", "none arrived")
        got = await bob.expect(im.is_presence("unavailable", alice.full), since=mb)
        report.check(
            got is not None,
            "bob got alice's unavailable presence when she blocked him",
            "none arrived",
        )
        ok, jids, detail = await blocklist(alice)
        report.check(ok and jids == {bob.bare}, "alice's blocklist lists bob", detail or str(jids))

        # bob writes to alice.
        ma, mb = alice.mark(), bob.mark()
        bob.send_presence(pstatus=f"bob while blocked {token}")
        bob.send_message(mto=alice.bare, mbody=f"blocked message {token}", mtype="chat")
        bounce = await bob.expect(im.is_message(mtype="error", frm=alice.bare), since=mb)
        report.check(
            bounce is not None and im.error_condition(bounce) == "service-unavailable",
            "bob's message to alice bounced with service-unavailable",
            im.short(bounce),
        )
        try:
            reply = await bob.plugin["xep_0092"].get_version(
                alice.full, timeout=scenario.STEP_TIMEOUT
            )
            kind = "result"
        except IqError as err:
            reply, kind = err.iq, "error"
        except IqTimeout:
            reply, kind = None, "timeout"
        report.check(
            kind == "error" and im.error_condition(reply) == "service-unavailable",
            "bob's IQ to alice's full JID answered with service-unavailable",
            f"{kind}: {im.short(reply)}",
        )
        presence_errors = bob.received(
            lambda st: im.tag(st) == "presence" and st.xml.get("type") == "error", mb
        )
        report.check(
            not presence_errors,
            "bob's presence got no error back",
            f"got {[im.short(p) for p in presence_errors]}",
        )
        mark = f"carol to alice {token}"
        carol.send_message(mto=alice.bare, mbody=mark, mtype="chat")
        index = await alice.expect_index(im.is_message(body=mark), since=ma)
        if report.check(index is not None, "alice got carol's message", "none arrived"):
            leaked = alice.received(lambda st: im.same_sender(st, bob.bare), ma, index)
            report.check(
                not leaked,
                "alice got nothing from bob (message, IQ, presence) while he was blocked",
                f"got {[im.short(p) for p in leaked]}",
            )

        # alice writes to bob.
        ma, mb = alice.mark(), bob.mark()
        alice.send_presence(pstatus=f"alice while blocking {token}")
        alice.send_message(mto=bob.bare, mbody=f"to the blocked {token}", mtype="chat")
        bounce = await alice.expect(im.is_message(mtype="error", frm=bob.bare), since=ma)
        blocked = (
            bounce is not None
            and bounce.xml.find(f"{{{im.CLIENT_NS}}}error/{{{BLOCKING_ERRORS_NS}}}blocked")
            is not None
        )
        report.check(
            bounce is not None and im.error_condition(bounce) == "not-acceptable" and blocked,
            "alice's message to bob bounced with not-acceptable and <blocked/> (3.3)",
            im.short(bounce),
        )
        mark = f"carol to bob {token}"
        carol.send_message(mto=bob.bare, mbody=mark, mtype="chat")
        index = await bob.expect_index(im.is_message(body=mark), since=mb)
        if report.check(index is not None, "bob got carol's message", "none arrived"):
            leaked = bob.received(lambda st: im.same_sender(st, alice.bare), mb, index)
            report.check(
                not leaked,
                "bob got nothing from alice (message, presence) while she blocked him",
                f"got {[im.short(p) for p in leaked]}",
            )

        # A block without items (3.3).
        kind, reply = await alice.query(
            alice.raw_iq("set", ET.Element(f"{{{im.BLOCKING_NS}}}block"))
        )
        report.check(
            kind == "error" and im.error_condition(reply) == "bad-request",
            "a block without items is refused with bad-request (3.3)",
            f"{kind}: {im.short(reply)}",
        )

        # Unblock (3.4).
        ma, mb = alice.mark(), bob.mark()
        await call(
            report,
            "alice unblocked bob (3.4)",
            blocking.unblock(bob.bare, timeout=scenario.STEP_TIMEOUT),
        )
        push = await alice.expect(block_push("unblock", bob.bare), since=ma)
        report.check(push is not None, "alice got the unblock push", "none arrived")
        got = await bob.expect(im.is_presence("available", alice.full), since=mb)
        report.check(
            got is not None,
            "bob got alice's current presence when she unblocked him (3.4: the server MUST send it)",
            "none arrived",
        )
        ma = alice.mark()
        bob.send_presence(pstatus=f"bob unblocked {token}")
        bob.send_message(mto=alice.bare, mbody=f"unblocked message {token}", mtype="chat")
        got = await alice.expect(im.is_message(body=f"unblocked message {token}"), since=ma)
        report.check(got is not None, "alice gets bob's messages again", "none arrived")
        got = await alice.expect(
            lambda st: im.is_presence("available", bob.full)(st)
            and st["status"] == f"bob unblocked {token}",
            since=ma,
        )
        report.check(got is not None, "alice sees bob's presence again", "none arrived")

        # Unblock all (3.5).
        ma = alice.mark()
        await call(
            report,
            "alice blocked bob and carol in one command",
            blocking.block([bob.bare, carol.bare], timeout=scenario.STEP_TIMEOUT),
        )
        ok, jids, detail = await blocklist(alice)
        report.check(
            ok and jids == {bob.bare, carol.bare},
            "alice's blocklist lists both",
            detail or str(jids),
        )
        # slixmpp's unblock() wants at least one JID: a raw IQ for this one.
        kind, reply = await alice.query(
            alice.raw_iq("set", ET.Element(f"{{{im.BLOCKING_NS}}}unblock"))
        )
        report.check(
            kind == "result", "alice unblocked everyone (3.5)", f"{kind}: {im.short(reply)}"
        )
        push = await alice.expect(block_push("unblock", None), since=ma)
        report.check(push is not None, "alice got an empty unblock push", "none arrived")
        ok, jids, detail = await blocklist(alice)
        report.check(ok and not jids, "alice's blocklist is empty again", detail or str(jids))
    finally:
        await im.close_all((alice, bob, carol))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "blocking")


if __name__ == "__main__":
    sys.exit(main())
