#!/usr/bin/env python3
"""Usage policy accepted with the ad-hoc command (XEP-0050; xeps/policy-acceptance.md 6.2).

A version is in force (the runner published --policy-file). bob accepted it
before (policy_chat.py runs first); carol has not. carol logs in twice,
'phone' then 'laptop', both plain slixmpp clients; the laptop uses
slixmpp's xep_0030, xep_0004 and xep_0050 plugins the way a client that
offers ad-hoc commands does.

- bob, who accepted, is not announced the <policy/> feature and gets no
  prompt: acceptance holds for later logins.
- Both carol sessions are prompted and restricted; a chat message to bob is
  refused with policy-violation; neither session sees the other's presence.
- The laptop lists the server's commands (disco#items of the commands node)
  and finds urn:causerie:policy:0#accept; executing it returns the form
  (status executing, the version hidden, a boolean 'accept'); completing it
  with accept=true returns status completed, a note 'Accepted: …' and a
  <receipt/> with method adhoc.
- The phone, released too, is told by the policy address that the policy
  was accepted from another session, with the same receipt; each session
  now gets the other's held presence.
- Both carol sessions chat with bob, both ways.
- Executing the command again completes at once with a note saying what
  the account accepted.

Example:
  policy_adhoc.py --port 5222 --ca-file localhost.crt --policy-file policy.md \\
      --account carol@localhost pw1 --account bob@localhost pw2
"""

from __future__ import annotations

import asyncio
import secrets
import sys
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout

import im
import policy
import scenario

ROLES = ["carol", "bob"]
COMMAND_PLUGINS = ["xep_0030", "xep_0004", "xep_0050"]


def command_of(iq: Any) -> Any:
    return iq.xml.find(f"{{{policy.COMMANDS_NS}}}command") if iq is not None else None


class CommandRun:
    """One run of a command through xep_0050's client workflow: each answer
    of the server is handed to the scenario through a future."""

    def __init__(self, client: im.ImClient) -> None:
        self.client = client
        self.session: dict[str, Any] = {"next": self._answer, "error": self._answer}
        self.answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def _answer(self, iq: Any, session: dict[str, Any]) -> None:
        self.session = session
        if not self.answer.done():
            self.answer.set_result(iq)

    async def wait(self) -> Any:
        try:
            return await asyncio.wait_for(asyncio.shield(self.answer), scenario.STEP_TIMEOUT)
        except asyncio.TimeoutError:
            return None

    async def start(self, jid: str, node: str) -> Any:
        self.client["xep_0050"].start_command(jid, node, self.session)
        return await self.wait()

    async def complete(self, payload: Any) -> Any:
        self.answer = asyncio.get_running_loop().create_future()
        self.session["payload"] = payload
        self.session["next"] = self._answer
        self.session["error"] = self._answer
        self.client["xep_0050"].complete_command(self.session)
        return await self.wait()


def submission(client: im.ImClient, form: Any) -> Any:
    """What a client sends back: the hidden fields as received (XEP-0004
    section 3.4) and the box checked."""
    submit = client["xep_0004"].make_form(ftype="submit")
    for field in policy.form_fields(form):
        if field.get("type") == "hidden" and field.get("var"):
            submit.add_field(
                var=field.get("var"),
                ftype="hidden",
                value=field.findtext(f"{{{policy.DATA_NS}}}value") or "",
            )
    submit.add_field(var="accept", ftype="boolean", value=True)
    return submit


async def run(args, report: scenario.Report) -> None:
    carol_jid, carol_pw = args.accounts["carol"]
    bob_jid, bob_pw = args.accounts["bob"]
    pol: policy.PolicyFile = args.policy
    token = secrets.token_hex(3)
    bob = phone = laptop = None
    try:
        # -- bob accepted before ---------------------------------------------
        bob = await im.open_session(report, args, "bob", bob_jid, bob_pw)
        if bob is None:
            return
        report.check(
            policy.stream_feature(bob) is None,
            "bob, who accepted before, is not announced a pending version in his stream features",
            im.short(policy.stream_feature(bob)),
        )
        await bob.sync()
        prompts = bob.received(policy.from_policy(bob))
        report.check(
            not prompts,
            "bob gets no prompt from the policy address",
            f"got {[im.short(m) for m in prompts]}",
        )

        # -- carol, two restricted sessions ----------------------------------
        phone = await im.open_session(report, args, "carol/phone", f"{carol_jid}/phone", carol_pw)
        if phone is None:
            return
        policy.check_feature(report, "carol/phone", phone, pol)
        if await policy.expect_prompt(report, "carol/phone", phone, pol) is None:
            return
        laptop = await im.open_session(
            report, args, "carol/laptop", f"{carol_jid}/laptop", carol_pw, plugins=COMMAND_PLUGINS
        )
        if laptop is None:
            return
        if await policy.expect_prompt(report, "carol/laptop", laptop, pol) is None:
            return
        await policy.check_refused(
            report, "carol/laptop", laptop, bob_jid, f"refused while restricted {token}", pol
        )
        await phone.sync()
        seen = laptop.received(im.is_presence("available", phone.full)) + phone.received(
            im.is_presence("available", laptop.full)
        )
        report.check(
            not seen,
            "carol: neither restricted session got the other's presence",
            f"got {[im.short(p) for p in seen]}",
        )

        # -- the command list ------------------------------------------------
        domain = laptop.boundjid.domain
        try:
            listing = await laptop["xep_0050"].get_commands(
                jid=domain, timeout=scenario.STEP_TIMEOUT
            )
            items = list(listing["disco_items"]["items"])
        except (IqError, IqTimeout) as err:
            items = []
            listing = getattr(err, "iq", None)
        ours = [item for item in items if item[1] == policy.COMMAND_NODE]
        report.check(
            len(ours) == 1 and str(ours[0][0]) == domain and bool(ours[0][2]),
            f"carol/laptop: the command list of {domain} has {policy.COMMAND_NODE}, with a name, "
            "while she is restricted",
            f"items {items}; {im.short(listing)}",
        )

        key = await policy.receipt_key(report, "carol/laptop (restricted)", laptop)

        # -- execute, then complete with the box checked ---------------------
        flow = CommandRun(laptop)
        first = await flow.start(domain, policy.COMMAND_NODE)
        command = command_of(first)
        form = command.find(f"{{{policy.DATA_NS}}}x") if command is not None else None
        if not report.check(
            first is not None
            and first["type"] == "result"
            and command.get("status") == "executing"
            and bool(command.get("sessionid")),
            "carol/laptop: executing the command returns status executing with a session id",
            im.short(first),
        ):
            return
        policy.check_form(report, "carol/laptop: the command", form, pol)
        done = await flow.complete(submission(laptop, form))
        command = command_of(done)
        notes = command.findall(f"{{{policy.COMMANDS_NS}}}note") if command is not None else []
        report.check(
            done is not None
            and done["type"] == "result"
            and command.get("status") == "completed"
            and len(notes) == 1
            and (notes[0].text or "").startswith("Accepted:")
            and f"version {pol.code}" in (notes[0].text or ""),
            "carol/laptop: completing it with accept=true returns status completed and a note "
            f"'Accepted: …, version {pol.code}'",
            im.short(done, 1500),
        )
        policy.check_receipt(
            report,
            "carol/laptop: the completed command",
            policy.receipt_in(command),
            pol,
            "adhoc",
            laptop.full,
            key,
        )

        # -- the other session is released too -------------------------------
        told = await phone.expect(
            lambda st: policy.from_policy(phone)(st)
            and "accepted from another session" in (im.message_body(st) or "")
        )
        bodies = [im.message_body(m) for m in phone.received(policy.from_policy(phone))]
        report.check(
            told is not None,
            "carol/phone: the policy address says the policy was accepted from another session",
            f"from the policy address: {bodies}",
        )
        if told is not None:
            policy.check_receipt(
                report,
                "carol/phone: that message",
                policy.receipt_in(told.xml),
                pol,
                "adhoc",
                laptop.full,
                key,
            )
        got = await asyncio.gather(
            laptop.expect(im.is_presence("available", phone.full)),
            phone.expect(im.is_presence("available", laptop.full)),
        )
        report.check(
            all(p is not None for p in got),
            "carol: each session got the other's held presence once released",
            f"laptop got phone's: {got[0] is not None}, phone got laptop's: {got[1] is not None}",
        )

        # -- chat -----------------------------------------------------------
        for name, client in (("carol/laptop", laptop), ("carol/phone", phone)):
            hello = f"hello bob from {name} {token}"
            client.send_message(mto=bob_jid, mbody=hello, mtype="chat")
            report.check(
                await bob.expect(im.is_message(body=hello, frm=client.full)) is not None,
                f"bob got {name}'s message",
                "none arrived",
            )
            reply = f"hello {name} {token}"
            bob.send_message(mto=client.full, mbody=reply, mtype="chat")
            report.check(
                await client.expect(im.is_message(body=reply, frm=bob.full)) is not None,
                f"{name} got bob's reply",
                "none arrived",
            )
        refused = bob.received(im.is_message(body=f"refused while restricted {token}"))
        report.check(
            not refused,
            "bob never got the message carol sent while restricted",
            f"got {[im.short(m) for m in refused]}",
        )

        # -- nothing left to accept ------------------------------------------
        try:
            again = await laptop["xep_0050"].send_command(
                domain, policy.COMMAND_NODE, timeout=scenario.STEP_TIMEOUT
            )
        except (IqError, IqTimeout) as err:
            again = getattr(err, "iq", None)
        command = command_of(again)
        note = command.findtext(f"{{{policy.COMMANDS_NS}}}note") if command is not None else None
        report.check(
            command is not None
            and command.get("status") == "completed"
            and f"You accepted version {pol.code}" in (note or "")
            and "by adhoc" in (note or ""),
            "carol/laptop: executing the command again completes at once with a note saying "
            "what the account accepted",
            im.short(again, 1500),
        )

        for name, client in (("carol/laptop", laptop), ("carol/phone", phone), ("bob", bob)):
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM,
                f"{name} logged out",
                f"disconnect reason: {reason}",
            )
    finally:
        await im.close_all((laptop, phone, bob))


def main() -> int:
    args = policy.parse_args(policy.policy_parser(__doc__.splitlines()[0], ROLES), ROLES)
    return scenario.main(run, args, "policy adhoc")


if __name__ == "__main__":
    sys.exit(main())
