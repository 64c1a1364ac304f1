#!/usr/bin/env python3
"""Service discovery (XEP-0030) and the server's entity capabilities (XEP-0115).

- disco#info to the server (slixmpp's xep_0030): identity server/im and a
  feature for each protocol the server implements.
- disco#items to the server: a result.
- disco#info to the user's own bare JID: answered by the server for the
  account (identity account/registered).
- XEP-0115 section 6.3: the stream features carry <c/> with hash, node and
  ver; ver is the SHA-1 verification string (section 5.1) of what
  disco#info returns, and disco#info at node#ver gives the same answer.
- disco#info to an account that does not exist: service-unavailable
  (RFC 6121 section 8.5.1).

Example:
  disco.py --port 5222 --ca-file localhost.crt --account alice@localhost pw1
"""

from __future__ import annotations

import base64
import hashlib
import sys

from slixmpp.exceptions import IqError, IqTimeout

import im
import scenario

ROLES = ["alice"]
CAPS_NS = "http://jabber.org/protocol/caps"
DATA = "jabber:x:data"
DISCO_INFO = "http://jabber.org/protocol/disco#info"

# What the server must announce: (feature, what it stands for).
FEATURES = [
    (DISCO_INFO, "XEP-0030 info"),
    ("http://jabber.org/protocol/disco#items", "XEP-0030 items"),
    ("urn:xmpp:ping", "XEP-0199 ping"),
    ("jabber:iq:version", "XEP-0092 software version"),
    ("urn:xmpp:time", "XEP-0202 entity time"),
    ("jabber:iq:last", "XEP-0012 last activity"),
    ("vcard-temp", "XEP-0054 vcard-temp"),
    ("urn:xmpp:blocking", "XEP-0191 blocking"),
    ("urn:xmpp:carbons:2", "XEP-0280 carbons"),
    ("msgoffline", "XEP-0160 offline messages"),
]


async def info(client: im.ImClient, jid: str, node: str | None = None) -> tuple[str, object]:
    try:
        return "result", await client.plugin["xep_0030"].get_info(
            jid=jid, node=node, timeout=scenario.STEP_TIMEOUT
        )
    except IqError as err:
        return "error", err.iq
    except IqTimeout:
        return "timeout", None


def identities(reply) -> list[tuple[str, str, str, str]]:
    query = reply.xml.find(f"{{{DISCO_INFO}}}query")
    if query is None:
        return []
    return [
        (
            i.get("category", ""),
            i.get("type", ""),
            i.get("{http://www.w3.org/XML/1998/namespace}lang", ""),
            i.get("name", ""),
        )
        for i in query.findall(f"{{{DISCO_INFO}}}identity")
    ]


def features(reply) -> list[str]:
    query = reply.xml.find(f"{{{DISCO_INFO}}}query")
    if query is None:
        return []
    return [f.get("var", "") for f in query.findall(f"{{{DISCO_INFO}}}feature")]


def extended_forms(reply) -> str:
    """XEP-0115 section 5.1 steps 6-7: the extended forms (XEP-0128), sorted by FORM_TYPE;
    for each, the FORM_TYPE, then the other fields sorted by var, each var followed by its
    sorted values, every item ending with '<'."""
    query = reply.xml.find(f"{{{DISCO_INFO}}}query")
    if query is None:
        return ""
    forms = []
    for x in query.findall(f"{{{DATA}}}x"):
        fields = {}
        for field in x.findall(f"{{{DATA}}}field"):
            values = sorted(v.text or "" for v in field.findall(f"{{{DATA}}}value"))
            fields[field.get("var", "")] = values
        form_type = "".join(fields.pop("FORM_TYPE", []))
        text = form_type + "<"
        for var in sorted(fields):
            text += var + "<" + "".join(v + "<" for v in fields[var])
        forms.append((form_type, text))
    return "".join(text for _, text in sorted(forms))


def verification_string(reply) -> str:
    """XEP-0115 section 5.1 with SHA-1."""
    text = "".join("/".join(i) + "<" for i in sorted(identities(reply)))
    text += "".join(f + "<" for f in sorted(features(reply)))
    text += extended_forms(reply)
    return base64.b64encode(hashlib.sha1(text.encode("utf-8")).digest()).decode("ascii")


async def run(args, report: scenario.Report) -> None:
    alice = None
    try:
        alice = await im.open_session(
            report, args, "alice", *args.accounts["alice"], plugins=["xep_0030"]
        )
        if alice is None:
            return
        domain = alice.boundjid.domain

        kind, reply = await info(alice, domain)
        if not report.check(
            kind == "result", "disco#info to the server answered", f"{kind}: {im.short(reply)}"
        ):
            return
        ids = identities(reply)
        report.check(
            any(i[:2] == ("server", "im") for i in ids),
            "the server's identity is server/im",
            f"identities: {ids}",
        )
        offered = features(reply)
        for feature, what in FEATURES:
            report.check(
                feature in offered,
                f"the server announces {feature} ({what})",
                f"features: {offered}",
            )
        report.check(
            len(offered) == len(set(offered)),
            "no feature is announced twice (XEP-0030 section 3.1)",
            f"features: {offered}",
        )

        try:
            items = await alice.plugin["xep_0030"].get_items(
                jid=domain, timeout=scenario.STEP_TIMEOUT
            )
            report.check(
                True,
                f"disco#items to the server answered ({len(items['disco_items']['items'])} items)",
            )
        except (IqError, IqTimeout) as err:
            report.check(False, "disco#items to the server answered", repr(err))

        kind, own = await info(alice, alice.bare)
        report.check(
            kind == "result" and ("account", "registered") in [i[:2] for i in identities(own)],
            "disco#info to alice's own bare JID answered by the server: identity account/registered",
            f"{kind}: {im.short(own)}",
        )

        kind, missing = await info(alice, f"nobody-here@{domain}")
        # RFC 6121 section 8.5.1: an IQ to an account that does not exist
        # gets service-unavailable.
        report.check(
            kind == "error" and im.error_condition(missing) == "service-unavailable",
            "disco#info to an account that does not exist gets service-unavailable (RFC 6121 8.5.1)",
            f"{kind}: {im.short(missing)}",
        )

        # Entity capabilities of the server (XEP-0115 section 6.3).
        caps = [
            child
            for feats in alice.features_xml
            for child in feats
            if child.tag == f"{{{CAPS_NS}}}c"
        ]
        if not report.check(
            bool(caps),
            "the stream features carry the server's entity capabilities (XEP-0115 section 6.3)",
            f"features: {alice.features_seen}",
        ):
            return
        c = caps[-1]
        node, ver, algo = c.get("node"), c.get("ver"), c.get("hash")
        report.check(
            bool(node) and bool(ver) and algo == "sha-1",
            f"caps has node, ver and hash='sha-1' (node={node!r})",
            f"attributes: {dict(c.attrib)}",
        )
        expected = verification_string(reply)
        report.check(
            ver == expected,
            "caps ver is the verification string of the server's disco#info (XEP-0115 section 5.1)",
            f"ver={ver!r}, computed {expected!r}",
        )
        if node and ver:
            kind, at_node = await info(alice, domain, node=f"{node}#{ver}")
            report.check(
                kind == "result"
                and sorted(features(at_node)) == sorted(offered)
                and sorted(identities(at_node)) == sorted(ids),
                "disco#info at node#ver gives the same identities and features (XEP-0115 section 6.2)",
                f"{kind}: {im.short(at_node)}",
            )
    finally:
        await im.close_all((alice,))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "disco")


if __name__ == "__main__":
    sys.exit(main())
