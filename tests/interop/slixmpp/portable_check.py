#!/usr/bin/env python3
"""Checks, on Causerie, what portable_seed.py put into another server, after
that server's XEP-0227 export was imported with causeriectl: the users log in
with their original passwords (SCRAM keys imported as they were), alice's
roster (bob with his name, groups and mutual subscription; the pending request
to carol), her vCard and her private bookmarks, bob's roster, and carol gets
alice's subscription request, still waiting for her answer. A wrong password
is refused.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import im
import scenario
from portable_seed import ALICE_FN, BOB_GROUPS, BOB_NAME, BOOKMARKS_NS, PRIVATE_NS, ROLES, ROOM, VCARD_NS


async def run(args, report: scenario.Report) -> None:
    (alice_jid, alice_pw), (bob_jid, bob_pw), (carol_jid, carol_pw) = (
        args.accounts[r] for r in ROLES
    )
    wrong = im.ImClient(alice_jid, alice_pw + "-wrong", args, "alice (wrong password)")
    outcome = await wrong.login()
    report.check(
        outcome is not True and "not-authorized" in wrong.auth_failures,
        "alice with a wrong password is refused (not-authorized)",
        f"{outcome}; failures {wrong.auth_failures}",
    )
    await im.close_all([wrong])

    alice = bob = carol = None
    try:
        alice = im.ImClient(alice_jid, alice_pw, args, "alice")
        outcome = await alice.login()
        if not report.check(
            outcome is True,
            "alice logged in with the password she had before the move",
            str(outcome),
        ):
            return
        if args.mech:
            report.check(
                alice.used_mechanism in args.mech,
                f"alice authenticated with {alice.used_mechanism}",
                f"expected one of {args.mech}",
            )
        kind, reply = await alice.roster_get()
        items = im.roster_items(reply)
        bob_item = items.get(bob_jid)
        report.check(
            kind == "result"
            and bob_item is not None
            and bob_item["subscription"] == "both"
            and bob_item["name"] == BOB_NAME
            and bob_item["groups"] == sorted(BOB_GROUPS),
            "alice's roster has bob: subscription both, his name and both groups",
            im.describe_item(bob_item),
        )
        carol_item = items.get(carol_jid)
        report.check(
            carol_item is not None
            and carol_item["subscription"] == "none"
            and carol_item["ask"] == "subscribe",
            "alice's roster has carol with her request pending (none, ask='subscribe')",
            im.describe_item(carol_item),
        )

        kind, reply = await alice.query(alice.raw_iq("get", ET.Element(f"{{{VCARD_NS}}}vCard")))
        fn = None
        if kind == "result":
            el = reply.xml.find(f"{{{VCARD_NS}}}vCard/{{{VCARD_NS}}}FN")
            fn = None if el is None else el.text
        report.check(fn == ALICE_FN, "alice's vCard came along (FN)", f"{kind}: {im.short(reply)}")

        query = ET.Element(f"{{{PRIVATE_NS}}}query")
        ET.SubElement(query, f"{{{BOOKMARKS_NS}}}storage")
        kind, reply = await alice.query(alice.raw_iq("get", query))
        rooms = []
        if kind == "result":
            rooms = [
                c.get("jid")
                for c in reply.xml.iter(f"{{{BOOKMARKS_NS}}}conference")
            ]
        report.check(
            rooms == [ROOM],
            "alice's bookmarks came along (private XML storage)",
            f"{kind}: {im.short(reply)}",
        )

        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw, presence=False)
        if bob is not None:
            kind, reply = await bob.roster_get()
            item = im.roster_items(reply).get(alice_jid)
            report.check(
                item is not None and item["subscription"] == "both",
                "bob's roster has alice with subscription both",
                im.describe_item(item),
            )

        carol = await im.open_session(report, args, "carol", carol_jid, carol_pw)
        if carol is not None:
            request = await carol.expect(im.is_presence("subscribe", alice_jid))
            report.check(
                request is not None,
                "carol gets alice's subscription request, still waiting for her answer",
                "none arrived",
            )
        for client in (alice, bob, carol):
            if client is None:
                continue
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM, f"{client.name} closed the stream", str(reason)
            )
    finally:
        await im.close_all([alice, bob, carol])


if __name__ == "__main__":
    parser = im.im_parser(__doc__.splitlines()[0], ROLES)
    sys.exit(scenario.main(run, im.accounts(parser, ROLES), "portable check"))
