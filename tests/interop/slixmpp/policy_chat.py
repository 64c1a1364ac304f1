#!/usr/bin/env python3
"""Usage policy accepted in a chat with the policy address (xeps/policy-acceptance.md 6.1).

A version is in force (the runner published --policy-file) and neither
alice nor bob has accepted it. Both use plain slixmpp clients that know
nothing of the extension: they log in, fetch the roster and send initial
presence as after any login.

- bob: the stream features next to <bind/> announce the pending version;
  the policy address sends the prompt (title, text, categories, the form,
  and the instruction line); his initial presence is held, not broadcast;
  he reads the receipt key from the server's disco#info (allowed while
  restricted), replies 'ACCEPT code' with the code read from the prompt's
  last line, and gets the 'Accepted:' confirmation with a <receipt/> whose
  hash is that of its canonical encoding and whose key is the fingerprint
  of the published key; then his held presence is broadcast (his own copy
  arrives).
- alice: the same prompt; a chat message to bob and a subscription request
  to him are refused with policy-violation (type auth) and
  <acceptance-required/>. bob writes to her bare and full JID meanwhile:
  nothing reaches her and bob gets no error. She accepts the same way; the
  two messages bob sent are delivered to her right after the confirmation,
  her held presence is broadcast, and then alice and bob chat both ways
  (and the refused message never reached bob).

alice registers slixmpp's XEP-0092 plugin, so that the server can record
her client's name in the receipt (section 5.10); bob does not.

Example:
  policy_chat.py --port 5222 --ca-file localhost.crt --policy-file policy.md \\
      --account alice@localhost pw1 --account bob@localhost pw2
"""

from __future__ import annotations

import secrets
import sys

import im
import policy
import scenario

ROLES = ["alice", "bob"]


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    pol: policy.PolicyFile = args.policy
    token = secrets.token_hex(3)
    alice = bob = None
    try:
        # -- bob accepts first -------------------------------------------
        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw)
        if bob is None:
            return
        policy.check_feature(report, "bob", bob, pol)
        code = await policy.expect_prompt(report, "bob", bob, pol)
        if code is None:
            return
        await bob.sync()
        report.check(
            not bob.received(policy.own_presence(bob)),
            "bob: his initial presence was held while restricted (no copy of it came back)",
            f"got {[im.short(p) for p in bob.received(policy.own_presence(bob))]}",
        )
        key = await policy.receipt_key(report, "bob (restricted)", bob)
        if await policy.accept_by_chat(report, "bob", bob, code, pol, key) is None:
            return
        report.check(
            await bob.expect(policy.own_presence(bob)) is not None,
            "bob: his held presence was broadcast once he accepted (his own copy arrived)",
            "no presence of his own arrived",
        )

        # -- alice, restricted -------------------------------------------
        alice = await im.open_session(
            report, args, "alice", alice_jid, alice_pw, plugins=["xep_0092"]
        )
        if alice is None:
            return
        policy.check_feature(report, "alice", alice, pol)
        code = await policy.expect_prompt(report, "alice", alice, pol)
        if code is None:
            return
        refused = f"refused while restricted {token}"
        await policy.check_refused(report, "alice", alice, bob_jid, refused, pol)

        mark = alice.mark()
        alice.subscription(bob_jid, "subscribe")
        bounce = await alice.expect(im.is_presence("error", bob_jid), since=mark)
        report.check(
            im.error_condition(bounce) == "policy-violation" and im.error_type(bounce) == "auth",
            "alice: a subscription request to bob before accepting is refused with "
            "policy-violation, type auth",
            im.short(bounce),
        )

        kept_bare = f"to alice's bare JID while she is restricted {token}"
        kept_full = f"to alice's full JID while she is restricted {token}"
        mark_b = bob.mark()
        bob.send_message(mto=alice_jid, mbody=kept_bare, mtype="chat")
        bob.send_message(mto=alice.full, mbody=kept_full, mtype="chat")
        report.check(
            await bob.sync(), "bob wrote to alice's bare and full JID", "no answer to a ping"
        )
        await alice.sync()
        early = alice.received(im.is_message(frm=bob_jid, mtype="chat"))
        report.check(
            not early,
            "alice: bob's messages were not delivered to her restricted session",
            f"got {[im.short(m) for m in early]}",
        )
        bounced = bob.received(im.is_message(mtype="error"), mark_b)
        report.check(
            not bounced,
            "bob: his messages to restricted alice were kept, not bounced (section 5.4)",
            f"got {[im.short(m) for m in bounced]}",
        )
        report.check(
            not alice.received(policy.own_presence(alice)),
            "alice: her initial presence was held while restricted (no copy of it came back)",
            f"got {[im.short(p) for p in alice.received(policy.own_presence(alice))]}",
        )
        subscribe = bob.received(im.is_presence("subscribe", alice_jid))
        report.check(
            not subscribe,
            "bob: alice's refused subscription request did not reach him",
            f"got {[im.short(p) for p in subscribe]}",
        )

        # -- alice accepts -----------------------------------------------
        confirmed = await policy.accept_by_chat(report, "alice", alice, code, pol, key)
        if confirmed is None:
            return
        for body, what in ((kept_bare, "bare"), (kept_full, "full")):
            index = await alice.expect_index(im.is_message(body=body, frm=bob.full))
            if report.check(
                index is not None,
                f"alice: bob's message to her {what} JID was delivered once she accepted",
                "none arrived",
            ):
                report.check(
                    index > confirmed,
                    f"alice: bob's message to her {what} JID came after the confirmation",
                    f"inbox position {index}, confirmation at {confirmed}",
                )
                report.check(
                    alice.inbox[index].xml.find(f"{{{im.DELAY_NS}}}delay") is not None,
                    f"alice: bob's message to her {what} JID carries the XEP-0203 delay of "
                    "a stored message",
                    im.short(alice.inbox[index]),
                )
        report.check(
            await alice.expect(policy.own_presence(alice)) is not None,
            "alice: her held presence was broadcast once she accepted (her own copy arrived)",
            "no presence of her own arrived",
        )

        # -- both accepted: they chat --------------------------------------
        hello = f"hello bob, accepted {token} – café"
        alice.send_message(mto=bob_jid, mbody=hello, mtype="chat")
        index = await bob.expect_index(im.is_message(body=hello, frm=alice.full))
        if report.check(
            index is not None, "bob got alice's message after she accepted", "none arrived"
        ):
            before = bob.received(im.is_message(frm=alice_jid), 0, index)
            report.check(
                not before,
                "bob got nothing from alice before it (the refused message never reached him)",
                f"got {[im.short(m) for m in before]}",
            )
        reply = f"hello alice {token} <ok>"
        bob.send_message(mto=alice.full, mbody=reply, mtype="chat")
        report.check(
            await alice.expect(im.is_message(body=reply, frm=bob.full)) is not None,
            "alice got bob's reply",
            "none arrived",
        )
        for name, client in (("alice", alice), ("bob", bob)):
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM,
                f"{name} logged out",
                f"disconnect reason: {reason}",
            )
    finally:
        await im.close_all((alice, bob))


def main() -> int:
    args = policy.parse_args(policy.policy_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "policy chat")


if __name__ == "__main__":
    sys.exit(main())
