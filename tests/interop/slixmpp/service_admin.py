#!/usr/bin/env python3
"""Service administration (XEP-0133) with slixmpp's xep_0133 plugin.

The server runs with admin.admins naming the first account ('admin'); the
second ('user') is an ordinary account; a third JID ('--new-account') does
not exist yet. Both log in with slixmpp's xep_0030, xep_0004, xep_0050 and
xep_0133 plugins, the way an administration client does.

- The admin's command list (disco#items of the commands node) has the
  XEP-0133 commands, each on the server's JID and with a name; the user's
  has none of them, and executing add-user as the user is refused with
  forbidden.
- add-user: executing it (xep_0133.add_user) returns status executing, a
  session id and the form (FORM_TYPE http://jabber.org/protocol/admin,
  accountjid, password, password-verify); completing it with the filled-in
  form returns status completed and an info note. The new account then
  logs in.
- get-online-users-list: its form offers max_items; completed with 25, the
  result form's onlineuserjids lists the admin, the user and the new
  account (bare JIDs).
- get-online-users-num answers at once (status completed) with at least 3.
- Completing the add-user command again with its finished session id is
  refused with bad-request (XEP-0050 bad-sessionid).

Example:
  service_admin.py --port 5222 --ca-file localhost.crt \\
      --account alice@localhost pw1 --account bob@localhost pw2 \\
      --new-account dave@localhost pw3
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from slixmpp.exceptions import IqError, IqTimeout

import im
import scenario

ROLES = ["admin", "user"]
PLUGINS = ["xep_0030", "xep_0004", "xep_0050", "xep_0133"]
ADMIN_NS = "http://jabber.org/protocol/admin"
COMMANDS_NS = "http://jabber.org/protocol/commands"
DATA_NS = "jabber:x:data"
# What this server offers (docs/admin-api.md).
NODES = [
    "add-user",
    "delete-user",
    "disable-user",
    "reenable-user",
    "end-user-session",
    "change-user-password",
    "get-online-users-list",
    "get-online-users",
    "get-online-users-num",
    "get-registered-users-num",
    "announce",
]


def command_of(iq: Any) -> Any:
    return iq.xml.find(f"{{{COMMANDS_NS}}}command") if iq is not None else None


def form_of(iq: Any) -> Any:
    command = command_of(iq)
    return command.find(f"{{{DATA_NS}}}x") if command is not None else None


def fields(form: Any) -> dict[str, Any]:
    if form is None:
        return {}
    return {f.get("var"): f for f in form.findall(f"{{{DATA_NS}}}field") if f.get("var")}


def values(form: Any, var: str) -> list[str]:
    field = fields(form).get(var)
    if field is None:
        return []
    return [v.text or "" for v in field.findall(f"{{{DATA_NS}}}value")]


def note_of(iq: Any) -> tuple[str | None, str]:
    command = command_of(iq)
    note = command.find(f"{{{COMMANDS_NS}}}note") if command is not None else None
    if note is None:
        return None, ""
    return note.get("type"), note.text or ""


class CommandRun:
    """One run of a command through xep_0050's client workflow (started by
    an xep_0133 method); each answer of the server is handed over through a
    future."""

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

    async def start(self, method: Callable[..., None]) -> Any:
        method(session=self.session)
        return await self.wait()

    async def complete(self, payload: Any) -> Any:
        self.answer = asyncio.get_running_loop().create_future()
        self.session["payload"] = payload
        self.session["next"] = self._answer
        self.session["error"] = self._answer
        self.client["xep_0050"].complete_command(self.session)
        return await self.wait()


def submission(client: im.ImClient, filled: dict[str, str]) -> Any:
    """A submitted form of the profile: the hidden FORM_TYPE (XEP-0004
    section 3.4: hidden fields go back as received) and the given fields."""
    form = client["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN_NS)
    for name, value in filled.items():
        form.add_field(var=name, value=value)
    return form


async def command_list(client: im.ImClient) -> tuple[list[tuple[str, str, str]], Any]:
    try:
        reply = await client["xep_0133"].get_commands(timeout=scenario.STEP_TIMEOUT)
    except (IqError, IqTimeout) as err:
        return [], getattr(err, "iq", None)
    items = [(str(j), n or "", name or "") for j, n, name in reply["disco_items"]["items"]]
    return items, reply


async def run(args, report: scenario.Report) -> None:
    admin_jid, admin_pw = args.accounts["admin"]
    user_jid, user_pw = args.accounts["user"]
    new_jid, new_pw = args.new_account
    admin = user = new = None
    try:
        admin = await im.open_session(report, args, "admin", admin_jid, admin_pw, plugins=PLUGINS)
        if admin is None:
            return
        user = await im.open_session(report, args, "user", user_jid, user_pw, plugins=PLUGINS)
        if user is None:
            return
        domain = admin.boundjid.domain

        # -- who sees the commands -------------------------------------------
        items, reply = await command_list(admin)
        ours = {node.rpartition("#")[2]: (jid, name) for jid, node, name in items
                if node.startswith(ADMIN_NS + "#")}
        report.check(
            all(n in ours and ours[n][0] == domain and ours[n][1] for n in NODES),
            f"admin: the command list of {domain} has the {len(NODES)} XEP-0133 commands, "
            "on the server's JID, each with a name",
            f"items {items}; {im.short(reply)}",
        )
        items, reply = await command_list(user)
        theirs = [node for _, node, _ in items if node.startswith(ADMIN_NS)]
        report.check(
            not theirs and reply is not None and reply["type"] == "result",
            "user: the command list has none of the administration commands",
            f"items {items}; {im.short(reply)}",
        )
        refused = await CommandRun(user).start(user["xep_0133"].add_user)
        report.check(
            refused is not None
            and refused["type"] == "error"
            and im.error_condition(refused) == "forbidden",
            "user: executing add-user is refused with forbidden",
            im.short(refused),
        )

        # -- add-user ------------------------------------------------------
        flow = CommandRun(admin)
        first = await flow.start(admin["xep_0133"].add_user)
        command = command_of(first)
        form = form_of(first)
        found = fields(form)
        report.check(
            first is not None
            and first["type"] == "result"
            and command is not None
            and command.get("status") == "executing"
            and bool(command.get("sessionid"))
            and form is not None
            and form.get("type") == "form",
            "admin: executing add-user returns status executing, a session id and a form",
            im.short(first, 1500),
        )
        report.check(
            values(form, "FORM_TYPE") == [ADMIN_NS]
            and found.get("FORM_TYPE") is not None
            and found["FORM_TYPE"].get("type") == "hidden"
            and found.get("accountjid") is not None
            and found["accountjid"].get("type") == "jid-single"
            and found.get("password") is not None
            and found["password"].get("type") == "text-private"
            and "password-verify" in found,
            "admin: the add-user form has the hidden FORM_TYPE of XEP-0133, accountjid "
            "(jid-single), password and password-verify (text-private)",
            im.short(first, 1500),
        )
        sessionid = command.get("sessionid") if command is not None else None
        done = await flow.complete(
            submission(
                admin, {"accountjid": new_jid, "password": new_pw, "password-verify": new_pw}
            )
        )
        kind, text = note_of(done)
        report.check(
            done is not None
            and done["type"] == "result"
            and command_of(done) is not None
            and command_of(done).get("status") == "completed"
            and command_of(done).get("sessionid") == sessionid
            and kind == "info"
            and new_jid in text,
            f"admin: completing add-user for {new_jid} returns status completed with an info note",
            im.short(done, 1500),
        )
        new = await im.open_session(report, args, "new account", new_jid, new_pw)
        if new is None:
            return

        # -- the finished session is gone ------------------------------------
        kind, reply = await admin.query(
            _command_iq(admin, domain, "add-user", "complete", sessionid,
                        submission(admin, {"accountjid": new_jid, "password": new_pw}))
        )
        report.check(
            kind == "error"
            and im.error_condition(reply) == "bad-request"
            and reply.xml.find(f"{{{im.CLIENT_NS}}}error/{{{COMMANDS_NS}}}bad-sessionid")
            is not None,
            "admin: completing the finished add-user again is refused with bad-sessionid",
            f"{kind}: {im.short(reply)}",
        )

        # -- get-online-users-list -------------------------------------------
        flow = CommandRun(admin)
        first = await flow.start(admin["xep_0133"].get_online_users_list)
        options = []
        max_items = fields(form_of(first)).get("max_items")
        if max_items is not None:
            options = [o.findtext(f"{{{DATA_NS}}}value") for o in
                       max_items.findall(f"{{{DATA_NS}}}option")]
        report.check(
            command_of(first) is not None
            and command_of(first).get("status") == "executing"
            and "25" in options
            and "none" in options,
            "admin: get-online-users-list asks for max_items (25 … none)",
            im.short(first, 1500),
        )
        done = await flow.complete(submission(admin, {"max_items": "25"}))
        listed = values(form_of(done), "onlineuserjids")
        expected = {admin.bare, user.bare, new.bare}
        report.check(
            command_of(done) is not None
            and command_of(done).get("status") == "completed"
            and form_of(done) is not None
            and form_of(done).get("type") == "result"
            and expected <= set(listed),
            f"admin: the online users listed are bare JIDs including {sorted(expected)}",
            im.short(done, 1500),
        )

        # -- get-online-users-num --------------------------------------------
        counted = await CommandRun(admin).start(admin["xep_0133"].get_online_users_num)
        number = values(form_of(counted), "onlineusersnum")
        report.check(
            command_of(counted) is not None
            and command_of(counted).get("status") == "completed"
            and len(number) == 1
            and number[0].isdigit()
            and int(number[0]) >= 3,
            "admin: get-online-users-num completes at once with the number of online users",
            im.short(counted, 1500),
        )

        for name, client in (("new account", new), ("user", user), ("admin", admin)):
            reason = await client.close()
            report.check(
                reason == scenario.END_OF_STREAM, f"{name} logged out", f"reason: {reason}"
            )
    finally:
        await im.close_all((admin, user, new))


def _command_iq(client: im.ImClient, to: str, name: str, action: str, sessionid: Any,
                form: Any) -> Any:
    iq = client.Iq()
    iq["type"] = "set"
    iq["to"] = to
    iq["command"]["node"] = f"{ADMIN_NS}#{name}"
    iq["command"]["action"] = action
    if sessionid:
        iq["command"]["sessionid"] = sessionid
    iq["command"].append(form)
    return iq


def main() -> int:
    parser = im.im_parser(__doc__.splitlines()[0], ROLES)
    parser.add_argument(
        "--new-account",
        nargs=2,
        metavar=("JID", "PASSWORD"),
        required=True,
        help="an account that does not exist yet, for the admin to add",
    )
    args = im.accounts(parser, ROLES)
    return scenario.main(run, args, "service admin")


if __name__ == "__main__":
    sys.exit(main())
