#!/usr/bin/env python3
"""Two accounts on two federated servers befriend each other and chat.

A logs in to its server, B to its own (STARTTLS, the certificate verified
against --ca for the account's domain), then, across the server-to-server
link between the two domains:

  1. each side removes the other from its roster and both check, with a
     marker message each way, that nothing from that clean-up is still in
     flight (so that the run does not depend on what an earlier one left);
  2. A subscribes to B and B approves (RFC 6121 §3.1), and A receives B's
     available presence; then B subscribes to A and A approves, and B
     receives A's;
  3. A sends B a chat message and B sends A one; each arrives with the
     sender's full JID in 'from' and the exact body;
  4. both rosters show the other with subscription 'both' (RFC 6121 §2.1.2.5).

One line per check: "PASS name" or "FAIL name: reason"; then
"exchange: N passed, M failed". Exit status 0 only when every check passed.
The whole run is bounded by --timeout (default 60 s); a step that is still
waiting then fails with "timed out" and the remaining checks are not run.

Example:
  exchange.py --a alice@prosody.test --a-pass secret-pw --a-host 127.0.0.3 \\
      --a-port 5222 --b bob@ejabberd.test --b-pass secret-pw --b-host 127.0.0.4 \\
      --b-port 5222 --ca DIR/certs/ca.crt
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import slixmpp

# Upper bound of each wait for something the other server has to relay. A
# first s2s connection (DNS, TCP, two TLS handshakes, authentication) takes
# well under a second on loopback; the rest is room for a busy machine.
STEP_TIMEOUT = 20.0


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def ok(self, name: str) -> None:
        self.passed += 1
        print(f"PASS {name}", flush=True)

    def fail(self, name: str, reason: str) -> None:
        self.failed += 1
        print(f"FAIL {name}: {reason}", flush=True)

    def check(self, name: str, condition: bool, reason: str) -> bool:
        if condition:
            self.ok(name)
        else:
            self.fail(name, reason)
        return condition


class StepFailed(Exception):
    """A check failed in a way that leaves nothing sensible to check after it."""


class Account(slixmpp.ClientXMPP):
    """A client that queues what the exchange waits for.

    Subscription requests are not answered automatically: the exchange
    approves them itself, so that it sees each one arrive.
    """

    def __init__(self, label: str, jid: str, password: str, host: str, port: int, ca: str) -> None:
        super().__init__(jid, password)
        self.label = label
        self.host = host
        self.port = port
        self.ca_certs = Path(ca)
        self.enable_plaintext = False
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.auto_authorize = None
        self.auto_subscribe = False

        loop = asyncio.get_running_loop()
        self.outcome: asyncio.Future[Any] = loop.create_future()
        self.messages: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.subscribe_requests: asyncio.Queue[slixmpp.Presence] = asyncio.Queue()
        self.subscribed: asyncio.Queue[slixmpp.Presence] = asyncio.Queue()
        # Bare JID -> the available presences received from it.
        self.available: dict[str, list[slixmpp.Presence]] = {}
        self.presence_changed = asyncio.Event()
        self.connect_failures: list[str] = []

        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_all_auth", lambda _e: self._finish("authentication failed"))
        self.add_event_handler("no_auth", lambda _e: self._finish("no acceptable SASL mechanism"))
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("ssl_invalid_chain", self._on_invalid_chain)
        self.add_event_handler("disconnected", lambda r: self._finish(f"disconnected: {r}"))
        self.add_event_handler("message", self._on_message)
        self.add_event_handler("presence_subscribe", self.subscribe_requests.put_nowait)
        self.add_event_handler("presence_subscribed", self.subscribed.put_nowait)
        self.add_event_handler("presence_available", self._on_available)

    def _finish(self, value: Any) -> None:
        if not self.outcome.done():
            self.outcome.set_result(value)

    def _on_session_start(self, _event: Any) -> None:
        self._finish(True)

    def _on_connection_failed(self, error: Any) -> None:
        self.connect_failures.append(str(error))
        # No retries with back-off: the first answer is the one checked.
        self.cancel_connection_attempt()
        self._finish(f"connection failed: {error}")

    def _on_invalid_chain(self, error: Any) -> None:
        self._finish(f"TLS certificate rejected: {error}")
        self.abort()

    def _on_message(self, msg: slixmpp.Message) -> None:
        self.messages.put_nowait(msg)

    def _on_available(self, presence: slixmpp.Presence) -> None:
        self.available.setdefault(presence["from"].bare, []).append(presence)
        self.presence_changed.set()

    async def login(self) -> Any:
        self.connect(self.host, self.port)
        try:
            return await asyncio.wait_for(asyncio.shield(self.outcome), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            return f"no session within {STEP_TIMEOUT:.0f}s"

    async def start_session(self) -> None:
        """Roster first, then initial presence (RFC 6121 §2.2 and §4.2)."""
        await self.get_roster(timeout=STEP_TIMEOUT)
        self.send_presence()

    def tls_version(self) -> str:
        sock = self.socket
        if isinstance(sock, (ssl.SSLObject, ssl.SSLSocket)):
            return sock.version() or "?"
        return "none"

    async def wait_message(self, predicate, what: str) -> slixmpp.Message:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(what)
            msg = await asyncio.wait_for(self.messages.get(), left)
            if predicate(msg):
                return msg

    async def wait_presence_from(self, bare: str) -> slixmpp.Presence:
        deadline = time.monotonic() + STEP_TIMEOUT
        while not self.available.get(bare):
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(f"available presence from {bare}")
            self.presence_changed.clear()
            await asyncio.wait_for(self.presence_changed.wait(), left)
        return self.available[bare][-1]

    async def wait_queue_from(self, queue: asyncio.Queue, bare: str, what: str) -> Any:
        deadline = time.monotonic() + STEP_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise asyncio.TimeoutError(what)
            item = await asyncio.wait_for(queue.get(), left)
            if item["from"].bare == bare:
                return item

    async def roster_subscription(self, bare: str) -> str:
        """The subscription state the server reports for BARE.

        A roster get without 'ver' (RFC 6121 §2.6): with the version slixmpp
        remembers, a server may answer with an empty result.
        """
        iq = self.Iq()
        iq["type"] = "get"
        iq.enable("roster")
        result = await iq.send(timeout=STEP_TIMEOUT)
        items = result["roster"]["items"]
        for jid, item in items.items():
            if slixmpp.JID(jid).bare == bare:
                return item["subscription"]
        return "absent"

    async def close(self) -> None:
        if self.is_connected():
            await self.disconnect(wait=2.0, reason="exchange done")
        else:
            self.cancel_connection_attempt()


async def exchange(args: argparse.Namespace, report: Report, progress: list[str]) -> None:
    a = Account("A", args.a, args.a_pass, args.a_host, args.a_port, args.ca)
    b = Account("B", args.b, args.b_pass, args.b_host, args.b_port, args.ca)
    accounts = (a, b)
    try:
        for acc in accounts:
            name = f"login {acc.boundjid.bare} via {acc.host}:{acc.port}"
            progress.append(name)
            outcome = await acc.login()
            if not report.check(name, outcome is True, str(outcome)):
                raise StepFailed
            report.ok(f"{acc.boundjid.bare} TLS verified ({acc.tls_version()})")
        for acc in accounts:
            await acc.start_session()

        # -- 1. a clean start ----------------------------------------------
        name = "clean rosters"
        progress.append(name)
        for me, other in ((a, b), (b, a)):
            if await me.roster_subscription(other.boundjid.bare) != "absent":
                await me.del_roster_item(other.boundjid.bare)
        # What the removals sent travels on the same s2s streams as these
        # markers: once each marker is in, nothing from the clean-up is left.
        for sender, receiver in ((a, b), (b, a)):
            marker = f"marker {uuid.uuid4()}"
            sender.send_message(mto=receiver.boundjid.bare, mbody=marker, mtype="chat")
            await receiver.wait_message(lambda m, t=marker: m["body"] == t, f"marker from {sender.boundjid.bare}")
        for me, other in ((a, b), (b, a)):
            state = await me.roster_subscription(other.boundjid.bare)
            if state != "absent":
                report.fail(name, f"{me.boundjid.bare} still has {other.boundjid.bare} ({state})")
                raise StepFailed
            # Presence seen before the clean-up does not count below.
            me.available.pop(other.boundjid.bare, None)
        report.ok(f"{name} (markers relayed both ways)")

        # -- 2. subscriptions ----------------------------------------------
        for asker, owner in ((a, b), (b, a)):
            asker_bare, owner_bare = asker.boundjid.bare, owner.boundjid.bare
            asker.send_presence(pto=owner_bare, ptype="subscribe")
            name = f"{owner_bare} receives subscription request from {asker_bare}"
            progress.append(name)
            await owner.wait_queue_from(owner.subscribe_requests, asker_bare, name)
            report.ok(name)
            owner.send_presence(pto=asker_bare, ptype="subscribed")
            name = f"{asker_bare} receives subscribed from {owner_bare}"
            progress.append(name)
            await asker.wait_queue_from(asker.subscribed, owner_bare, name)
            report.ok(name)
            name = f"{asker_bare} sees {owner_bare} available"
            progress.append(name)
            presence = await asker.wait_presence_from(owner_bare)
            report.check(
                name,
                presence["from"] == owner.boundjid,
                f"from {presence['from']}, expected {owner.boundjid}",
            )

        # -- 3. messages -----------------------------------------------------
        for sender, receiver in ((a, b), (b, a)):
            body = f"hello from {sender.boundjid.bare} <&> é {uuid.uuid4()}"
            sender.send_message(mto=receiver.boundjid.bare, mbody=body, mtype="chat")
            name = f"message {sender.boundjid.bare} -> {receiver.boundjid.bare}"
            progress.append(name)
            msg = await receiver.wait_message(
                lambda m, s=sender.boundjid.bare: m["from"].bare == s and not m["body"].startswith("marker "),
                name,
            )
            problems = []
            if msg["from"] != sender.boundjid:
                problems.append(f"from {msg['from']}, expected {sender.boundjid}")
            if msg["body"] != body:
                problems.append(f"body {msg['body']!r}, expected {body!r}")
            if msg["type"] != "chat":
                problems.append(f"type {msg['type']!r}")
            report.check(name, not problems, "; ".join(problems))

        # -- 4. rosters ------------------------------------------------------
        for me, other in ((a, b), (b, a)):
            name = f"{me.boundjid.bare} roster has {other.boundjid.bare} subscription both"
            progress.append(name)
            state = await me.roster_subscription(other.boundjid.bare)
            report.check(name, state == "both", f"subscription {state}")
    finally:
        for acc in accounts:
            try:
                await asyncio.wait_for(acc.close(), 5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001 - closing is best effort
                acc.abort()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    for side in ("a", "b"):
        parser.add_argument(f"--{side}", required=True, metavar="JID", help=f"account {side.upper()}")
        parser.add_argument(f"--{side}-pass", required=True, metavar="P")
        parser.add_argument(f"--{side}-host", required=True, metavar="IP", help="address to connect to")
        parser.add_argument(f"--{side}-port", type=int, default=5222, metavar="N")
    parser.add_argument("--ca", required=True, metavar="FILE", help="CA certificate (PEM) to verify both servers")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole run (default 60)")
    parser.add_argument("--log-file", help="slixmpp debug log (the XML exchanged)")
    args = parser.parse_args()

    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.DEBUG,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    else:
        logging.basicConfig(stream=sys.stderr, level=logging.CRITICAL)

    report = Report()
    progress: list[str] = []

    async def guarded() -> None:
        try:
            await asyncio.wait_for(exchange(args, report, progress), args.timeout)
        except asyncio.TimeoutError as exc:
            step = progress[-1] if progress else "start"
            detail = f" waiting for {exc.args[0]}" if exc.args else ""
            report.fail(step, f"timed out{detail}")
        except StepFailed:
            pass

    started = time.monotonic()
    asyncio.run(guarded())
    print(f"took {time.monotonic() - started:.1f}s", flush=True)
    print(f"exchange: {report.passed} passed, {report.failed} failed", flush=True)
    return 0 if report.failed == 0 and report.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
