// The xmpp.js side of a conversation with a slixmpp user.
//
// Started by slixmpp/with_xmppjs.py, which plays the other user and
// answers each step. This client:
//
//  1. connects over plain TCP, upgrades with STARTTLS (RFC 6120 section 5),
//     verifying the server certificate for the XMPP domain with Node's own
//     TLS checks (the self-signed certificate is trusted through
//     NODE_EXTRA_CA_CERTS, nothing turns verification off), authenticates
//     with SCRAM-SHA-1 (the SCRAM mechanism xmpp.js implements) and binds a
//     resource;
//  2. sends initial presence and fetches its roster;
//  3. adds the slixmpp user to its roster with a name and a group, and
//     checks the roster push (RFC 6121 section 2.3);
//  4. subscribes to the slixmpp user and approves the request back, with the
//     roster state pushed at each step, until both sides show 'both'
//     (RFC 6121 section 3.1), and gets the slixmpp user's presence;
//  5. sends a chat message and gets the reply from the slixmpp user's full
//     JID with the exact body;
//  6. changes its presence (seen by the peer) and sees the peer's change;
//  7. closes its stream; the server closes its side.
//
// Prints one line per check, "ok - LABEL: ..." or "not ok - LABEL: ...",
// and exits 1 when a check failed or none ran.
//
// Usage: node conversation.mjs --modules DIR --host 127.0.0.1 --port PORT
//   --domain localhost --jid USER@DOMAIN --password PW --peer PEER-FULL-JID
//   --token TOKEN [--label LABEL] [--log-file FILE]
// (DIR is the node_modules folder holding @xmpp/client; FILE receives the
// elements sent and received.)

import fs from "node:fs";
import path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
  options: {
    modules: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    domain: { type: "string", default: "localhost" },
    jid: { type: "string" },
    password: { type: "string" },
    peer: { type: "string" },
    token: { type: "string" },
    label: { type: "string", default: "xmpp.js" },
    "log-file": { type: "string" },
  },
});
for (const name of ["modules", "port", "jid", "password", "peer", "token"]) {
  if (!opt[name]) {
    console.error(`missing --${name}`);
    process.exit(2);
  }
}

// Each wait on the server or the peer; generous, as the machine may be busy.
const STEP_MS = 20000;
// The whole conversation, below the runner's own timeout.
const OVERALL_MS = 90000;

const ROSTER = "jabber:iq:roster";

let passed = 0;
let failed = 0;
function check(condition, what, detail = "") {
  if (condition) {
    passed += 1;
    console.log(`ok - ${opt.label}: ${what}`);
  } else {
    failed += 1;
    console.log(`not ok - ${opt.label}: ${what}${detail ? ` (${detail})` : ""}`);
  }
  return condition;
}

function finish() {
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

const overall = setTimeout(() => {
  check(false, `conversation finished within ${OVERALL_MS / 1000}s`, "timed out");
  finish();
}, OVERALL_MS);

const entry = pathToFileURL(path.join(opt.modules, "@xmpp", "client", "index.js")).href;
const { client, xml } = await import(entry);

const bare = (jid) => String(jid).split("/")[0];
const peerBare = bare(opt.peer);
const [username, domainOfJid] = opt.jid.split("@");

// -- what arrives --------------------------------------------------------

const inbox = [];
let wake = null;
function record(stanza) {
  inbox.push(stanza);
  if (wake) {
    wake();
    wake = null;
  }
}

/** The first stanza at or after `since` matching `pred`, or null after `ms`. */
async function expect(pred, since = 0, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  let index = since;
  for (;;) {
    for (; index < inbox.length; index += 1) {
      if (pred(inbox[index])) return inbox[index];
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) return null;
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, remaining);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

const isPresence = (type, from) => (st) =>
  st.is("presence") &&
  (st.attrs.type || "available") === type &&
  (from.includes("/") ? st.attrs.from === from : bare(st.attrs.from || "") === from);

function rosterItem(st, jid) {
  const query = st.getChild("query", ROSTER);
  if (!query) return null;
  const item = query.getChildren("item").find((i) => i.attrs.jid === jid);
  if (!item) return null;
  return {
    subscription: item.attrs.subscription || "none",
    ask: item.attrs.ask || null,
    name: item.attrs.name || null,
    groups: item
      .getChildren("group")
      .map((g) => g.text())
      .sort(),
  };
}

const describe = (item) =>
  item ? `subscription=${item.subscription}${item.ask ? ` ask=${item.ask}` : ""}` : "no item";

const isPush = (jid, subscription, ask = null) => (st) => {
  if (!st.is("iq") || st.attrs.type !== "set") return false;
  const item = rosterItem(st, jid);
  return item !== null && item.subscription === subscription && item.ask === ask;
};

// -- the conversation ----------------------------------------------------

let offered = [];
let usedMechanism = null;
const sent = [];

const xmpp = client({
  service: `xmpp://${opt.host}:${opt.port}`,
  domain: opt.domain,
  // With the username xmpp.js also puts the account in the 'from' of the
  // stream headers it sends once TLS is up (RFC 6120 section 4.7.1).
  username,
  resource: "xmppjs",
  // Called with the mechanisms both sides support, best first for xmpp.js.
  credentials: async (authenticate, mechanisms) => {
    offered = mechanisms;
    usedMechanism = mechanisms.includes("SCRAM-SHA-1") ? "SCRAM-SHA-1" : mechanisms[0];
    await authenticate({ username, password: opt.password }, usedMechanism);
  },
});
// A failed step must fail, not be retried behind the scenario's back.
xmpp.reconnect.stop();
xmpp.on("error", (err) => console.error(`xmpp.js error: ${err}`));
xmpp.on("send", (el) => sent.push(el.name));
if (opt["log-file"]) {
  const log = fs.createWriteStream(opt["log-file"], { flags: "a" });
  xmpp.on("send", (el) => log.write(`${new Date().toISOString()} SEND: ${el}\n`));
  xmpp.on("element", (el) => log.write(`${new Date().toISOString()} RECV: ${el}\n`));
}
// "close" is the status xmpp.js enters when the server's </stream:stream>
// arrives.
const statuses = [];
xmpp.on("status", (status) => statuses.push(status));
xmpp.on("stanza", record);
// Roster pushes are IQ-sets: answer them (RFC 6121 section 2.1.6), which
// also records them through the "stanza" event.
xmpp.iqCallee.set(ROSTER, "query", (ctx) => bare(ctx.stanza.attrs.from || opt.jid) === opt.jid);

async function request(iq) {
  try {
    return { kind: "result", reply: await xmpp.iqCaller.request(iq, STEP_MS) };
  } catch (err) {
    return { kind: "error", reply: err.element ?? null, err };
  }
}

async function run() {
  check(domainOfJid === opt.domain, `account ${opt.jid} is in the domain ${opt.domain}`);
  let address;
  try {
    address = await Promise.race([
      xmpp.start(),
      new Promise((_, reject) => setTimeout(() => reject(new Error("no session in time")), STEP_MS)),
    ]);
  } catch (err) {
    check(false, "logged in over STARTTLS", String(err));
    return;
  }
  check(true, `logged in as ${address}`);
  check(sent.includes("starttls"), "the stream was upgraded with STARTTLS", `sent: ${sent.join(", ")}`);
  const tlsSocket = xmpp.socket?.socket;
  const cert = tlsSocket?.getPeerCertificate?.() ?? {};
  check(
    tlsSocket?.authorized === true && String(cert.subjectaltname || "").includes(`DNS:${opt.domain}`),
    `server certificate verified for ${opt.domain} over ${tlsSocket?.getProtocol?.()}`,
    `authorized=${tlsSocket?.authorized}, error=${tlsSocket?.authorizationError}, san=${cert.subjectaltname}`,
  );
  check(
    usedMechanism === "SCRAM-SHA-1",
    "authenticated with SCRAM-SHA-1",
    `offered and supported: ${offered.join(", ")}`,
  );
  check(bare(address) === opt.jid && String(address).includes("/"), `bound a full JID for ${opt.jid}`);
  const self = String(address);

  await xmpp.send(xml("presence", {}, xml("status", {}, "xmpp.js here")));
  let { kind, reply } = await request(xml("iq", { type: "get" }, xml("query", { xmlns: ROSTER })));
  check(kind === "result", "roster fetched", `${kind}: ${reply}`);

  // Roster add (RFC 6121 section 2.3).
  let mark = inbox.length;
  ({ kind, reply } = await request(
    xml(
      "iq",
      { type: "set" },
      xml(
        "query",
        { xmlns: ROSTER },
        xml("item", { jid: peerBare, name: "slixmpp peer ✓" }, xml("group", {}, "Interop")),
      ),
    ),
  ));
  check(kind === "result", "roster add of the slixmpp user accepted", `${kind}: ${reply}`);
  let push = await expect(isPush(peerBare, "none"), mark);
  const added = push ? rosterItem(push, peerBare) : null;
  check(
    added !== null && added.name === "slixmpp peer ✓" && added.groups.join() === "Interop",
    "roster push with the name and group set",
    push ? String(push) : "no push",
  );

  // Subscription handshake (RFC 6121 section 3.1).
  mark = inbox.length;
  await xmpp.send(xml("presence", { to: peerBare, type: "subscribe" }));
  push = await expect(isPush(peerBare, "none", "subscribe"), mark);
  check(push !== null, "roster push: subscription none, ask=subscribe", "none arrived");
  const approved = await expect(isPresence("subscribed", peerBare), mark);
  check(approved !== null, "the slixmpp user approved the subscription", "no 'subscribed'");
  push = await expect(isPush(peerBare, "to"), mark);
  check(push !== null, "roster push: subscription to", "none arrived");
  const peerPresence = await expect(isPresence("available", opt.peer), mark);
  check(
    peerPresence !== null && peerPresence.getChildText("status") === "slixmpp here",
    "got the slixmpp user's presence (status 'slixmpp here')",
    peerPresence ? String(peerPresence) : "none arrived",
  );
  const asked = await expect(isPresence("subscribe", peerBare), mark);
  check(asked !== null, "the slixmpp user asked to subscribe back", "no 'subscribe'");
  mark = inbox.length;
  await xmpp.send(xml("presence", { to: peerBare, type: "subscribed" }));
  push = await expect(isPush(peerBare, "both"), mark);
  check(push !== null, "roster push: subscription both", "none arrived");
  ({ kind, reply } = await request(xml("iq", { type: "get" }, xml("query", { xmlns: ROSTER }))));
  const item = kind === "result" ? rosterItem(reply, peerBare) : null;
  check(
    item !== null && item.subscription === "both" && item.ask === null && item.name === "slixmpp peer ✓",
    "roster get lists the slixmpp user with subscription both and the name kept",
    describe(item),
  );

  // Messages both ways.
  mark = inbox.length;
  const hello = `hello from xmpp.js ${opt.token} <&> ✓`;
  const answer = `hello from slixmpp ${opt.token} ’quoted’ <b>&amp;</b>`;
  await xmpp.send(xml("message", { to: peerBare, type: "chat" }, xml("body", {}, hello)));
  const got = await expect(
    (st) => st.is("message") && st.getChildText("body") === answer,
    mark,
  );
  if (check(got !== null, "got the slixmpp user's reply with the exact body", "none arrived")) {
    check(got.attrs.from === opt.peer, "the reply is from the slixmpp user's full JID", `from=${got.attrs.from}`);
    check(got.attrs.to === self, "the reply is to this client's full JID", `to=${got.attrs.to}`);
  }

  // Presence both ways.
  mark = inbox.length;
  await xmpp.send(xml("presence", {}, xml("show", {}, "away"), xml("status", {}, `xmpp.js away ${opt.token}`)));
  const change = await expect(
    (st) => isPresence("available", opt.peer)(st) && st.getChildText("status") === `slixmpp back ${opt.token}`,
    mark,
  );
  check(change !== null, "saw the slixmpp user's change of presence", "none arrived");

  const before = statuses.length;
  try {
    await xmpp.stop();
  } catch (err) {
    console.error(`xmpp.js stop: ${err}`);
  }
  const closing = statuses.slice(before);
  check(
    closing.includes("close") && xmpp.status === "offline",
    "closed the stream; the server closed its side (RFC 6120 section 4.4)",
    `statuses: ${closing.join(" → ")}`,
  );
}

try {
  await run();
} catch (err) {
  check(false, "conversation ran to the end", String(err?.stack ?? err));
}
clearTimeout(overall);
finish();
