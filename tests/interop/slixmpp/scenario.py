"""Shared pieces of the slixmpp interop scenarios.

Every scenario is a standalone script run against a live XMPP server on
loopback. It prints one line per check, ``ok - ...`` or ``not ok - ...``,
and exits non-zero when a check failed or when no check ran at all.

The certificate of the server is always verified: against the CA file given
on the command line, for the XMPP domain (RFC 6120 section 13.7.2.1,
RFC 6125). Nothing here turns verification off.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

STREAM_NS = "http://etherx.jabber.org/streams"

# Upper bound for each single wait on the server (connect, login, a reply,
# a message). Generous on purpose: the machine may be busy compiling, and a
# wait only ends early when the awaited thing happens.
STEP_TIMEOUT = 20.0

# Default upper bound for a whole scenario (--time-limit), below the runner's
# own timeout so that a stuck scenario still reports which check it was at.
SCENARIO_TIMEOUT = 100.0

# slixmpp reports a disconnection caused by the peer's </stream:stream>
# with this reason; any other reason means the stream was not closed by the
# server (RFC 6120 section 4.4).
END_OF_STREAM = "End of stream"


class Report:
    """Prints check results and keeps the tally for the exit code."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.passed = 0
        self.failed = 0

    def check(self, condition: bool, what: str, detail: str = "") -> bool:
        if condition:
            self.passed += 1
            print(f"ok - {self.label}: {what}", flush=True)
        else:
            self.failed += 1
            suffix = f" ({detail})" if detail else ""
            print(f"not ok - {self.label}: {what}{suffix}", flush=True)
        return condition

    def exit_code(self) -> int:
        return 0 if self.failed == 0 and self.passed > 0 else 1


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to connect to")
    parser.add_argument("--port", type=int, required=True, help="TCP port to connect to")
    parser.add_argument("--domain", default="localhost", help="XMPP domain served")
    parser.add_argument(
        "--ca-file",
        help="PEM file trusted as CA for the server certificate "
        "(without it only the system trust store is used)",
    )
    parser.add_argument(
        "--mode",
        choices=["starttls", "direct", "auto"],
        default="starttls",
        help="starttls: plain TCP then STARTTLS (RFC 6120 section 5); "
        "direct: TLS from the first byte (XEP-0368); "
        "auto: slixmpp's own default, which tries direct TLS on the port first "
        "and falls back to STARTTLS",
    )
    parser.add_argument(
        "--mech",
        action="append",
        default=[],
        help="SASL mechanism the client may use (repeatable; default: any)",
    )
    parser.add_argument(
        "--tls-max",
        choices=["1.2", "1.3"],
        help="highest TLS version the client offers",
    )
    parser.add_argument(
        "--alpn",
        action="append",
        default=[],
        help="ALPN protocol the client offers (repeatable), e.g. xmpp-client",
    )
    parser.add_argument("--label", help="prefix of the report lines")
    parser.add_argument(
        "--time-limit",
        type=float,
        default=SCENARIO_TIMEOUT,
        help="seconds the whole scenario may take before it reports where it stopped "
        f"(default {SCENARIO_TIMEOUT:.0f}; keep it below the runner's own timeout)",
    )
    parser.add_argument("--log-file", help="write slixmpp's debug log (the XML exchanged) here")
    return parser


def setup_logging(log_file: str | None) -> None:
    if log_file:
        logging.basicConfig(
            filename=log_file,
            level=logging.DEBUG,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
        )
    else:
        logging.basicConfig(stream=sys.stderr, level=logging.ERROR)


class Client(slixmpp.ClientXMPP):
    """A slixmpp client that records what the scenarios check.

    The outcome of the login is a future: True once the session started, or
    a string naming what stopped it (failed authentication, TLS failure,
    lost connection).
    """

    def __init__(self, jid: str, password: str, args: argparse.Namespace) -> None:
        super().__init__(jid, password)
        self.args = args
        if args.ca_file:
            self.ca_certs = Path(args.ca_file)
        self.enable_plaintext = False
        if args.mode == "starttls":
            self.enable_direct_tls = False
            self.enable_starttls = True
        elif args.mode == "direct":
            self.enable_direct_tls = True
            self.enable_starttls = False
        else:
            self.enable_direct_tls = True
            self.enable_starttls = True
        if args.mech:
            self["feature_mechanisms"].use_mechs = set(args.mech)
        if args.tls_max == "1.2":
            self.ssl_context.maximum_version = ssl.TLSVersion.TLSv1_2
        if args.alpn:
            self.ssl_context.set_alpn_protocols(list(args.alpn))

        # slixmpp tries each enabled connection method in turn before it
        # reports failure by retrying later; count them to know when the
        # first round has failed.
        self.connect_methods = int(self.enable_direct_tls) + int(self.enable_starttls)
        self.connect_failures: list[str] = []
        self.cert_errors: list[ssl.SSLCertVerificationError] = []
        self.outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.auth_failures: list[str] = []
        self.features_seen: list[list[str]] = []
        self.features_xml: list[Any] = []
        self.advertised_mechanisms: set[str] = set()
        self.used_mechanism: str | None = None
        self.tls_version: str | None = None
        self.alpn_selected: str | None = None
        self.peer_cert: dict[str, Any] = {}
        self.messages: asyncio.Queue[slixmpp.Message] = asyncio.Queue()
        self.disconnect_reasons: list[Any] = []
        self.disconnected_event = asyncio.Event()

        # A second handler on <stream:features> next to slixmpp's own: it
        # records which features each stream offered.
        self.register_handler(
            Callback(
                "record stream features",
                MatchXPath(f"{{{STREAM_NS}}}features"),
                self._record_features,
            )
        )
        self.add_event_handler("auth_success", self._on_auth_success)
        self.add_event_handler("failed_auth", self._on_failed_auth)
        self.add_event_handler("failed_all_auth", lambda _e: self._finish("no SASL mechanism left"))
        self.add_event_handler("no_auth", lambda _e: self._finish("no acceptable SASL mechanism"))
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("connection_failed", self._on_connection_failed)
        self.add_event_handler("ssl_invalid_chain", self._on_invalid_chain)
        self.add_event_handler("disconnected", self._on_disconnected)
        self.add_event_handler("message", self._on_message)

    # -- event handlers -------------------------------------------------

    def _finish(self, value: Any) -> None:
        if not self.outcome.done():
            self.outcome.set_result(value)

    def _record_features(self, features: Any) -> None:
        self.features_seen.append([child.tag for child in features.xml])
        self.features_xml.append(features.xml)

    def _record_tls(self) -> None:
        sock = self.socket
        if isinstance(sock, (ssl.SSLObject, ssl.SSLSocket)):
            self.tls_version = sock.version()
            self.alpn_selected = sock.selected_alpn_protocol()
            # getpeercert() returns the parsed certificate only when it was
            # verified; an empty dict otherwise.
            self.peer_cert = sock.getpeercert() or {}

    def _on_auth_success(self, _stanza: Any) -> None:
        mechanisms = self["feature_mechanisms"]
        self.advertised_mechanisms = set(mechanisms.mech_list)
        self.used_mechanism = mechanisms.mech.name if mechanisms.mech else None
        self._record_tls()

    def _on_failed_auth(self, stanza: Any) -> None:
        mechanisms = self["feature_mechanisms"]
        self.advertised_mechanisms = set(mechanisms.mech_list)
        self._record_tls()
        self.auth_failures.append(stanza["condition"])

    def _on_session_start(self, _event: Any) -> None:
        self._record_tls()
        self._finish(True)

    def _on_connection_failed(self, error: Any) -> None:
        if isinstance(error, ssl.SSLCertVerificationError):
            self.cert_errors.append(error)
        self.connect_failures.append(str(error))
        if len(self.connect_failures) >= self.connect_methods:
            # Stop slixmpp from retrying with back-off: a scenario wants the
            # first answer.
            self.cancel_connection_attempt()
            self._finish(f"connection failed: {'; '.join(self.connect_failures)}")

    def _on_invalid_chain(self, error: Any) -> None:
        if isinstance(error, ssl.SSLCertVerificationError):
            self.cert_errors.append(error)
        self._finish(f"TLS certificate rejected: {error}")
        self.abort()

    def _on_disconnected(self, reason: Any) -> None:
        self.disconnect_reasons.append(reason)
        self.disconnected_event.set()
        self._finish(f"disconnected: {reason}")

    def _on_message(self, msg: slixmpp.Message) -> None:
        self.messages.put_nowait(msg)

    # -- steps ----------------------------------------------------------

    async def login(self) -> Any:
        """Connects and waits for the session or for what prevented it."""
        self.connect(self.args.host, self.args.port)
        try:
            return await asyncio.wait_for(asyncio.shield(self.outcome), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            return f"no session within {STEP_TIMEOUT:.0f}s"

    async def close(self) -> Any:
        """Sends </stream:stream> and waits for the server to close its side.

        Returns the disconnection reason slixmpp reported, or None when the
        connection was already gone.
        """
        if not self.is_connected():
            self.cancel_connection_attempt()
            return None
        self.disconnected_event.clear()
        await self.disconnect(wait=STEP_TIMEOUT / 2, reason="scenario done")
        try:
            await asyncio.wait_for(self.disconnected_event.wait(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            self.abort()
            return "still connected"
        return self.disconnect_reasons[-1] if self.disconnect_reasons else None

    def cert_names(self) -> list[str]:
        return [value for kind, value in self.peer_cert.get("subjectAltName", ()) if kind == "DNS"]


def main(
    run: Callable[[argparse.Namespace, Report], Awaitable[None]], args, default_label: str
) -> int:
    """Runs one scenario under its time limit and returns the exit code."""
    report = Report(args.label or default_label)
    setup_logging(args.log_file)

    limit = args.time_limit

    async def guarded() -> None:
        try:
            await asyncio.wait_for(run(args, report), limit)
        except asyncio.TimeoutError:
            report.check(False, f"scenario finished within {limit:.0f}s", "timed out")

    asyncio.run(guarded())
    return report.exit_code()


def mode_name(mode: str) -> str:
    return {"starttls": "STARTTLS", "direct": "direct TLS", "auto": "slixmpp default connect"}[mode]
