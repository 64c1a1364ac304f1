#!/usr/bin/env python3
"""Roster management and versioning (RFC 6121 section 2).

alice logs in twice (two resources, both fetch the roster so both are
interested resources, section 2.1.6). With versioning announced as a
stream feature (section 2.6.1), the first resource:

- gets the roster with ver='' (empty, with a version);
- adds bob with a name and two groups: the result, then a roster push to
  both resources carrying the item and a new version (sections 2.3, 2.1.6);
- gets the roster again and finds the item as it was set;
- updates the name and groups: pushes to both resources (section 2.4);
- asks with the current version: an empty result (section 2.6.3);
- asks with an older version: either the whole roster or an empty result
  followed by pushes that bring the copy up to date (section 2.6.3);
- sends malformed roster sets, each refused with the error section 2.3.3
  names, and a subscription value other than 'remove', which is ignored
  (section 2.1.2.5);
- removes bob: result, pushes with subscription='remove', an empty roster;
  removing him again gives item-not-found (section 2.5).

Example:
  roster.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost 'alice password' --account bob@localhost -
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

import im
import scenario

ROLES = ["alice", "bob"]
ROSTERVER = "{urn:xmpp:features:rosterver}ver"


async def expect_push(
    report: scenario.Report, client: im.ImClient, since: int, jid: str, what: str, want: dict
) -> dict | None:
    """Waits for a push about `jid` and checks its item against `want`."""
    push = await client.expect(im.is_roster_push(jid), since=since)
    if not report.check(push is not None, f"{client.name}: roster push {what}", "no push"):
        return None
    report.check(
        push.xml.get("from") in (None, client.bare),
        f"{client.name}: the push comes from the account itself (no 'from', or its bare JID)",
        f"from={push.xml.get('from')!r}",
    )
    item = im.roster_items(push).get(jid)
    got = {key: item.get(key) for key in want} if item else None
    report.check(
        got == want,
        f"{client.name}: pushed item {what}: {want}",
        f"pushed {im.short(push)}",
    )
    return {"ver": im.roster_ver(push), "item": item}


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob = args.accounts["bob"][0]
    a1 = a2 = None
    try:
        a1 = await im.open_session(report, args, "alice/1", alice_jid, alice_pw, roster=False)
        if a1 is None:
            return
        offered = [t for features in a1.features_seen for t in features]
        versioning = report.check(
            ROSTERVER in offered,
            "roster versioning announced as a stream feature (RFC 6121 section 2.6.1)",
            f"features: {offered}",
        )

        kind, reply = await a1.roster_get(ver="")
        items = im.roster_items(reply)
        report.check(
            kind == "result"
            and reply.xml.find(f"{{{im.ROSTER_NS}}}query") is not None
            and not items,
            "alice/1: roster get answered with an empty roster",
            f"{kind}: {im.short(reply)}",
        )
        ver0 = im.roster_ver(reply)
        if versioning:
            report.check(
                ver0 is not None,
                "alice/1: the roster result carries a version (section 2.6.3)",
                im.short(reply),
            )

        a2 = await im.open_session(report, args, "alice/2", alice_jid, alice_pw)
        if a2 is None:
            return

        # Add (section 2.3).
        marks = (a1.mark(), a2.mark())
        kind, reply = await a1.roster_set(bob, name="Bob Builder ✓", groups=["Friends", "Work"])
        report.check(
            kind == "result",
            "alice/1: roster set adding bob accepted",
            f"{kind}: {im.short(reply)}",
        )
        want = {
            "name": "Bob Builder ✓",
            "groups": ["Friends", "Work"],
            "subscription": "none",
            "ask": None,
        }
        pushed = [
            await expect_push(report, c, m, bob, "for the added contact", want)
            for c, m in zip((a1, a2), marks)
        ]
        ver_added = pushed[0]["ver"] if pushed[0] else None
        if versioning:
            report.check(
                ver_added is not None and ver_added != ver0,
                "alice/1: the push carries a new roster version (section 2.6.3)",
                f"before {ver0!r}, pushed {ver_added!r}",
            )
            report.check(
                pushed[1] is not None and pushed[1]["ver"] == ver_added,
                "alice/2: same version in the push to the other resource",
                f"{pushed[1]['ver'] if pushed[1] else None!r} vs {ver_added!r}",
            )

        kind, reply = await a1.roster_get()
        item = im.roster_items(reply).get(bob)
        report.check(
            kind == "result"
            and item is not None
            and item["name"] == "Bob Builder ✓"
            and item["groups"] == ["Friends", "Work"]
            and item["subscription"] == "none"
            and item["ask"] is None,
            "alice/1: roster get returns bob with the name and groups set",
            f"{kind}: {im.short(reply)}",
        )

        # Update (section 2.4).
        marks = (a1.mark(), a2.mark())
        kind, reply = await a1.roster_set(bob, name="Robert", groups=["Work"])
        report.check(
            kind == "result",
            "alice/1: roster set updating bob accepted",
            f"{kind}: {im.short(reply)}",
        )
        want = {"name": "Robert", "groups": ["Work"], "subscription": "none"}
        pushed = [
            await expect_push(report, c, m, bob, "for the update", want)
            for c, m in zip((a1, a2), marks)
        ]
        ver_updated = pushed[0]["ver"] if pushed[0] else None

        if versioning and ver_updated is not None:
            report.check(
                ver_updated != ver_added,
                "alice/1: the update changed the roster version",
                f"{ver_added!r} then {ver_updated!r}",
            )
            # Section 2.6.3: the client's version is current, so the result
            # is empty and later changes come as pushes.
            kind, reply = await a1.roster_get(ver=ver_updated)
            report.check(
                kind == "result" and len(reply.xml) == 0,
                "alice/1: roster get with the current version answered with an empty result",
                f"{kind}: {im.short(reply)}",
            )
            # An older version: the whole roster, or an empty result followed
            # by the pushes that bring the copy up to date.
            if ver_added is not None:
                mark = a1.mark()
                kind, reply = await a1.roster_get(ver=ver_added)
                if kind == "result" and len(reply.xml) > 0:
                    item = im.roster_items(reply).get(bob)
                    report.check(
                        item is not None
                        and item["name"] == "Robert"
                        and im.roster_ver(reply) == ver_updated,
                        "alice/1: roster get with an older version answered with the whole "
                        "current roster and version",
                        im.short(reply),
                    )
                else:
                    push = await a1.expect(im.is_roster_push(bob), since=mark)
                    item = im.roster_items(push).get(bob) if push is not None else None
                    report.check(
                        kind == "result" and item is not None and item["name"] == "Robert",
                        "alice/1: roster get with an older version answered with an empty "
                        "result and a push of the changed item",
                        f"{kind}: {im.short(reply)}; push: {im.short(push)}",
                    )

        # Malformed roster sets (section 2.3.3), none of which may change
        # the roster.
        query = ET.Element(f"{{{im.ROSTER_NS}}}query")
        for jid in (bob, "someone@" + a1.boundjid.domain):
            ET.SubElement(query, f"{{{im.ROSTER_NS}}}item", {"jid": jid})
        kind, reply = await a1.query(a1.raw_iq("set", query))
        report.check(
            kind == "error" and im.error_condition(reply) == "bad-request",
            "alice/1: a roster set with two items is refused with bad-request",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await a1.roster_set(bob, name="Robert", groups=["Work", "Work"])
        report.check(
            kind == "error" and im.error_condition(reply) == "bad-request",
            "alice/1: a roster set with the same group twice is refused with bad-request",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await a1.roster_set(bob, name="Robert", groups=[""])
        report.check(
            kind == "error" and im.error_condition(reply) == "not-acceptable",
            "alice/1: a roster set with an empty group name is refused with not-acceptable",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await a1.roster_set(bob, name="Robert", subscription="both")
        _, roster = await a1.roster_get()
        item = im.roster_items(roster).get(bob)
        report.check(
            kind == "result" and item is not None and item["subscription"] == "none",
            "alice/1: subscription='both' in a roster set is ignored (section 2.1.2.5)",
            f"set: {kind}: {im.short(reply)}; roster: {im.short(roster)}",
        )

        # Remove (section 2.5).
        marks = (a1.mark(), a2.mark())
        kind, reply = await a1.roster_set(bob, subscription="remove")
        report.check(
            kind == "result",
            "alice/1: roster set removing bob accepted",
            f"{kind}: {im.short(reply)}",
        )
        for client, mark in zip((a1, a2), marks):
            await expect_push(
                report, client, mark, bob, "for the removal", {"subscription": "remove"}
            )
        kind, reply = await a1.roster_get()
        report.check(
            kind == "result" and bob not in im.roster_items(reply),
            "alice/1: roster get no longer lists bob",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await a1.roster_set(bob, subscription="remove")
        report.check(
            kind == "error" and im.error_condition(reply) == "item-not-found",
            "alice/1: removing a contact not in the roster gives item-not-found (section 2.5.3)",
            f"{kind}: {im.short(reply)}",
        )
    finally:
        await im.close_all((a1, a2))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "roster")


if __name__ == "__main__":
    sys.exit(main())
