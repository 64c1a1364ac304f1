#!/usr/bin/env python3
"""A slixmpp user in conversation with an xmpp.js user (a second client library).

This script logs in the slixmpp user, then starts xmppjs/conversation.mjs
with Node for the other user, and answers each of its steps:

- the xmpp.js user's subscription request arrives from its bare JID; the
  slixmpp user approves it and asks back; the approval back arrives and the
  roster shows 'both' (RFC 6121 section 3.1);
- its chat message arrives with the exact body from its full JID; the
  slixmpp user replies to that full JID;
- its change of presence arrives; the slixmpp user changes its own;
- when it closes its stream, its unavailable presence arrives (RFC 6121
  section 4.5);
- Node exits with status 0 (all of its own checks passed).

The xmpp.js client prints its own check lines to the same output. The
server certificate reaches Node through NODE_EXTRA_CA_CERTS.

Example:
  with_xmppjs.py --port 5222 --ca-file localhost.crt \\
      --node node --node-modules /var/tmp/causerie-interop/node/node_modules \\
      --account peer@localhost pw1 --account js@localhost pw2
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from pathlib import Path

import im
import scenario

ROLES = ["slixmpp user", "xmpp.js user"]
SCRIPT = Path(__file__).resolve().parent.parent / "xmppjs" / "conversation.mjs"
# Node's start and login come on top of the steps.
FIRST_STEP_TIMEOUT = 60.0


def parse_args():
    parser = im.im_parser(__doc__.splitlines()[0], ROLES)
    parser.add_argument("--node", default="node", help="the Node.js executable")
    parser.add_argument(
        "--node-modules", required=True, help="node_modules folder holding @xmpp/client"
    )
    return im.accounts(parser, ROLES)


async def run(args, report: scenario.Report) -> None:
    peer_jid, peer_pw = args.accounts["slixmpp user"]
    js_jid, js_pw = args.accounts["xmpp.js user"]
    token = secrets.token_hex(3)
    peer = None
    node = None
    try:
        peer = await im.open_session(
            report, args, "slixmpp", peer_jid, peer_pw, status="slixmpp here"
        )
        if peer is None:
            return
        if not args.ca_file:
            report.check(False, "a CA file to hand to Node", "--ca-file is required")
            return
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=str(Path(args.ca_file).resolve()))
        node = await asyncio.create_subprocess_exec(
            args.node,
            str(SCRIPT),
            "--modules",
            args.node_modules,
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--domain",
            args.domain,
            "--jid",
            js_jid,
            "--password",
            js_pw,
            "--peer",
            peer.full,
            "--token",
            token,
            "--label",
            f"{report.label}: xmpp.js side",
            *(
                ["--log-file", args.log_file.removesuffix(".xmpp.log") + ".xmppjs.log"]
                if args.log_file
                else []
            ),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
        )
        label = "slixmpp side"

        request = await peer.expect(im.is_presence("subscribe", js_jid), timeout=FIRST_STEP_TIMEOUT)
        if not report.check(
            request is not None and request.xml.get("from") == js_jid,
            f"{label}: the xmpp.js user's subscription request arrived from its bare JID",
            im.short(request),
        ):
            return
        mark = peer.mark()
        peer.subscription(js_jid, "subscribed")
        peer.subscription(js_jid, "subscribe")
        approval = await peer.expect(im.is_presence("subscribed", js_jid), since=mark)
        report.check(
            approval is not None,
            f"{label}: the xmpp.js user approved the subscription back",
            "none arrived",
        )
        both = await peer.expect(
            lambda st: im.is_roster_push(js_jid)(st)
            and im.roster_items(st)[js_jid]["subscription"] == "both",
            since=mark,
        )
        report.check(
            both is not None, f"{label}: roster push with subscription both", "none arrived"
        )

        hello = f"hello from xmpp.js {token} <&> ✓"
        msg = await peer.expect(im.is_message(body=hello))
        if not report.check(
            msg is not None,
            f"{label}: the xmpp.js user's message arrived with the exact body",
            "none arrived",
        ):
            return
        js_full = msg.xml.get("from") or ""
        report.check(
            js_full.startswith(js_jid + "/"),
            f"{label}: the message is from the xmpp.js user's full JID",
            f"from={js_full!r}",
        )
        report.check(
            msg.xml.get("type") == "chat", f"{label}: the message type is chat", im.short(msg)
        )
        mark = peer.mark()
        peer.send_message(
            mto=js_full, mbody=f"hello from slixmpp {token} ’quoted’ <b>&amp;</b>", mtype="chat"
        )

        change = await peer.expect(
            lambda st: im.is_presence("available", js_full)(st)
            and st["status"] == f"xmpp.js away {token}",
            since=mark,
        )
        report.check(
            change is not None and change["show"] == "away",
            f"{label}: the xmpp.js user's change of presence arrived (away)",
            im.short(change),
        )
        mark = peer.mark()
        peer.send_presence(pstatus=f"slixmpp back {token}")

        gone = await peer.expect(
            im.is_presence("unavailable", js_full), since=mark, timeout=FIRST_STEP_TIMEOUT
        )
        report.check(
            gone is not None,
            f"{label}: the xmpp.js user's unavailable presence arrived",
            "none arrived",
        )

        try:
            status = await asyncio.wait_for(node.wait(), scenario.STEP_TIMEOUT)
        except asyncio.TimeoutError:
            status = None
        report.check(
            status == 0,
            f"{label}: the xmpp.js client exited with status 0",
            "still running" if status is None else f"status {status}",
        )
    finally:
        if node is not None and node.returncode is None:
            # Stopped by its own PID; its check lines so far stay in the output.
            node.kill()
            await node.wait()
        await im.close_all((peer,))


def main() -> int:
    args = parse_args()
    return scenario.main(run, args, "xmpp.js")


if __name__ == "__main__":
    sys.exit(main())
