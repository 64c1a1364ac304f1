#!/usr/bin/env python3
"""vcard-temp (XEP-0054): set, get one's own, get another user's.

- alice publishes a vCard with slixmpp's xep_0054 (full name with
  non-ASCII text, nickname, e-mail address).
- alice gets her own vCard with an IQ-get without 'to' (section 3.1) and
  at her bare JID: the fields as she set them.
- bob gets alice's vCard at her bare JID (section 3.3): the same fields.
- bob asks for carol's, who never published one: an empty vCard or an
  error (item-not-found or service-unavailable), never someone else's data.
- bob tries to set alice's vCard: refused, and hers is unchanged (section
  3.2: only the owner publishes).
- alice publishes a new vCard without the e-mail address: bob sees the
  new one whole; the old address is gone (a publish replaces the vCard).

Example:
  vcard.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --account carol@localhost pw3
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError, IqTimeout

import im
import scenario

ROLES = ["alice", "bob", "carol"]
VCARD_NS = "vcard-temp"


def fields(reply) -> dict[str, str] | None:
    """FN, NICKNAME and EMAIL/USERID of the vCard in an IQ, or None without one."""
    vcard = reply.xml.find(f"{{{VCARD_NS}}}vCard") if reply is not None else None
    if vcard is None:
        return None
    out: dict[str, str] = {}
    for path, key in (("FN", "FN"), ("NICKNAME", "NICKNAME"), ("EMAIL/USERID", "EMAIL")):
        elem = vcard.find("/".join(f"{{{VCARD_NS}}}{p}" for p in path.split("/")))
        if elem is not None and elem.text:
            out[key] = elem.text
    return out


async def get_vcard(client: im.ImClient, jid: str) -> tuple[str, object]:
    try:
        return "result", await client.plugin["xep_0054"].get_vcard(
            jid, timeout=scenario.STEP_TIMEOUT
        )
    except IqError as err:
        return "error", err.iq
    except IqTimeout:
        return "timeout", None


async def publish(client: im.ImClient, values: dict[str, str]) -> tuple[str, object]:
    plugin = client.plugin["xep_0054"]
    vcard = plugin.make_vcard()
    vcard["FN"] = values["FN"]
    vcard["NICKNAME"] = values["NICKNAME"]
    if "EMAIL" in values:
        vcard["EMAIL"]["USERID"] = values["EMAIL"]
        vcard["EMAIL"]["INTERNET"] = True
    try:
        await plugin.publish_vcard(vcard, timeout=scenario.STEP_TIMEOUT)
        return "result", None
    except IqError as err:
        return "error", err.iq
    except IqTimeout:
        return "timeout", None


async def run(args, report: scenario.Report) -> None:
    alice = bob = None
    carol_jid = args.accounts["carol"][0]
    first = {
        "FN": "Alice Liddell ✓ «Wonderland»",
        "NICKNAME": "alice & co",
        "EMAIL": "alice@example.org",
    }
    second = {"FN": "Alice L.", "NICKNAME": "al"}
    try:
        alice = await im.open_session(
            report, args, "alice", *args.accounts["alice"], plugins=["xep_0054"]
        )
        bob = await im.open_session(
            report, args, "bob", *args.accounts["bob"], plugins=["xep_0054"]
        )
        if alice is None or bob is None:
            return

        kind, reply = await publish(alice, first)
        report.check(kind == "result", "alice published her vCard", f"{kind}: {im.short(reply)}")

        iq = alice.raw_iq("get", ET.Element(f"{{{VCARD_NS}}}vCard"))
        kind, reply = await alice.query(iq)
        report.check(
            kind == "result" and fields(reply) == first,
            "alice got her own vCard with an IQ-get without 'to' (3.1)",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await get_vcard(alice, alice.bare)
        report.check(
            kind == "result" and fields(reply) == first,
            "alice got her own vCard at her bare JID",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await get_vcard(bob, alice.bare)
        report.check(
            kind == "result" and fields(reply) == first,
            "bob got alice's vCard at her bare JID (3.3)",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await get_vcard(bob, carol_jid)
        report.check(
            (kind == "result" and not fields(reply))
            or (
                kind == "error"
                and im.error_condition(reply) in ("item-not-found", "service-unavailable")
            ),
            "bob asking for carol's vCard, never published, gets an empty vCard or item-not-found",
            f"{kind}: {im.short(reply)}",
        )

        vcard = ET.Element(f"{{{VCARD_NS}}}vCard")
        ET.SubElement(vcard, f"{{{VCARD_NS}}}FN").text = "Mallory"
        kind, reply = await bob.query(bob.raw_iq("set", vcard, to=alice.bare))
        report.check(
            kind == "error",
            f"bob's attempt to set alice's vCard is refused ({im.error_condition(reply)})",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await get_vcard(bob, alice.bare)
        report.check(
            kind == "result" and fields(reply) == first,
            "alice's vCard is unchanged after bob's attempt",
            f"{kind}: {im.short(reply)}",
        )

        kind, reply = await publish(alice, second)
        report.check(kind == "result", "alice published a new vCard", f"{kind}: {im.short(reply)}")
        kind, reply = await get_vcard(bob, alice.bare)
        report.check(
            kind == "result" and fields(reply) == second,
            "bob gets the new vCard whole, without the old e-mail address",
            f"{kind}: {im.short(reply)}",
        )
    finally:
        await im.close_all((alice, bob))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "vcard")


if __name__ == "__main__":
    sys.exit(main())
