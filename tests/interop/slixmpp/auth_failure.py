#!/usr/bin/env python3
"""A wrong password and an unknown user are refused with not-authorized.

slixmpp logs in with a wrong password, then as a user that does not exist.
Each attempt must end in a SASL <failure/> with the condition
not-authorized (RFC 6120 section 6.5.10) -- the same condition for both, so
that the answer does not tell which accounts exist -- and no session may
start. When several mechanisms are allowed, slixmpp retries with the next one
on the same stream after a failure; RFC 6120 section 6.4.5 asks servers to
allow such retries, so each allowed mechanism must be refused in turn.
Finally the client closes its stream and the server must close its side.

Example:
  auth_failure.py --port 5222 --ca-file localhost.crt --mode starttls \\
      --mech SCRAM-SHA-256 --jid alice@localhost --wrong-password nope \\
      --unknown-jid nobody@localhost
"""

from __future__ import annotations

import asyncio
import sys

import scenario


def parse_args():
    parser = scenario.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jid", required=True, help="an existing account")
    parser.add_argument("--wrong-password", required=True, help="not that account's password")
    parser.add_argument("--unknown-jid", required=True, help="an account that does not exist")
    parser.add_argument(
        "--unknown-password", default="irrelevant-password", help="password tried for it"
    )
    args = parser.parse_args()
    if not args.mech:
        parser.error("give at least one --mech: the scenario counts the refusals per mechanism")
    return args


async def attempt(report: scenario.Report, what: str, jid: str, password: str, args) -> None:
    client = scenario.Client(jid, password, args)
    try:
        outcome = await client.login()
        conditions = client.auth_failures
        report.check(
            outcome is not True and bool(conditions),
            f"{what}: login refused with a SASL failure, no session started",
            f"login ended with: {outcome}",
        )
        report.check(
            len(conditions) == len(args.mech),
            f"{what}: refused once per allowed mechanism ({len(args.mech)})",
            f"SASL failures: {conditions}",
        )
        report.check(
            bool(conditions) and all(c == "not-authorized" for c in conditions),
            f"{what}: SASL failure condition is not-authorized",
            f"conditions: {conditions}",
        )
        if conditions:
            # Once no mechanism is left, slixmpp closes its stream by itself
            # (</stream:stream>); the server must answer by closing its own.
            try:
                await asyncio.wait_for(client.disconnected_event.wait(), scenario.STEP_TIMEOUT)
            except asyncio.TimeoutError:
                pass
        report.check(
            scenario.END_OF_STREAM in client.disconnect_reasons,
            f"{what}: server closed the stream after the client's </stream:stream>",
            f"disconnect reasons: {client.disconnect_reasons or 'still connected'}",
        )
    finally:
        client.cancel_connection_attempt()
        if client.is_connected():
            client.abort()


async def run(args, report: scenario.Report) -> None:
    await attempt(report, f"wrong password for {args.jid}", args.jid, args.wrong_password, args)
    await attempt(
        report, f"unknown user {args.unknown_jid}", args.unknown_jid, args.unknown_password, args
    )


def main() -> int:
    args = parse_args()
    return scenario.main(
        run, args, f"{scenario.mode_name(args.mode)}/{'+'.join(args.mech)} refused logins"
    )


if __name__ == "__main__":
    sys.exit(main())
