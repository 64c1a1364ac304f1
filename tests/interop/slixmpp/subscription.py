#!/usr/bin/env python3
"""Presence subscriptions (RFC 6121 section 3), roster states at each step.

alice and bob are online, each with the roster fetched:

1. alice subscribes to bob (3.1.2): her roster shows bob as 'none' with
   ask='subscribe'; bob gets the request from her bare JID (3.1.3) and has
   no subscription from her yet.
2. bob approves (3.1.5): his roster shows 'from', hers 'to'; she gets
   'subscribed' from his bare JID and then his current presence.
3. bob subscribes back and alice approves: both rosters show 'both' and
   each has the other's presence.
4. Presence flows both ways: a change of show and status reaches the
   other side (4.4.2).
5. alice unsubscribes (3.3): her roster 'from', his 'to'; bob gets
   'unsubscribe'; alice gets unavailable presence from bob (3.3.3).
6. alice cancels bob's subscription (3.2): both rosters 'none'; bob gets
   'unsubscribed' and alice's unavailable presence (3.2.2); a later change
   of alice's presence no longer reaches bob.

Then with carol:

7. Pre-approval (3.4), announced as a stream feature: bob approves carol
   before she asks (his roster: 'none', approved='true'); when she
   subscribes, the server approves at once, bob sees no request, carol's
   roster shows 'to' and she gets bob's presence.
8. A request to an offline account waits (3.1.3): carol subscribes to
   alice while alice is offline; alice gets it when she next sends
   presence, refuses it, and carol's roster goes back to 'none'.

Example:
  subscription.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --account carol@localhost pw3
"""

from __future__ import annotations

import sys

import im
import scenario

ROLES = ["alice", "bob", "carol"]
PREAPPROVAL = "{urn:xmpp:features:pre-approval}sub"


async def roster_item(client: im.ImClient, jid: str) -> tuple[bool, dict | None, str]:
    kind, reply = await client.roster_get()
    return kind == "result", im.roster_items(reply).get(jid), f"{kind}: {im.short(reply)}"


async def check_state(
    report: scenario.Report,
    client: im.ImClient,
    since: int,
    contact: im.ImClient | str,
    subscription: str,
    ask: str | None,
    step: str,
) -> None:
    """A roster push about `contact` with that state, and the same in a roster get."""
    jid = contact if isinstance(contact, str) else contact.bare
    want = im.describe_item({"subscription": subscription, "ask": ask})
    push = await client.expect(
        lambda st: im.is_roster_push(jid)(st)
        and (im.roster_items(st)[jid]["subscription"], im.roster_items(st)[jid]["ask"])
        == (subscription, ask),
        since=since,
    )
    pushes = client.received(im.is_roster_push(jid), since)
    report.check(
        push is not None,
        f"{step}: {client.name} got a roster push for {jid}: {want}",
        f"pushes seen: {[im.describe_item(im.roster_items(p).get(jid)) for p in pushes]}",
    )
    ok, item, detail = await roster_item(client, jid)
    got = im.describe_item(item) if item else "no item"
    report.check(
        ok and item is not None and (item["subscription"], item["ask"]) == (subscription, ask),
        f"{step}: {client.name}'s roster lists {jid} as {want}",
        f"got {got}; {detail}",
    )


async def run(args, report: scenario.Report) -> None:
    alice = bob = carol = None
    try:
        alice = await im.open_session(report, args, "alice", *args.accounts["alice"])
        bob = await im.open_session(report, args, "bob", *args.accounts["bob"], show="chat")
        if alice is None or bob is None:
            return

        # 1. alice asks (3.1.2, 3.1.3).
        step = "1 subscribe"
        ma, mb = alice.mark(), bob.mark()
        alice.subscription(bob.bare, "subscribe")
        await check_state(report, alice, ma, bob, "none", "subscribe", step)
        request = await bob.expect(im.is_presence("subscribe", alice.bare), since=mb)
        if report.check(
            request is not None, f"{step}: bob got alice's subscription request", "none arrived"
        ):
            report.check(
                request.xml.get("from") == alice.bare,
                f"{step}: the request is from alice's bare JID (3.1.2)",
                f"from={request.xml.get('from')!r}",
            )
        ok, item, detail = await roster_item(bob, alice.bare)
        report.check(
            ok and (item is None or (item["subscription"] == "none" and item["ask"] is None)),
            f"{step}: bob's roster shows no subscription with alice yet",
            f"got {im.describe_item(item)}; {detail}",
        )

        # 2. bob approves (3.1.5).
        step = "2 subscribed"
        ma, mb = alice.mark(), bob.mark()
        bob.subscription(alice.bare, "subscribed")
        await check_state(report, bob, mb, alice, "from", None, step)
        await check_state(report, alice, ma, bob, "to", None, step)
        approval = await alice.expect(im.is_presence("subscribed", bob.bare), since=ma)
        report.check(
            approval is not None and approval.xml.get("from") == bob.bare,
            f"{step}: alice got 'subscribed' from bob's bare JID",
            im.short(approval),
        )
        presence = await alice.expect(im.is_presence("available", bob.full), since=ma)
        report.check(
            presence is not None and presence["show"] == "chat",
            f"{step}: alice got bob's current presence (show=chat) after the approval",
            im.short(presence),
        )

        # 3. The other way round: mutual.
        step = "3 mutual"
        ma, mb = alice.mark(), bob.mark()
        bob.subscription(alice.bare, "subscribe")
        await check_state(report, bob, mb, alice, "from", "subscribe", step)
        request = await alice.expect(im.is_presence("subscribe", bob.bare), since=ma)
        report.check(
            request is not None, f"{step}: alice got bob's subscription request", "none arrived"
        )
        ma, mb = alice.mark(), bob.mark()
        alice.subscription(bob.bare, "subscribed")
        await check_state(report, alice, ma, bob, "both", None, step)
        await check_state(report, bob, mb, alice, "both", None, step)
        presence = await bob.expect(im.is_presence("available", alice.full), since=mb)
        report.check(
            presence is not None, f"{step}: bob got alice's current presence", "none arrived"
        )

        # 4. Presence both ways (4.4.2).
        step = "4 presence"
        mb = bob.mark()
        alice.send_presence(pshow="away", pstatus="at lunch ☕")
        got = await bob.expect(
            lambda st: im.is_presence("available", alice.full)(st) and st["show"] == "away",
            since=mb,
        )
        report.check(
            got is not None and got["status"] == "at lunch ☕",
            f"{step}: bob sees alice's change to away 'at lunch ☕'",
            im.short(got),
        )
        ma = alice.mark()
        bob.send_presence(pshow="dnd", pstatus="in a meeting")
        got = await alice.expect(
            lambda st: im.is_presence("available", bob.full)(st) and st["show"] == "dnd", since=ma
        )
        report.check(
            got is not None and got["status"] == "in a meeting",
            f"{step}: alice sees bob's change to dnd 'in a meeting'",
            im.short(got),
        )

        # 5. alice unsubscribes from bob's presence (3.3).
        step = "5 unsubscribe"
        ma, mb = alice.mark(), bob.mark()
        alice.subscription(bob.bare, "unsubscribe")
        await check_state(report, alice, ma, bob, "from", None, step)
        await check_state(report, bob, mb, alice, "to", None, step)
        got = await bob.expect(im.is_presence("unsubscribe", alice.bare), since=mb)
        report.check(got is not None, f"{step}: bob got alice's 'unsubscribe'", "none arrived")
        got = await alice.expect(im.is_presence("unavailable", bob.full), since=ma)
        report.check(
            got is not None,
            f"{step}: alice got unavailable presence from bob's resource (3.3.3)",
            "none arrived",
        )

        # 6. alice cancels bob's subscription to her (3.2).
        step = "6 unsubscribed"
        ma, mb = alice.mark(), bob.mark()
        alice.subscription(bob.bare, "unsubscribed")
        await check_state(report, alice, ma, bob, "none", None, step)
        await check_state(report, bob, mb, alice, "none", None, step)
        got = await bob.expect(im.is_presence("unsubscribed", alice.bare), since=mb)
        report.check(got is not None, f"{step}: bob got alice's 'unsubscribed'", "none arrived")
        got = await bob.expect(im.is_presence("unavailable", alice.full), since=mb)
        report.check(
            got is not None,
            f"{step}: bob got unavailable presence from alice's resource (3.2.2)",
            "none arrived",
        )
        # No presence flows any more. alice's message, sent after her change
        # of presence on the same stream, is the barrier.
        mb = bob.mark()
        alice.send_presence(pshow="xa", pstatus="gone fishing")
        alice.send_message(mto=bob.bare, mbody="after the end of the subscriptions", mtype="chat")
        barrier = await bob.expect(im.is_message("after the end of the subscriptions"), since=mb)
        if report.check(barrier is not None, f"{step}: bob got alice's message", "none arrived"):
            leaked = bob.received(im.is_presence("available", alice.bare), mb)
            report.check(
                not leaked,
                f"{step}: alice's later presence no longer reaches bob",
                f"got {[im.short(p) for p in leaked]}",
            )

        # 7. Pre-approval (3.4).
        step = "7 pre-approval"
        offered = [t for features in bob.features_seen for t in features]
        report.check(
            PREAPPROVAL in offered,
            f"{step}: pre-approval announced as a stream feature (3.4.1)",
            f"features: {offered}",
        )
        carol_jid, carol_pw = args.accounts["carol"]
        mb = bob.mark()
        bob.subscription(carol_jid, "subscribed")
        push = await bob.expect(im.is_roster_push(carol_jid), since=mb)
        item = im.roster_items(push).get(carol_jid) if push is not None else None
        report.check(
            item is not None and item["subscription"] == "none" and item["approved"] == "true",
            f"{step}: bob's roster push shows carol pre-approved (subscription none, approved='true')",
            im.short(push),
        )
        carol = await im.open_session(report, args, "carol", carol_jid, carol_pw)
        if carol is None:
            return
        mb, mc = bob.mark(), carol.mark()
        carol.subscription(bob.bare, "subscribe")
        await check_state(report, carol, mc, bob, "to", None, step)
        await check_state(report, bob, mb, carol, "from", None, step)
        got = await carol.expect(im.is_presence("subscribed", bob.bare), since=mc)
        report.check(got is not None, f"{step}: carol got 'subscribed' from bob", "none arrived")
        got = await carol.expect(im.is_presence("available", bob.full), since=mc)
        report.check(got is not None, f"{step}: carol got bob's presence", "none arrived")
        ok, item, detail = await roster_item(bob, carol.bare)
        report.check(
            ok and item is not None and item["approved"] is None,
            f"{step}: the pre-approval is used up (no approved flag left)",
            f"got {im.describe_item(item)}; {detail}",
        )
        # The request was approved by the server: bob's session never saw it.
        # bob's roster get above came after the approval, so it is the barrier.
        leaked = bob.received(im.is_presence("subscribe", carol.bare), mb)
        report.check(
            not leaked,
            f"{step}: the pre-approved request was not delivered to bob",
            f"got {[im.short(p) for p in leaked]}",
        )

        # 8. A request waits for its contact (3.1.3).
        step = "8 stored request"
        alice_jid, alice_pw = args.accounts["alice"]
        await alice.close()
        mc = carol.mark()
        carol.subscription(alice_jid, "subscribe")
        await check_state(report, carol, mc, alice_jid, "none", "subscribe", step)
        alice = await im.open_session(report, args, "alice (again)", alice_jid, alice_pw)
        if alice is None:
            return
        request = await alice.expect(im.is_presence("subscribe", carol.bare))
        report.check(
            request is not None,
            f"{step}: alice got carol's request, sent while she was offline, after her presence",
            "none arrived",
        )
        mc = carol.mark()
        alice.subscription(carol.bare, "unsubscribed")
        await check_state(report, carol, mc, alice_jid, "none", None, step)
        got = await carol.expect(im.is_presence("unsubscribed", alice.bare), since=mc)
        report.check(got is not None, f"{step}: carol got alice's refusal", "none arrived")
    finally:
        await im.close_all((alice, bob, carol))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "subscription")


if __name__ == "__main__":
    sys.exit(main())
