"""Shared pieces of the usage-policy scenarios (xeps/policy-acceptance.md).

Built on ``im``: the same command line and clients, plus ``--policy-file``,
the file the runner published with ``causeriectl policy publish``. The
scenarios read the title, the categories and the text from it, and compute
the version themselves: the SHA-256 of the file's exact bytes (section 5.1).

The clients know nothing of the extension: they log in and bind as usual,
read the prompt the policy address sends as a chat message, and accept by
typing the reply it asks for, or through the XEP-0050 ad-hoc command.
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import re
import struct
import time
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import im
import scenario

POLICY_NS = "urn:causerie:policy:0"
FORM_TYPE = "urn:causerie:policy:0#accept"
COMMAND_NODE = FORM_TYPE
DATA_NS = "jabber:x:data"
COMMANDS_NS = "http://jabber.org/protocol/commands"
DISCO_INFO_NS = "http://jabber.org/protocol/disco#info"
KEY_FIELD = "policy-receipt-key"
HEX64 = re.compile(r"^[0-9a-f]{64}$")

# The last line of every prompt (section 6.1); the code is what users type.
INSTRUCTION = re.compile(r"^Reply ACCEPT ([0-9a-f]{4}) to accept, or DECLINE\.$")


class PolicyFile:
    """What the scenarios need to know of the published policy file."""

    def __init__(self, path: str) -> None:
        raw = Path(path).read_bytes()
        self.version = hashlib.sha256(raw).hexdigest()
        self.code = self.version[:4]
        lines = raw.decode("utf-8").splitlines(keepends=True)
        fences = [i for i, line in enumerate(lines) if line.strip() == "+++"]
        if len(fences) < 2 or fences[0] != 0:
            raise ValueError(f"{path}: no front matter between two +++ lines")
        front = tomllib.loads("".join(lines[1 : fences[1]]))
        self.title: str = front["title"]
        self.categories: list[str] = list(front.get("categories", []))
        self.text = "".join(lines[fences[1] + 1 :])


def policy_parser(description: str, roles: list[str]) -> argparse.ArgumentParser:
    parser = im.im_parser(description, roles)
    parser.add_argument(
        "--policy-file",
        required=True,
        help="the policy file published on the server (its SHA-256 is the version)",
    )
    return parser


def parse_args(parser: argparse.ArgumentParser, roles: list[str]) -> argparse.Namespace:
    args = im.accounts(parser, roles)
    args.policy = PolicyFile(args.policy_file)
    return args


def policy_jid(client: im.ImClient) -> str:
    return f"policy@{client.boundjid.domain}"


def from_policy(client: im.ImClient) -> im.Predicate:
    """A chat message from the policy address of the client's domain."""
    return im.is_message(frm=policy_jid(client), mtype="chat")


def stream_feature(client: im.ImClient) -> Any:
    """The <policy/> stream feature of the stream that offered <bind/>, or None."""
    for features in client.features_xml:
        if features.find("{urn:ietf:params:xml:ns:xmpp-bind}bind") is not None:
            return features.find(f"{{{POLICY_NS}}}policy")
    return None


def check_feature(report: scenario.Report, name: str, client: im.ImClient, pol: PolicyFile) -> None:
    feature = stream_feature(client)
    report.check(
        feature is not None
        and feature.get("required") == "true"
        and feature.get("version") == pol.version
        and feature.get("short") == pol.code,
        f"{name}: the stream features next to <bind/> announce the pending version "
        f"(<policy required='true' short='{pol.code}'/>), and slixmpp bound all the same",
        "features: "
        + "; ".join(
            " ".join(child.tag for child in features) for features in client.features_xml
        ),
    )


def form_fields(x: Any) -> list[Any]:
    return x.findall(f"{{{DATA_NS}}}field") if x is not None else []


def field_value(x: Any, var: str) -> str | None:
    for field in form_fields(x):
        if field.get("var") == var:
            value = field.find(f"{{{DATA_NS}}}value")
            return None if value is None else (value.text or "")
    return None


def check_form(report: scenario.Report, what: str, x: Any, pol: PolicyFile) -> None:
    """The acceptance form of section 5.8, whether in the prompt or in the command."""
    accept = [f for f in form_fields(x) if f.get("var") == "accept"]
    fixed = [
        (f.findtext(f"{{{DATA_NS}}}value") or "")
        for f in form_fields(x)
        if f.get("type") == "fixed"
    ]
    text_lines = [line for line in pol.text.splitlines() if line.strip()]
    report.check(
        x is not None
        and x.get("type") == "form"
        and field_value(x, "FORM_TYPE") == FORM_TYPE
        and field_value(x, "version") == pol.version
        and len(accept) == 1
        and accept[0].get("type") == "boolean"
        and accept[0].find(f"{{{DATA_NS}}}required") is not None
        and all(line in fixed for line in text_lines)
        and all(f"- {c}" in fixed for c in pol.categories),
        f"{what}: a form of FORM_TYPE {FORM_TYPE} with the text and the categories as "
        "fixed fields, the version hidden and a required boolean 'accept'",
        "no form" if x is None else _xml(x),
    )


def _xml(elem: Any) -> str:
    text = ET.tostring(elem, encoding="unicode")
    return text if len(text) <= 1500 else text[:1500] + "…"


async def expect_prompt(
    report: scenario.Report, name: str, client: im.ImClient, pol: PolicyFile, since: int = 0
) -> str | None:
    """Waits for the prompt from the policy address and checks it; returns the
    code read from its last line, which is what a user would type."""
    prompt = await client.expect(from_policy(client), since=since)
    if not report.check(
        prompt is not None,
        f"{name}: got a chat message from {policy_jid(client)} after binding",
        "none arrived",
    ):
        return None
    body = im.message_body(prompt) or ""
    last = body.rstrip("\n").rsplit("\n", 1)[-1]
    match = INSTRUCTION.match(last)
    report.check(
        match is not None,
        f"{name}: the prompt's last line is the instruction 'Reply ACCEPT code to accept, or DECLINE.'",
        f"last line: {last!r}",
    )
    text_lines = [line for line in pol.text.splitlines() if line.strip()]
    missing = [
        piece
        for piece in [pol.title, *text_lines, *(f"- {c}" for c in pol.categories)]
        if piece not in body
    ]
    report.check(
        not missing,
        f"{name}: the prompt carries the title, the whole text and the disclosed categories",
        f"missing: {missing!r}",
    )
    check_form(report, f"{name}: the prompt", prompt.xml.find(f"{{{DATA_NS}}}x"), pol)
    if match is None:
        return None
    code = match.group(1)
    report.check(
        code == pol.code,
        f"{name}: the code in the prompt is the first four hex digits of the version ({pol.code})",
        f"code {code!r}",
    )
    return code


def receipt_in(elem: Any) -> Any:
    return elem.find(f"{{{POLICY_NS}}}receipt") if elem is not None else None


async def receipt_key(report: scenario.Report, name: str, client: im.ImClient) -> str | None:
    """The fingerprint of the server's receipt key: SHA-256 of the public key
    the server publishes in its disco#info form (section 4.1), in hex."""
    query = ET.Element(f"{{{DISCO_INFO_NS}}}query")
    kind, reply = await client.query(client.raw_iq("get", query, to=client.boundjid.domain))
    public = None
    if kind == "result":
        for x in reply.xml.iter(f"{{{DATA_NS}}}x"):
            if field_value(x, "FORM_TYPE") == POLICY_NS:
                public = field_value(x, KEY_FIELD)
    ok = public is not None and HEX64.match(public) is not None
    report.check(
        ok,
        f"{name}: the server's disco#info has the {POLICY_NS} form with its receipt key "
        "(64 hex digits)",
        f"{kind}: {im.short(reply, 1500)}",
    )
    return hashlib.sha256(bytes.fromhex(public)).hexdigest() if ok else None


def canonical_encoding(receipt: Any) -> bytes:
    """The canonical encoding of a receipt, version 1 (section 5.9)."""

    def string(text: str) -> bytes:
        raw = text.encode("utf-8")
        return struct.pack(">Q", len(raw)) + raw

    def optional(text: str | None) -> bytes:
        return b"\x00" if text is None else b"\x01" + string(text)

    jid = receipt.findtext(f"{{{POLICY_NS}}}jid") or ""
    bare, _, resource = jid.partition("/")
    username, _, domain = bare.partition("@")
    accepted = calendar.timegm(time.strptime(receipt.get("accepted"), "%Y-%m-%dT%H:%M:%SZ"))
    return b"".join(
        [
            string("causerie-receipt-v1"),
            struct.pack(">q", int(receipt.get("seq"))),
            string(username),
            string(domain),
            string(resource),
            string(receipt.get("version")),
            string(receipt.get("method")),
            struct.pack(">q", accepted),
            optional(receipt.findtext(f"{{{POLICY_NS}}}address")),
            optional(receipt.findtext(f"{{{POLICY_NS}}}client")),
            string(receipt.get("prev")),
        ]
    )


def check_receipt(
    report: scenario.Report,
    what: str,
    receipt: Any,
    pol: PolicyFile,
    method: str,
    jid: str,
    key: str | None,
) -> None:
    """A <receipt/> (section 4.5) for `jid` accepting the published version by
    `method`; `key` is the fingerprint it must name (from ``receipt_key``)."""
    ok = (
        receipt is not None
        and receipt.get("version") == pol.version
        and receipt.get("method") == method
        and (receipt.get("seq") or "").isdigit()
        and all(HEX64.match(receipt.get(a) or "") for a in ("hash", "prev"))
        and re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", receipt.get("accepted") or "")
        and receipt.findtext(f"{{{POLICY_NS}}}jid") == jid
        and receipt.findtext(f"{{{POLICY_NS}}}address") == "127.0.0.1"
        and bool(receipt.findtext(f"{{{POLICY_NS}}}signature"))
    )
    detail = "no receipt" if receipt is None else _xml(receipt)
    report.check(
        bool(ok),
        f"{what}: a <receipt/> for {jid}, method {method}, the published version, "
        "address 127.0.0.1, with seq, accepted, hash, prev and signature",
        detail,
    )
    if not ok:
        return
    digest = hashlib.sha256(canonical_encoding(receipt)).hexdigest()
    report.check(
        digest == receipt.get("hash"),
        f"{what}: the receipt's hash is the SHA-256 of its canonical encoding (section 5.9)",
        f"computed {digest}; {detail}",
    )
    report.check(
        key is not None and receipt.get("key") == key,
        f"{what}: the receipt's key is the fingerprint of the published receipt key, "
        "64 lowercase hex digits (sections 4.1, 4.5)",
        f"key={receipt.get('key')!r}, expected {key!r}",
    )


async def accept_by_chat(
    report: scenario.Report,
    name: str,
    client: im.ImClient,
    code: str,
    pol: PolicyFile,
    key: str | None,
) -> int | None:
    """Replies 'ACCEPT code' to the policy address; returns the inbox position
    of the confirmation, which is checked here."""
    mark = client.mark()
    client.send_message(mto=policy_jid(client), mbody=f"ACCEPT {code}", mtype="chat")
    index = await client.expect_index(
        lambda st: from_policy(client)(st) and (im.message_body(st) or "").startswith("Accepted:"),
        since=mark,
    )
    others = client.received(from_policy(client), mark)
    if not report.check(
        index is not None,
        f"{name}: replied 'ACCEPT {code}' and got a confirmation starting with 'Accepted:'",
        f"from the policy address: {[im.message_body(m) for m in others]}",
    ):
        return None
    confirmation = client.inbox[index]
    body = im.message_body(confirmation) or ""
    report.check(
        pol.title in body and f"version {pol.code}" in body,
        f"{name}: the confirmation names the title and version {pol.code}",
        repr(body),
    )
    check_receipt(
        report,
        f"{name}: the confirmation",
        receipt_in(confirmation.xml),
        pol,
        "chat",
        client.full,
        key,
    )
    return index


async def check_refused(
    report: scenario.Report, name: str, client: im.ImClient, to: str, body: str, pol: PolicyFile
) -> None:
    """A chat message from a restricted session to `to` bounces with
    policy-violation (type auth) and <acceptance-required/> (section 4.3)."""
    mark = client.mark()
    client.send_message(mto=to, mbody=body, mtype="chat")
    bounce = await client.expect(im.is_message(mtype="error", frm=to), since=mark)
    error = bounce.xml.find(f"{{{im.CLIENT_NS}}}error") if bounce is not None else None
    required = error.find(f"{{{POLICY_NS}}}acceptance-required") if error is not None else None
    text = error.findtext(f"{{{im.STANZAS_NS}}}text") if error is not None else None
    report.check(
        im.error_condition(bounce) == "policy-violation" and im.error_type(bounce) == "auth",
        f"{name}: a chat message to {to} before accepting is refused with policy-violation, type auth",
        im.short(bounce),
    )
    report.check(
        required is not None
        and required.get("version") == pol.version
        and f"ACCEPT {pol.code}" in (text or ""),
        f"{name}: the error names the version (<acceptance-required/>) and says how to accept",
        im.short(bounce),
    )


def own_presence(client: im.ImClient) -> im.Predicate:
    """The session's own available presence, broadcast back to it (RFC 6121 section 4.2.2)."""
    return im.is_presence("available", client.full)
