#!/usr/bin/env python3
"""Shared roster groups (docs/groups.md) seen by slixmpp clients.

Before this script runs, an administrator has put the first two accounts
('alice', 'bob') into the group --group, shown as --display-name, with
causeriectl against the running server; the third ('carol') is in no group.
None of them has sent or approved a subscription.

- alice and bob each fetch their roster without a version: the only item is
  the other, with subscription='both' and the display name as its group
  (RFC 6121 section 2.1.2.3). Then with slixmpp's own roster request, which
  carries ver='' when the server offers roster versioning (section 2.6):
  the answer has a version and slixmpp's roster shows the same item; asked
  again with that version, slixmpp's roster still shows it, and the version
  does not change.
- Presence flows without any subscription request: bob gets alice's
  initial presence, alice gets bob's (the answer to the server's probe,
  section 4.3.1), a change of status reaches the other; neither gets a
  subscription stanza.
- carol's roster has neither of them, and a status change of alice's
  reaches bob but not carol.
- With all three online, 'causeriectl group add' (the path and config given
  by --causeriectl and --causerie-config) adds carol: alice and bob get a
  roster push naming carol (both, the display name), carol gets one for
  each of them, and presence starts flowing between carol and the others.
  A roster request of alice's with her old version gets the whole roster,
  carol included, under a new version.
- 'causeriectl group remove-member' takes carol out again: alice and bob get
  a push with subscription='remove' for carol, carol one for each of them,
  and each side gets the other's unavailable presence; alice's roster is
  bob alone again, carol's empty of both.

Example:
  shared_groups.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --account carol@localhost pw3 --group staff --display-name Staff \\
      --causeriectl target/debug/causeriectl --causerie-config causerie.toml
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout

import im
import scenario

ROLES = ["alice", "bob", "carol"]


async def causeriectl(args, *words: str) -> tuple[int | None, str]:
    """Runs causeriectl with the server's config; its exit status (None when it
    did not finish within a step's time) and what it printed."""
    proc = await asyncio.create_subprocess_exec(
        args.causeriectl,
        "--config",
        args.causerie_config,
        *words,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), scenario.STEP_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return None, "no answer"
    return proc.returncode, out.decode("utf-8", "replace").strip()


def applied_now(output: str) -> bool:
    """The `--json` answer of a group command says the running server applied it."""
    try:
        done = json.loads(output)
    except ValueError:
        return False
    return isinstance(done, dict) and done.get("applied_now") is True


def shared_item(item: dict[str, Any] | None, label: str) -> bool:
    return item is not None and item["subscription"] == "both" and item["groups"] == [label]


def push_about(jid: str, check) -> im.Predicate:
    """A roster push whose item for `jid` passes `check`."""
    return lambda st: im.is_roster_push(jid)(st) and check(im.roster_items(st).get(jid))


def subscription_stanza(st: Any) -> bool:
    return im.tag(st) == "presence" and st.xml.get("type") in (
        "subscribe",
        "subscribed",
        "unsubscribe",
        "unsubscribed",
    )


def pushes_seen(client: im.ImClient, since: int) -> str:
    return f"pushes: {[im.short(st) for st in client.received(im.is_roster_push(), since)]}"


async def slixmpp_roster(client: im.ImClient) -> tuple[str, Any]:
    """slixmpp's own roster request (with ver when the server offers versioning)."""
    try:
        return "result", await client.get_roster(timeout=scenario.STEP_TIMEOUT)
    except IqError as err:
        return "error", err.iq
    except IqTimeout:
        return "timeout", None


def slixmpp_item(client: im.ImClient, jid: str) -> tuple[str, list[str]] | None:
    """What slixmpp's roster holds for `jid`: its subscription and sorted groups."""
    roster = client.client_roster
    if not roster.has_jid(jid):
        return None
    item = roster[jid]
    return item["subscription"], sorted(item["groups"])


async def member_roster(
    report: scenario.Report, client: im.ImClient, other: str, label: str
) -> str | None:
    """The roster checks of one member; returns the version the server gave."""
    kind, reply = await client.roster_get()
    items = im.roster_items(reply)
    report.check(
        kind == "result" and set(items) == {other} and shared_item(items.get(other), label),
        f"{client.name}: a fresh roster fetch has {other} alone, subscription 'both', "
        f"group '{label}'",
        f"{kind}: {im.short(reply)}",
    )

    versioning = "rosterver" in client.features
    kind, reply = await slixmpp_roster(client)
    ver = im.roster_ver(reply)
    wanted = ("both", [label])
    how = "with ver='', versioning offered" if versioning else "no versioning offered"
    report.check(
        kind == "result"
        and (ver is not None or not versioning)
        and slixmpp_item(client, other) == wanted,
        f"{client.name}: slixmpp's roster request ({how}) shows {other} with "
        f"subscription 'both', group '{label}'",
        f"{kind}: {im.short(reply)}; slixmpp's roster: {slixmpp_item(client, other)}",
    )
    if versioning and ver is not None:
        kind, again = await slixmpp_roster(client)
        report.check(
            kind == "result"
            and im.roster_ver(again) in (None, ver)
            and client.client_roster.version == ver
            and slixmpp_item(client, other) == wanted,
            f"{client.name}: asked again with version {ver}, slixmpp's roster still shows "
            f"{other} and the version is unchanged",
            f"{kind}: {im.short(again)}; slixmpp's roster: {slixmpp_item(client, other)}, "
            f"version {client.client_roster.version}",
        )
    return ver


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    carol_jid, carol_pw = args.accounts["carol"]
    label = args.display_name
    alice = bob = carol = None
    try:
        # -- the two members ---------------------------------------------------
        alice = await im.open_session(
            report, args, "alice", alice_jid, alice_pw, roster=False, presence=False
        )
        if alice is None:
            return
        alice_ver = await member_roster(report, alice, bob_jid, label)
        alice.send_presence()
        report.check(await alice.sync(), "alice: initial presence sent", "no answer to a ping")

        bob = await im.open_session(
            report, args, "bob", bob_jid, bob_pw, roster=False, presence=False
        )
        if bob is None:
            return
        await member_roster(report, bob, alice_jid, label)
        seen_alice = alice.mark()
        bob.send_presence()
        report.check(await bob.sync(), "bob: initial presence sent", "no answer to a ping")

        got = await alice.expect(im.is_presence("available", bob.full), since=seen_alice)
        report.check(
            got is not None,
            "alice gets bob's initial presence with no subscription",
            "none arrived",
        )
        got = await bob.expect(im.is_presence("available", alice.full))
        report.check(
            got is not None,
            "bob gets alice's presence (the answer to the server's probe) with no subscription",
            "none arrived",
        )
        seen_bob = bob.mark()
        alice.send_presence(pshow="away", pstatus="shared-group status")
        got = await bob.expect(
            lambda st: im.is_presence("available", alice.full)(st)
            and st["status"] == "shared-group status",
            since=seen_bob,
        )
        report.check(got is not None, "alice's change of status reaches bob", "none arrived")
        asked = alice.received(subscription_stanza) + bob.received(subscription_stanza)
        report.check(
            not asked,
            "neither alice nor bob got a subscription request or answer",
            "; ".join(im.short(st) for st in asked),
        )

        # -- an account in no group --------------------------------------------
        carol = await im.open_session(
            report, args, "carol", carol_jid, carol_pw, roster=False, presence=False
        )
        if carol is None:
            return
        kind, reply = await carol.roster_get()
        items = im.roster_items(reply)
        report.check(
            kind == "result" and alice_jid not in items and bob_jid not in items,
            "carol (in no group): her roster has neither alice nor bob",
            f"{kind}: {im.short(reply)}",
        )
        carol.send_presence()
        report.check(await carol.sync(), "carol: initial presence sent", "no answer to a ping")
        seen_bob = bob.mark()
        alice.send_presence(pstatus="members only")
        got = await bob.expect(
            lambda st: im.is_presence("available", alice.full)(st)
            and st["status"] == "members only",
            since=seen_bob,
        )
        await carol.sync()
        leaked = carol.received(im.is_presence("available", alice_jid)) + carol.received(
            im.is_presence("available", bob_jid)
        )
        report.check(
            got is not None and not leaked,
            "alice's status change reaches bob, and neither alice's nor bob's presence "
            "reaches carol",
            f"bob got {im.short(got)}; carol got {[im.short(st) for st in leaked]}",
        )

        async def change_carol(verb, item_matches, pushed):
            """`causeriectl group VERB` for carol, then the roster pushes it makes: to alice
            and bob about carol, to carol about each of them, the item as `item_matches`
            says (`pushed` tells how). The clients' marks from before, or None when the
            command failed."""
            marks = {c: c.mark() for c in (alice, bob, carol)}
            status, out = await causeriectl(args, "group", verb, args.group, carol_jid, "--json")
            if not report.check(
                status == 0 and applied_now(out),
                f"causeriectl group {verb} {args.group} {carol_jid}: exit 0, applied by the "
                "running server",
                f"exit {status}: {out}",
            ):
                return None
            for client, contact in (
                (alice, carol_jid),
                (bob, carol_jid),
                (carol, alice_jid),
                (carol, bob_jid),
            ):
                push = await client.expect(push_about(contact, item_matches), since=marks[client])
                report.check(
                    push is not None,
                    f"{client.name} gets a roster push {pushed} for {contact}",
                    pushes_seen(client, marks[client]),
                )
            return marks

        # -- carol added while all three are online ------------------------------
        is_shared = lambda item: shared_item(item, label)  # noqa: E731
        marks = await change_carol("add", is_shared, f"(both, group '{label}')")
        if marks is None:
            return
        got = await alice.expect(im.is_presence("available", carol.full), since=marks[alice])
        report.check(
            got is not None, "alice gets carol's presence once carol joined", "none arrived"
        )
        got = await asyncio.gather(
            carol.expect(im.is_presence("available", alice.full), since=marks[carol]),
            carol.expect(im.is_presence("available", bob.full), since=marks[carol]),
        )
        report.check(
            all(p is not None for p in got),
            "carol gets alice's and bob's presence once she joined",
            f"got {[im.short(p) for p in got]}",
        )
        report.check(
            slixmpp_item(alice, carol_jid) == ("both", [label]),
            "slixmpp's roster of alice took in the push for carol",
            str(slixmpp_item(alice, carol_jid)),
        )
        if alice_ver is not None:
            kind, reply = await alice.roster_get(ver=alice_ver)
            items = im.roster_items(reply)
            ver = im.roster_ver(reply)
            report.check(
                kind == "result"
                and shared_item(items.get(carol_jid), label)
                and shared_item(items.get(bob_jid), label)
                and ver is not None
                and ver != alice_ver,
                f"alice asking with her old version {alice_ver} gets the whole roster "
                "(bob and carol) under a new version",
                f"{kind}: {im.short(reply)}",
            )

        # -- carol taken out again ---------------------------------------------
        removed = lambda item: item is not None and item["subscription"] == "remove"  # noqa: E731
        marks = await change_carol("remove-member", removed, "with subscription='remove'")
        if marks is None:
            return
        # slixmpp drops the item on the push, but makes an empty one ('none', no
        # groups) again for any JID whose presence arrives: carol's unavailable
        # presence may already have.
        report.check(
            slixmpp_item(alice, carol_jid) in (None, ("none", [])),
            "slixmpp's roster of alice dropped carol's shared item on that push",
            str(slixmpp_item(alice, carol_jid)),
        )
        got = await asyncio.gather(
            alice.expect(im.is_presence("unavailable", carol.full), since=marks[alice]),
            carol.expect(im.is_presence("unavailable", alice.full), since=marks[carol]),
            carol.expect(im.is_presence("unavailable", bob.full), since=marks[carol]),
        )
        report.check(
            all(p is not None for p in got),
            "alice gets carol's unavailable presence, carol gets alice's and bob's",
            f"got {[im.short(p) for p in got]}",
        )
        kind, reply = await alice.roster_get()
        items = im.roster_items(reply)
        report.check(
            kind == "result" and set(items) == {bob_jid} and shared_item(items.get(bob_jid), label),
            "alice's roster is bob alone again",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await carol.roster_get()
        items = im.roster_items(reply)
        report.check(
            kind == "result" and alice_jid not in items and bob_jid not in items,
            "carol's roster has neither alice nor bob again",
            f"{kind}: {im.short(reply)}",
        )
        asked = [st for c in (alice, bob, carol) for st in c.received(subscription_stanza)]
        report.check(
            not asked,
            "no subscription stanza reached anyone during the whole scenario",
            "; ".join(im.short(st) for st in asked),
        )

        for client in (carol, bob, alice):
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM, f"{client.name} logged out", f"reason: {reason}"
            )
    finally:
        await im.close_all((alice, bob, carol))


def main() -> int:
    parser = im.im_parser(__doc__.splitlines()[0], ROLES)
    parser.add_argument("--group", required=True, help="the group's name in causeriectl")
    parser.add_argument("--display-name", required=True, help="the group's display name")
    parser.add_argument("--causeriectl", required=True, help="path of the causeriectl binary")
    parser.add_argument(
        "--causerie-config", required=True, help="the running server's config file"
    )
    args = im.accounts(parser, ROLES)
    return scenario.main(run, args, "shared groups")


if __name__ == "__main__":
    sys.exit(main())
