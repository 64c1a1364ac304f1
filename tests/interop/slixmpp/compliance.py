#!/usr/bin/env python3
"""Compliance rules applied to the messages of a client that knows nothing of them.

The runner added --rules-file with 'causeriectl rules add' and made carol a
security officer ([compliance] officers). The file holds three rules, found
here by their actions:

- a 'mask' rule with the payment-card detector;
- a 'block' rule with keywords;
- a rule with keywords and the actions capture, terminate and alert.

carol and bob are online; alice, a plain slixmpp client, writes to bob:

- an ordinary message: delivered as written;
- a card number: delivered to bob with the number masked, each character
  replaced by '*', and the rest of the text unchanged;
- the block rule's keyword: refused with a policy-violation stanza error
  whose text names the rule's description and whose <blocked/> names the
  rule and its category; alice's next message reaches bob, and the refused
  one never did;
- the terminate rule's keyword, in other case: alice's stream ends with a
  <policy-violation/> stream error whose text names the rule's description,
  and the server closes the stream; carol gets the alert from the policy
  address naming the rule, its severity and category, alice and bob, and
  no message from that address before it (the other rules do not alert);
  alice logs in again and writes to bob, who gets that message and nothing
  of the one that ended her session.

Example:
  compliance.py --port 5222 --ca-file localhost.crt --rules-file rules.toml \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --account carol@localhost pw3
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tomllib
from pathlib import Path
from typing import Any

import im
import scenario

ROLES = ["alice", "bob", "carol"]
# The namespace of the <blocked/> condition in a refused message's error.
COMPLIANCE_NS = "urn:causerie:compliance:0"
# A test card number (Luhn-valid), written in groups as people type it.
CARD = "5555 5555 5555 4444"


class Rules:
    """The three rules of the file the runner added, as the scenario needs them."""

    def __init__(self, path: str) -> None:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        rules: list[dict[str, Any]] = data.get("rule", [])

        def find(what: str, pred) -> dict[str, Any]:
            found = [r for r in rules if pred(r)]
            if len(found) != 1:
                raise ValueError(f"{path}: expected one {what}, found {len(found)}")
            return found[0]

        self.mask = find(
            "rule with the mask action and the payment-card detector",
            lambda r: "mask" in r.get("actions", [])
            and "payment-card" in r.get("detectors", []),
        )
        self.block = find(
            "rule with the block action and keywords",
            lambda r: "block" in r.get("actions", []) and r.get("keywords"),
        )
        self.terminate = find(
            "rule with keywords and the actions capture, terminate and alert",
            lambda r: {"capture", "terminate", "alert"} <= set(r.get("actions", []))
            and r.get("keywords"),
        )


def parse_args() -> argparse.Namespace:
    parser = im.im_parser(__doc__.splitlines()[0], ROLES)
    parser.add_argument(
        "--rules-file",
        required=True,
        help="the rules file the runner added with 'causeriectl rules add'",
    )
    args = im.accounts(parser, ROLES)
    try:
        args.rules = Rules(args.rules_file)
    except (OSError, ValueError, tomllib.TOMLDecodeError) as err:
        parser.error(str(err))
    return args


def from_policy(client: im.ImClient) -> im.Predicate:
    """A chat message from the policy address, which sends the alerts."""
    return im.is_message(frm=f"policy@{client.boundjid.domain}", mtype="chat")


def chat_from(jid: str) -> im.Predicate:
    return im.is_message(frm=jid, mtype="chat")


async def run(args, report: scenario.Report) -> None:
    alice_jid, alice_pw = args.accounts["alice"]
    bob_jid, bob_pw = args.accounts["bob"]
    carol_jid, carol_pw = args.accounts["carol"]
    rules: Rules = args.rules
    token = secrets.token_hex(3)
    alice = bob = carol = alice_again = None
    try:
        carol = await im.open_session(report, args, "carol", carol_jid, carol_pw)
        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw)
        alice = await im.open_session(report, args, "alice", alice_jid, alice_pw)
        if carol is None or bob is None or alice is None:
            return
        stream_errors: list[Any] = []
        alice.add_event_handler("stream_error", stream_errors.append)

        # -- an ordinary message ------------------------------------------
        hello = f"hello bob {token} – café <ok>"
        alice.send_message(mto=bob_jid, mbody=hello, mtype="chat")
        report.check(
            await bob.expect(im.is_message(body=hello, frm=alice.full, mtype="chat")) is not None,
            "bob got alice's ordinary message as written",
            f"got {[im.short(m) for m in bob.received(chat_from(alice_jid))]}",
        )

        # -- mask -----------------------------------------------------------
        mask_id = rules.mask["id"]
        with_card = f"my card is {CARD}, ok? {token}"
        masked = with_card.replace(CARD, "*" * len(CARD))
        mark_b, mark_a = bob.mark(), alice.mark()
        alice.send_message(mto=bob_jid, mbody=with_card, mtype="chat")
        got = await bob.expect(chat_from(alice.full), since=mark_b)
        report.check(
            got is not None and im.message_body(got) == masked,
            f"bob got alice's message with the card number masked by rule {mask_id}: {masked!r}",
            im.short(got),
        )
        await alice.sync()
        errors = alice.received(im.is_message(mtype="error"), mark_a)
        report.check(
            not errors,
            "alice got no error for the masked message (it was delivered)",
            f"got {[im.short(m) for m in errors]}",
        )

        # -- block ------------------------------------------------------------
        block_id = rules.block["id"]
        blocked = f"here is an {rules.block['keywords'][0].upper()} for you {token}"
        mark_b, mark_a = bob.mark(), alice.mark()
        alice.send_message(mto=bob_jid, mbody=blocked, mtype="chat")
        bounce = await alice.expect(im.is_message(mtype="error", frm=bob_jid), since=mark_a)
        error = bounce.xml.find(f"{{{im.CLIENT_NS}}}error") if bounce is not None else None
        text = error.findtext(f"{{{im.STANZAS_NS}}}text") if error is not None else None
        condition = error.find(f"{{{COMPLIANCE_NS}}}blocked") if error is not None else None
        report.check(
            im.error_condition(bounce) == "policy-violation",
            f"alice: her message matching rule {block_id} was refused with policy-violation "
            f"(type {im.error_type(bounce)})",
            im.short(bounce),
        )
        report.check(
            rules.block["description"] in (text or ""),
            f"alice: the error's text names the rule's description: {text!r}",
            im.short(bounce),
        )
        report.check(
            condition is not None
            and condition.get("rule") == block_id
            and condition.get("category") == rules.block["category"],
            f"alice: the error carries <blocked xmlns='{COMPLIANCE_NS}' rule='{block_id}'/> "
            "with the rule's category",
            im.short(bounce),
        )
        after_block = f"after the refused one {token}"
        alice.send_message(mto=bob_jid, mbody=after_block, mtype="chat")
        index = await bob.expect_index(im.is_message(body=after_block, frm=alice.full), mark_b)
        if report.check(
            index is not None, "bob got alice's next message after the refused one", "none arrived"
        ):
            between = bob.received(chat_from(alice_jid), mark_b, index)
            report.check(
                not between,
                "bob got nothing from alice before it (the refused message never reached him)",
                f"got {[im.short(m) for m in between]}",
            )
        last_seen = bob.mark()

        # -- terminate, capture and alert ---------------------------------------
        leak_id = rules.terminate["id"]
        leak = f"here is the {rules.terminate['keywords'][0].title()} for Q3 {token}"
        alice.disconnected_event.clear()
        alice.send_message(mto=bob_jid, mbody=leak, mtype="chat")
        try:
            await asyncio.wait_for(alice.disconnected_event.wait(), scenario.STEP_TIMEOUT)
        except asyncio.TimeoutError:
            pass
        report.check(
            alice.disconnected_event.is_set(),
            f"alice: the server ended her session after the message matching rule {leak_id}",
            "still connected",
        )
        conditions = [(e["condition"], e["text"]) for e in stream_errors]
        report.check(
            len(stream_errors) == 1 and stream_errors[0]["condition"] == "policy-violation",
            "alice: slixmpp got a <policy-violation/> stream error",
            f"stream errors: {conditions}",
        )
        report.check(
            len(stream_errors) == 1
            and rules.terminate["description"] in (stream_errors[0]["text"] or ""),
            "alice: the stream error's text names the rule's description: "
            f"{stream_errors[0]['text'] if stream_errors else None!r}",
            f"stream errors: {conditions}",
        )
        report.check(
            scenario.END_OF_STREAM in alice.disconnect_reasons,
            "alice: the server closed the stream after the error",
            f"disconnect reasons: {alice.disconnect_reasons}",
        )

        alert_index = await carol.expect_index(
            lambda st: from_policy(carol)(st)
            and (im.message_body(st) or "").startswith(f"Compliance alert: rule {leak_id} ")
        )
        if report.check(
            alert_index is not None,
            f"carol (officer): got an alert about rule {leak_id} from "
            f"policy@{carol.boundjid.domain}",
            f"from that address: {[im.message_body(m) for m in carol.received(from_policy(carol))]}",
        ):
            alert = im.message_body(carol.inbox[alert_index]) or ""
            prefix = (
                f"Compliance alert: rule {leak_id} ({rules.terminate.get('severity', 'medium')}, "
                f"{rules.terminate['category']}) matched a message of {alice_jid} with {bob_jid}:"
            )
            report.check(
                alert.startswith(prefix),
                f"carol: the alert names rule {leak_id}, its severity and category, alice and bob",
                f"alert: {alert!r}",
            )
            report.check(
                "session was ended" in alert,
                "carol: the alert says alice's session was ended",
                f"alert: {alert!r}",
            )
            earlier = carol.received(from_policy(carol), 0, alert_index)
            report.check(
                not earlier,
                f"carol: no alert before it (rules {mask_id} and {block_id} do not alert)",
                f"got {[im.message_body(m) for m in earlier]}",
            )

        alice_again = await im.open_session(report, args, "alice (again)", alice_jid, alice_pw)
        if alice_again is None:
            return
        back = f"back again {token}"
        alice_again.send_message(mto=bob_jid, mbody=back, mtype="chat")
        index = await bob.expect_index(
            im.is_message(body=back, frm=alice_again.full), last_seen
        )
        if report.check(
            index is not None, "bob got alice's message from her new session", "none arrived"
        ):
            between = bob.received(chat_from(alice_jid), last_seen, index)
            report.check(
                not between,
                f"bob got nothing from alice before it (the message matching rule {leak_id} "
                "never reached him)",
                f"got {[im.short(m) for m in between]}",
            )

        for name, client in (("alice", alice_again), ("bob", bob), ("carol", carol)):
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM,
                f"{name} logged out",
                f"disconnect reason: {reason}",
            )
    finally:
        await im.close_all((alice, alice_again, bob, carol))


def main() -> int:
    args = parse_args()
    return scenario.main(run, args, "compliance")


if __name__ == "__main__":
    sys.exit(main())
