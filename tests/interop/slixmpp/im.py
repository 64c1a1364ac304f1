"""Shared pieces of the instant-messaging scenarios (RFC 6121 and the XEPs).

Built on ``scenario``: the same command line, certificate checks and report
lines. What this adds:

- ``ImClient``: a ``scenario.Client`` that records every message, presence,
  roster push and blocklist push it receives, in order, so that a scenario
  can wait for the next stanza matching a condition, or check afterwards
  that none arrived. slixmpp's automatic answers to subscription requests
  are switched off: every subscription step is the scenario's own.
- ``open_session``: log in, optionally fetch the roster and send initial
  presence, with the checks every scenario needs.
- Raw stanza helpers: IQs whose error replies are returned instead of
  raised, roster items read from the XML as the server sent it.
- ``befriend``: a mutual presence subscription (RFC 6121 section 3.1), for
  the scenarios that need one as a starting point.

A check that something did NOT arrive never sleeps: it waits until
something that the server must deliver after it (a later stanza from the
same sender, or a reply to an IQ that the same session sent afterwards)
has arrived, and then looks at what came before.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import scenario

CLIENT_NS = "jabber:client"
ROSTER_NS = "jabber:iq:roster"
BLOCKING_NS = "urn:xmpp:blocking"
PING_NS = "urn:xmpp:ping"
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
DELAY_NS = "urn:xmpp:delay"
CARBONS_NS = "urn:xmpp:carbons:2"
FORWARD_NS = "urn:xmpp:forward:0"

Predicate = Callable[[Any], bool]


def im_parser(description: str, roles: list[str]) -> argparse.ArgumentParser:
    """The common scenario options plus one ``--account JID PASSWORD`` per role."""
    parser = scenario.base_parser(description)
    parser.add_argument(
        "--account",
        nargs=2,
        action="append",
        metavar=("JID", "PASSWORD"),
        required=True,
        help=f"a bare JID and its password; give {len(roles)}, in this order: {', '.join(roles)}",
    )
    return parser


def accounts(parser: argparse.ArgumentParser, roles: list[str]) -> argparse.Namespace:
    args = parser.parse_args()
    if len(args.account) != len(roles):
        parser.error(f"give exactly {len(roles)} --account ({', '.join(roles)})")
    args.accounts = {role: (jid, pw) for role, (jid, pw) in zip(roles, args.account)}
    return args


def short(stanza: Any, limit: int = 600) -> str:
    """The XML of a stanza for a report line, cut to `limit` characters."""
    if stanza is None:
        return "nothing"
    text = str(stanza)
    return text if len(text) <= limit else text[:limit] + "…"


class ImClient(scenario.Client):
    """A client that keeps what it received, for the scenario to look at."""

    def __init__(
        self,
        jid: str,
        password: str,
        args: argparse.Namespace,
        name: str,
        plugins: Iterable[str] = (),
    ) -> None:
        super().__init__(jid, password, args)
        self.name = name
        for plugin in plugins:
            self.register_plugin(plugin)
        # Subscription requests are answered by the scenario, not by slixmpp
        # (None: neither approve nor refuse; no subscription back).
        self.auto_authorize = None
        self.auto_subscribe = False
        self.inbox: list[Any] = []
        self._arrived = asyncio.Event()
        for path in (
            f"{{{CLIENT_NS}}}message",
            f"{{{CLIENT_NS}}}presence",
            f"{{{CLIENT_NS}}}iq/{{{ROSTER_NS}}}query",
            f"{{{CLIENT_NS}}}iq/{{{BLOCKING_NS}}}block",
            f"{{{CLIENT_NS}}}iq/{{{BLOCKING_NS}}}unblock",
        ):
            # Recorded next to slixmpp's own handlers, which still answer
            # roster and blocklist pushes.
            self.register_handler(Callback(f"record {path}", MatchXPath(path), self._record))

    def _record(self, stanza: Any) -> None:
        self.inbox.append(stanza)
        self._arrived.set()

    @property
    def bare(self) -> str:
        return self.boundjid.bare

    @property
    def full(self) -> str:
        return self.boundjid.full

    def mark(self) -> int:
        """A position in the inbox: later waits look only at what came after it."""
        return len(self.inbox)

    def received(self, pred: Predicate, since: int = 0, until: int | None = None) -> list[Any]:
        return [st for st in self.inbox[since:until] if pred(st)]

    async def expect(
        self, pred: Predicate, since: int = 0, timeout: float = scenario.STEP_TIMEOUT
    ) -> Any:
        """The first stanza received at or after `since` matching `pred`, or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        index = since
        while True:
            while index < len(self.inbox):
                stanza = self.inbox[index]
                index += 1
                if pred(stanza):
                    return stanza
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:
                return None

    async def expect_index(
        self, pred: Predicate, since: int = 0, timeout: float = scenario.STEP_TIMEOUT
    ) -> int | None:
        """Like ``expect``, but the inbox position of the stanza."""
        found = await self.expect(pred, since, timeout)
        if found is None:
            return None
        return next(i for i in range(since, len(self.inbox)) if self.inbox[i] is found)

    # -- IQs --------------------------------------------------------------

    async def query(self, iq: Any, timeout: float = scenario.STEP_TIMEOUT) -> tuple[str, Any]:
        """Sends an IQ; ('result', reply), ('error', reply) or ('timeout', None)."""
        try:
            return "result", await iq.send(timeout=timeout)
        except IqError as err:
            return "error", err.iq
        except IqTimeout:
            return "timeout", None

    def raw_iq(self, itype: str, payload: ET.Element | None, to: str | None = None) -> Any:
        iq = self.Iq()
        iq["type"] = itype
        if to is not None:
            iq["to"] = to
        if payload is not None:
            iq.xml.append(payload)
        return iq

    async def sync(self) -> bool:
        """A ping to the server, answered once it has handled everything sent before."""
        kind, _ = await self.query(
            self.raw_iq("get", ET.Element(f"{{{PING_NS}}}ping"), to=self.boundjid.domain)
        )
        return kind == "result"

    async def roster_get(self, ver: str | None = None) -> tuple[str, Any]:
        query = ET.Element(f"{{{ROSTER_NS}}}query")
        if ver is not None:
            query.set("ver", ver)
        return await self.query(self.raw_iq("get", query))

    async def roster_set(
        self,
        jid: str,
        name: str | None = None,
        groups: Iterable[str] = (),
        subscription: str | None = None,
    ) -> tuple[str, Any]:
        query = ET.Element(f"{{{ROSTER_NS}}}query")
        item = ET.SubElement(query, f"{{{ROSTER_NS}}}item", {"jid": jid})
        if name is not None:
            item.set("name", name)
        if subscription is not None:
            item.set("subscription", subscription)
        for group in groups:
            ET.SubElement(item, f"{{{ROSTER_NS}}}group").text = group
        return await self.query(self.raw_iq("set", query))

    def subscription(self, to: str, ptype: str) -> None:
        """Sends a subscription stanza (subscribe, subscribed, unsubscribe, unsubscribed)."""
        self.send_presence(pto=to, ptype=ptype)

    def kill(self, reset: bool) -> None:
        """Drops the connection without closing the stream or TLS: with
        `reset`, the TCP connection is reset (RST); otherwise it is closed
        (FIN) with no TLS close_notify and no </stream:stream>."""
        transport = self.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if reset and sock is not None:
            # SO_LINGER on with a zero timeout: close() sends RST.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.cancel_connection_attempt()
        transport.abort()


# -- reading stanzas ------------------------------------------------------


def tag(stanza: Any) -> str:
    return stanza.xml.tag.rpartition("}")[2]


def error_condition(stanza: Any) -> str | None:
    """The defined condition of a stanza error (RFC 6120 section 8.3.3), or None."""
    if stanza is None:
        return None
    error = stanza.xml.find(f"{{{CLIENT_NS}}}error")
    if error is None:
        return None
    for child in error:
        if child.tag.startswith(f"{{{STANZAS_NS}}}") and not child.tag.endswith("}text"):
            return child.tag.rpartition("}")[2]
    return None


def error_type(stanza: Any) -> str | None:
    error = stanza.xml.find(f"{{{CLIENT_NS}}}error") if stanza is not None else None
    return None if error is None else error.get("type")


def is_presence(ptype: str = "available", frm: str | None = None) -> Predicate:
    """A presence of type `ptype` ('available' for none) from `frm` (full JID,
    or any resource of a bare JID)."""

    def match(st: Any) -> bool:
        if tag(st) != "presence":
            return False
        if (st.xml.get("type") or "available") != ptype:
            return False
        return frm is None or same_sender(st, frm)

    return match


def is_message(
    body: str | None = None, frm: str | None = None, mtype: str | None = None
) -> Predicate:
    def match(st: Any) -> bool:
        if tag(st) != "message":
            return False
        if mtype is not None and (st.xml.get("type") or "normal") != mtype:
            return False
        if body is not None and message_body(st) != body:
            return False
        return frm is None or same_sender(st, frm)

    return match


def message_body(st: Any) -> str | None:
    body = st.xml.find(f"{{{CLIENT_NS}}}body")
    return None if body is None else (body.text or "")


def same_sender(st: Any, jid: str) -> bool:
    """`from` is `jid` itself, or a full JID of bare `jid`."""
    frm = st.xml.get("from") or ""
    return frm == jid or ("/" not in jid and frm.split("/", 1)[0] == jid)


def is_roster_push(jid: str | None = None) -> Predicate:
    """A roster push (RFC 6121 section 2.1.6), optionally about `jid`."""

    def match(st: Any) -> bool:
        if tag(st) != "iq" or st.xml.get("type") != "set":
            return False
        query = st.xml.find(f"{{{ROSTER_NS}}}query")
        if query is None:
            return False
        return jid is None or any(
            i.get("jid") == jid for i in query.findall(f"{{{ROSTER_NS}}}item")
        )

    return match


def roster_items(stanza: Any) -> dict[str, dict[str, Any]]:
    """The items of a roster result or push as the server sent them.

    Each: name, subscription (as sent; RFC 6121 section 2.1.2.5 makes a
    missing one mean 'none'), ask, approved and the sorted groups.
    """
    items: dict[str, dict[str, Any]] = {}
    if stanza is None:
        return items
    query = stanza.xml.find(f"{{{ROSTER_NS}}}query")
    if query is None:
        return items
    for item in query.findall(f"{{{ROSTER_NS}}}item"):
        items[item.get("jid", "")] = {
            "name": item.get("name"),
            "subscription": item.get("subscription", "none"),
            "ask": item.get("ask"),
            "approved": item.get("approved"),
            "groups": sorted(g.text or "" for g in item.findall(f"{{{ROSTER_NS}}}group")),
        }
    return items


def roster_ver(stanza: Any) -> str | None:
    query = stanza.xml.find(f"{{{ROSTER_NS}}}query") if stanza is not None else None
    return None if query is None else query.get("ver")


def describe_item(item: dict[str, Any] | None) -> str:
    if item is None:
        return "no item"
    parts = [f"subscription={item['subscription']}"]
    for key in ("ask", "approved", "name"):
        if item.get(key) is not None:
            parts.append(f"{key}={item[key]}")
    if item.get("groups"):
        parts.append(f"groups={item['groups']}")
    return " ".join(parts)


# -- sessions -------------------------------------------------------------


async def open_session(
    report: scenario.Report,
    args: argparse.Namespace,
    name: str,
    jid: str,
    password: str,
    plugins: Iterable[str] = (),
    roster: bool = True,
    presence: bool = True,
    show: str | None = None,
    status: str | None = None,
    priority: int | None = None,
) -> ImClient | None:
    """Logs in; with `roster` fetches the roster first (the session becomes an
    interested resource, RFC 6121 section 2.1.6), with `presence` sends
    initial presence (section 4.2) and waits until the server has handled it.
    None (and a failed check) when the login did not work."""
    client = ImClient(jid, password, args, name, plugins)
    outcome = await client.login()
    if not report.check(outcome is True, f"{name} logged in", str(outcome)):
        client.cancel_connection_attempt()
        if client.is_connected():
            client.abort()
        return None
    if roster:
        kind, reply = await client.roster_get()
        if not report.check(kind == "result", f"{name}: roster fetched", f"{kind}: {short(reply)}"):
            return client
    if presence:
        client.send_presence(pshow=show, pstatus=status, ppriority=priority)
        report.check(
            await client.sync(), f"{name}: initial presence sent", "no answer to a ping after it"
        )
    return client


async def close_all(clients: Iterable[ImClient | None]) -> None:
    for client in clients:
        if client is None:
            continue
        client.cancel_connection_attempt()
        if client.is_connected():
            client.abort()


async def befriend(report: scenario.Report, a: ImClient, b: ImClient) -> bool:
    """Mutual presence subscription between two sessions that fetched their
    roster (RFC 6121 section 3.1, both ways): subscribe, subscribed, then the
    same from the other side; done when both have a roster push showing
    'both'."""
    both = lambda peer: (  # noqa: E731
        lambda st: is_roster_push(peer)(st)
        and roster_items(st).get(peer, {}).get("subscription") == "both"
    )
    mark_a, mark_b = a.mark(), b.mark()
    for requester, contact in ((a, b), (b, a)):
        seen = contact.mark()
        requester.subscription(contact.bare, "subscribe")
        request = await contact.expect(is_presence("subscribe", requester.bare), since=seen)
        if not report.check(
            request is not None,
            f"setup: {contact.name} got {requester.name}'s subscription request",
            "none arrived",
        ):
            return False
        contact.subscription(requester.bare, "subscribed")
    pushes = await asyncio.gather(
        a.expect(both(b.bare), since=mark_a), b.expect(both(a.bare), since=mark_b)
    )
    return report.check(
        all(p is not None for p in pushes),
        f"setup: {a.name} and {b.name} subscribed to each other (roster pushes with subscription 'both')",
        f"pushes: {[short(p) for p in pushes]}",
    )
