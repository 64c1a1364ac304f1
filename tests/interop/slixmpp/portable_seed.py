#!/usr/bin/env python3
"""Puts data worth migrating into a real server (Prosody or ejabberd), through
its own client protocol, before it is exported in XEP-0227 format:

- alice and bob subscribe to each other (RFC 6121 section 3.1), then alice
  names bob and puts him in two groups;
- alice asks carol, who is offline, for a subscription: an outbound request
  pending for alice, an inbound one waiting for carol;
- alice publishes a vCard (XEP-0054) and keeps bookmarks in private XML
  storage (XEP-0049).

portable_check.py then checks that the same data came through an import
into Causerie.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import im
import scenario

ROLES = ["alice", "bob", "carol"]
PRIVATE_NS = "jabber:iq:private"
BOOKMARKS_NS = "storage:bookmarks"
VCARD_NS = "vcard-temp"

# What portable_check.py expects to find after the move.
BOB_NAME = "Bob (from Prosody) & co"
BOB_GROUPS = ["Friends", "Wörk"]
ALICE_FN = "Alice Liddell <portable>"
ROOM = "tea-party@conference.example.org"


async def run(args, report: scenario.Report) -> None:
    (alice_jid, alice_pw), (bob_jid, bob_pw), (carol_jid, _) = (
        args.accounts[r] for r in ROLES
    )
    alice = await im.open_session(report, args, "alice", alice_jid, alice_pw)
    bob = await im.open_session(report, args, "bob", bob_jid, bob_pw)
    try:
        if alice is None or bob is None:
            return
        if not await im.befriend(report, alice, bob):
            return
        kind, reply = await alice.roster_set(bob.bare, name=BOB_NAME, groups=BOB_GROUPS)
        report.check(kind == "result", "alice named bob and put him in two groups", im.short(reply))

        alice.subscription(carol_jid, "subscribe")
        kind, reply = await alice.roster_get()
        item = im.roster_items(reply).get(carol_jid)
        report.check(
            kind == "result" and item is not None and item["ask"] == "subscribe",
            "alice's request to carol (offline) is pending (ask='subscribe')",
            im.describe_item(item),
        )

        vcard = ET.Element(f"{{{VCARD_NS}}}vCard")
        ET.SubElement(vcard, f"{{{VCARD_NS}}}FN").text = ALICE_FN
        ET.SubElement(vcard, f"{{{VCARD_NS}}}NICKNAME").text = "alice"
        kind, reply = await alice.query(alice.raw_iq("set", vcard))
        report.check(kind == "result", "alice published her vCard", im.short(reply))

        query = ET.Element(f"{{{PRIVATE_NS}}}query")
        storage = ET.SubElement(query, f"{{{BOOKMARKS_NS}}}storage")
        ET.SubElement(
            storage,
            f"{{{BOOKMARKS_NS}}}conference",
            {"jid": ROOM, "name": "Tea party", "autojoin": "true"},
        )
        kind, reply = await alice.query(alice.raw_iq("set", query))
        report.check(kind == "result", "alice stored bookmarks in private XML storage", im.short(reply))
        for client in (alice, bob):
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM,
                f"{client.name} closed the stream",
                str(reason),
            )
    finally:
        await im.close_all([alice, bob])


if __name__ == "__main__":
    parser = im.im_parser(__doc__.splitlines()[0], ROLES)
    sys.exit(scenario.main(run, im.accounts(parser, ROLES), "portable seed"))
