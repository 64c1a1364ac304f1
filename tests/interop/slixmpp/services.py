#!/usr/bin/env python3
"""Server services: ping, software version, entity time, last activity,
private XML storage, each with slixmpp's own plugin.

- Ping (XEP-0199, xep_0199): the server answers; a ping to bob's full JID
  reaches his client and comes back; one to a resource he does not have
  gets service-unavailable (RFC 6121 8.5.3.2.1).
- Software version (XEP-0092, xep_0092): the server gives a name and a
  version; a query to bob's full JID is answered by his client.
- Entity time (XEP-0202, xep_0202): the server's UTC time agrees with this
  machine's clock (they are the same machine) and its offset is valid.
- Last activity (XEP-0012, xep_0012): the server gives its uptime; alice
  gets 0 seconds for her own bare JID; not subscribed to bob, she is
  refused (forbidden) for his; once subscribed she gets 0 seconds while he
  is online, and after he logs out the seconds since (with his last
  unavailable status, if the server gives one).
- Private XML storage (XEP-0049, xep_0049 with xep_0048 bookmarks): alice
  stores bookmarks and gets them back, also from a new session; a
  namespace never stored gives a result without data; bob cannot read
  hers (forbidden or service-unavailable); a set without a child element
  is refused with not-acceptable.

Example:
  services.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import xml.etree.ElementTree as ET

from slixmpp.exceptions import IqError, IqTimeout

import im
import scenario

ROLES = ["alice", "bob"]
PLUGINS = ["xep_0199", "xep_0092", "xep_0202", "xep_0012", "xep_0049", "xep_0048"]
PRIVATE_NS = "jabber:iq:private"
BOOKMARKS_NS = "storage:bookmarks"
CLOCK_TOLERANCE = dt.timedelta(minutes=2)


async def call(awaitable) -> tuple[str, object]:
    """('result', reply), ('error', reply) or ('timeout', None) for a slixmpp call."""
    try:
        return "result", await awaitable
    except IqError as err:
        return "error", err.iq
    except IqTimeout:
        return "timeout", None


def last_seconds(reply) -> int | None:
    query = reply.xml.find("{jabber:iq:last}query") if reply is not None else None
    if query is None or not (query.get("seconds") or "").isdigit():
        return None
    return int(query.get("seconds"))


def last_status(reply) -> str:
    query = reply.xml.find("{jabber:iq:last}query") if reply is not None else None
    return "" if query is None else (query.text or "").strip()


def conferences(reply) -> list[tuple[str | None, str | None, str | None, str | None]]:
    storage = (
        reply.xml.find(f"{{{PRIVATE_NS}}}query/{{{BOOKMARKS_NS}}}storage")
        if reply is not None
        else None
    )
    if storage is None:
        return []
    out = []
    for conf in storage.findall(f"{{{BOOKMARKS_NS}}}conference"):
        nick = conf.find(f"{{{BOOKMARKS_NS}}}nick")
        out.append(
            (
                conf.get("jid"),
                conf.get("name"),
                conf.get("autojoin"),
                None if nick is None else nick.text,
            )
        )
    return out


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    alice = bob = alice2 = None
    try:
        alice = await im.open_session(report, args, "alice", alice_jid, alice_pw, plugins=PLUGINS)
        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw, plugins=PLUGINS)
        if alice is None or bob is None:
            return
        domain = alice.boundjid.domain
        timeout = scenario.STEP_TIMEOUT

        # Ping.
        kind, reply = await call(alice.plugin["xep_0199"].send_ping(domain, timeout=timeout))
        report.check(
            kind == "result", "ping: the server answers (XEP-0199)", f"{kind}: {im.short(reply)}"
        )
        kind, reply = await call(alice.plugin["xep_0199"].send_ping(bob.full, timeout=timeout))
        report.check(
            kind == "result" and reply.xml.get("from") == bob.full,
            "ping: bob's client answers a ping to its full JID",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await call(
            alice.plugin["xep_0199"].send_ping(f"{bob.bare}/no-such-resource", timeout=timeout)
        )
        report.check(
            kind == "error" and im.error_condition(reply) == "service-unavailable",
            "ping: a resource bob does not have gets service-unavailable (RFC 6121 8.5.3.2.1)",
            f"{kind}: {im.short(reply)}",
        )

        # Software version.
        kind, reply = await call(alice.plugin["xep_0092"].get_version(domain, timeout=timeout))
        name = reply["software_version"]["name"] if kind == "result" else None
        version = reply["software_version"]["version"] if kind == "result" else None
        report.check(
            kind == "result" and bool(name) and bool(version),
            f"version: the server says {name} {version} (XEP-0092)",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await call(alice.plugin["xep_0092"].get_version(bob.full, timeout=timeout))
        report.check(
            kind == "result"
            and reply.xml.get("from") == bob.full
            and bool(reply["software_version"]["name"]),
            "version: bob's client answers a query to its full JID",
            f"{kind}: {im.short(reply)}",
        )

        # Entity time.
        kind, reply = await call(alice.plugin["xep_0202"].get_entity_time(domain, timeout=timeout))
        if report.check(
            kind == "result", "time: the server answers (XEP-0202)", f"{kind}: {im.short(reply)}"
        ):
            time_el = reply.xml.find("{urn:xmpp:time}time")
            utc_text = time_el.findtext("{urn:xmpp:time}utc") if time_el is not None else None
            tzo_text = time_el.findtext("{urn:xmpp:time}tzo") if time_el is not None else None
            try:
                utc = dt.datetime.fromisoformat((utc_text or "").replace("Z", "+00:00"))
            except ValueError:
                utc = None
            now = dt.datetime.now(dt.timezone.utc)
            report.check(
                utc is not None
                and (utc_text or "").endswith("Z")
                and utc.utcoffset() == dt.timedelta(0)
                and abs(utc - now) <= CLOCK_TOLERANCE,
                "time: <utc/> is a UTC time ending in Z that agrees with this machine's clock",
                f"utc={utc_text!r}, local clock {now:%Y-%m-%dT%H:%M:%SZ}",
            )
            report.check(
                tzo_text is not None and re.fullmatch(r"Z|[+-]\d\d:\d\d", tzo_text) is not None,
                f"time: <tzo/> is an offset ({tzo_text})",
                f"tzo={tzo_text!r}",
            )

        # Last activity.
        kind, reply = await call(
            alice.plugin["xep_0012"].get_last_activity(domain, timeout=timeout)
        )
        report.check(
            kind == "result" and last_seconds(reply) is not None,
            f"last: the server gives its uptime ({last_seconds(reply)} s)",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await call(
            alice.plugin["xep_0012"].get_last_activity(bob.bare, timeout=timeout)
        )
        report.check(
            kind == "error" and im.error_condition(reply) == "forbidden",
            "last: alice, not subscribed to bob, is refused with forbidden",
            f"{kind}: {im.short(reply)}",
        )
        kind, reply = await call(
            alice.plugin["xep_0012"].get_last_activity(alice.bare, timeout=timeout)
        )
        report.check(
            kind == "result" and last_seconds(reply) == 0,
            "last: alice asking about her own bare JID while online gets 0 seconds",
            f"{kind}: {im.short(reply)}",
        )
        if await im.befriend(report, alice, bob):
            # "Offline User Query": the answer is for whoever may see the
            # account's presence, here a subscriber.
            kind, reply = await call(
                alice.plugin["xep_0012"].get_last_activity(bob.bare, timeout=timeout)
            )
            report.check(
                kind == "result" and last_seconds(reply) == 0,
                "last: alice, now subscribed to bob, gets 0 seconds for his bare JID while he is online",
                f"{kind}: {im.short(reply)}",
            )
            bob.send_presence(ptype="unavailable", pstatus="Heading home")
            await bob.close()
            kind, reply = await call(
                alice.plugin["xep_0012"].get_last_activity(bob.bare, timeout=timeout)
            )
            report.check(
                kind == "result" and last_seconds(reply) is not None,
                "last: alice, subscribed, gets the seconds since bob logged out",
                f"{kind}: {im.short(reply)}",
            )
            if kind == "result":
                # The status is optional (MAY); when given it is the last one.
                report.check(
                    last_status(reply) in ("", "Heading home"),
                    "last: the status, if any, is bob's last unavailable status",
                    f"{kind}: {im.short(reply)}",
                )

        # Private XML storage, with bookmarks as the payload.
        bookmarks = alice.plugin["xep_0048"]
        stanza = alice.plugin["xep_0048"].stanza.Bookmarks()
        stanza.add_conference(
            "room@conference.example.org", "Alice ✓", name="Tea <party>", autojoin=True
        )
        kind, reply = await call(
            bookmarks.set_bookmarks(stanza, method="xep_0049", timeout=timeout)
        )
        report.check(
            kind == "result",
            "private: alice stored her bookmarks (XEP-0049)",
            f"{kind}: {im.short(reply)}",
        )
        want = [("room@conference.example.org", "Tea <party>", "true", "Alice ✓")]
        kind, reply = await call(bookmarks.get_bookmarks(method="xep_0049", timeout=timeout))
        report.check(
            kind == "result" and conferences(reply) == want,
            "private: alice got them back",
            f"{kind}: {im.short(reply)}",
        )
        alice2 = await im.open_session(
            report, args, "alice/2", alice_jid, alice_pw, plugins=PLUGINS
        )
        if alice2 is not None:
            kind, reply = await call(
                alice2.plugin["xep_0048"].get_bookmarks(method="xep_0049", timeout=timeout)
            )
            report.check(
                kind == "result" and conferences(reply) == want,
                "private: a new session of alice gets the same bookmarks",
                f"{kind}: {im.short(reply)}",
            )
        query = ET.Element(f"{{{PRIVATE_NS}}}query")
        ET.SubElement(query, "{causerie:interop:never-stored}prefs")
        kind, reply = await alice.query(alice.raw_iq("get", query))
        stored = (
            reply.xml.find(f"{{{PRIVATE_NS}}}query/{{causerie:interop:never-stored}}prefs")
            if reply is not None
            else None
        )
        report.check(
            kind == "result" and (stored is None or len(stored) == 0),
            "private: a namespace never stored gives a result without data",
            f"{kind}: {im.short(reply)}",
        )
        if bob is not None and not bob.is_connected():
            bob = await im.open_session(
                report, args, "bob (again)", bob_jid, bob_pw, plugins=PLUGINS
            )
        if bob is not None:
            query = ET.Element(f"{{{PRIVATE_NS}}}query")
            ET.SubElement(query, f"{{{BOOKMARKS_NS}}}storage")
            kind, reply = await bob.query(bob.raw_iq("get", query, to=alice.bare))
            report.check(
                kind == "error"
                and im.error_condition(reply) in ("forbidden", "service-unavailable"),
                "private: bob cannot read alice's storage (forbidden or service-unavailable)",
                f"{kind}: {im.short(reply)}",
            )
            leaked = conferences(reply) if kind == "result" else []
            report.check(not leaked, "private: nothing of alice's was sent to bob", f"got {leaked}")
        kind, reply = await alice.query(alice.raw_iq("set", ET.Element(f"{{{PRIVATE_NS}}}query")))
        report.check(
            kind == "error" and im.error_condition(reply) == "not-acceptable",
            "private: a set without a child element is refused with not-acceptable",
            f"{kind}: {im.short(reply)}",
        )
    finally:
        await im.close_all((alice, bob, alice2))


def main() -> int:
    args = im.accounts(im.im_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "services")


if __name__ == "__main__":
    sys.exit(main())
