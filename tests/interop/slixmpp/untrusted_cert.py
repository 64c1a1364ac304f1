#!/usr/bin/env python3
"""Control: without the server's CA file, slixmpp refuses the connection.

The server's certificate is self-signed, so a client that trusts only the
system's CA store must fail the TLS handshake and never authenticate. This
shows that the other scenarios pass because the certificate verified against
their CA file, not because verification is lax (RFC 6120 section 13.7.2).

Example:
  untrusted_cert.py --port 5223 --mode direct --jid alice@localhost --password secret
"""

from __future__ import annotations

import sys

import scenario


def parse_args():
    parser = scenario.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--jid", required=True, help="an existing account")
    parser.add_argument("--password", required=True, help="its password")
    args = parser.parse_args()
    if args.ca_file:
        parser.error("this scenario runs without --ca-file on purpose")
    return args


async def run(args, report: scenario.Report) -> None:
    client = scenario.Client(args.jid, args.password, args)
    try:
        outcome = await client.login()
        errors = [err.verify_message for err in client.cert_errors]
        report.check(
            outcome is not True
            and bool(errors)
            and client.used_mechanism is None
            and not client.auth_failures,
            f"TLS handshake refused by certificate verification ({', '.join(errors)}), "
            "before any SASL exchange",
            f"login ended with: {outcome}; SASL mechanism used: {client.used_mechanism}",
        )
    finally:
        client.cancel_connection_attempt()
        if client.is_connected():
            client.abort()


def main() -> int:
    args = parse_args()
    return scenario.main(run, args, f"{scenario.mode_name(args.mode)} without the CA file")


if __name__ == "__main__":
    sys.exit(main())
