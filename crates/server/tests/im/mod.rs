//! Helpers shared by the instant-messaging end-to-end tests (RFC 6121 and the IM extensions): a
//! server with accounts, logins, IQ round trips, roster payloads, and barriers that make "nothing
//! arrived" checks exact instead of timed.
//!
//! Barriers. Stanzas a session sends are processed in order, each to completion, before the
//! session reads the next one; so once the answer to a ping arrives, everything the session sent
//! before it has been routed, and whatever was routed to another session is in that session's
//! queue ahead of anything queued later. Roster and presence work runs on per-account worker
//! queues: a roster get is answered from the account's queue, so its answer arrives after the
//! effects of every presence job queued for that account before it. [`settle`] uses that.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use causerie_config::Config;
use causerie_testkit::client::{Client, ClientConfig, ClientError, Negotiation, TlsMode};
use causerie_testkit::harness::TestServer;
use causerie_xml::Element;

/// Upper bound of every wait: generous, since tests share two cores with builds.
pub const T: Duration = Duration::from_secs(10);
pub const NS_CLIENT: &str = "jabber:client";
pub const NS_ROSTER: &str = "jabber:iq:roster";
pub const NS_STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";
pub const NS_PING: &str = "urn:xmpp:ping";

/// The password of every test account: derived from its name.
pub fn password(user: &str) -> String {
    format!("{user}-secret")
}

/// The bare JID of a test account on `localhost`.
pub fn bare(user: &str) -> String {
    format!("{user}@localhost")
}

/// A server with these accounts, configured by `f`.
pub async fn server_with(users: &[&str], f: impl FnOnce(&mut Config)) -> TestServer {
    let s = TestServer::start_with(f).await.expect("server starts");
    add_users(&s, users).await;
    s
}

/// A server with these accounts and the default configuration.
pub async fn server(users: &[&str]) -> TestServer {
    server_with(users, |_| {}).await
}

pub async fn add_users(s: &TestServer, users: &[&str]) {
    for u in users {
        s.add_user(u, &password(u)).await.expect("account created");
    }
}

pub fn config(s: &TestServer, user: &str, resource: &str) -> ClientConfig {
    let mut cfg = s.client(user, &password(user));
    cfg.resource = Some(resource.into());
    cfg
}

/// Logs in and binds `resource`, without presence: the session is not available yet.
pub async fn login(s: &TestServer, user: &str, resource: &str) -> Client {
    let cfg = config(s, user, resource);
    Client::login(&cfg).await.expect("login")
}

/// Logs in and returns the stream features offered after authentication (RFC 6120 §6.4.6),
/// where the roster (RFC 6121 §2.6.1, §3.4.1) and the IM extensions announce themselves.
pub async fn login_with_features(s: &TestServer, user: &str, resource: &str) -> (Client, Element) {
    let cfg = config(s, user, resource);
    let mut n = Negotiation::connect(&cfg).await.expect("connect");
    n.header().await.expect("header");
    n.features().await.expect("features");
    if cfg.tls == TlsMode::StartTls {
        n.starttls().await.expect("starttls");
        n.header().await.expect("header");
        n.features().await.expect("features");
    }
    let mechanism = n.choose_mechanism().expect("mechanism");
    n.auth(&mechanism).await.expect("auth");
    n.restart().await.expect("restart");
    n.header().await.expect("header");
    let features = n.features().await.expect("features");
    let jid = n.bind(Some(resource)).await.expect("bind");
    if features.session == Some(false) {
        n.session().await.expect("session");
    }
    (n.into_client(jid), features.element)
}

pub fn presence() -> Element {
    Element::new("presence", NS_CLIENT)
}

pub fn presence_with_priority(priority: i8) -> Element {
    presence().with_child(Element::new("priority", NS_CLIENT).with_text(priority.to_string()))
}

pub fn presence_with_status(status: &str) -> Element {
    presence().with_child(Element::new("status", NS_CLIENT).with_text(status))
}

/// A subscription stanza (RFC 6121 §3) or any other typed presence to `to`.
pub fn typed_presence(kind: &str, to: &str) -> Element {
    presence().with_attr("to", to).with_attr("type", kind)
}

pub fn status_of(el: &Element) -> Option<String> {
    el.get_child("status", NS_CLIENT).map(|s| s.text())
}

pub fn body_of(el: &Element) -> Option<String> {
    el.get_child("body", NS_CLIENT).map(|s| s.text())
}

/// Whether `el` is a presence of type `kind` (`None`: available) from `from`.
pub fn is_presence(el: &Element, from: &str, kind: Option<&str>) -> bool {
    el.name() == "presence" && el.attr("from") == Some(from) && el.attr("type") == kind
}

/// Sends presence without `to` and waits until the server reflects it to this very session
/// (RFC 6121 §4.2.2, §4.4.2): from then on the server treats the session accordingly. Returns
/// what arrived before the reflection.
pub async fn broadcast(c: &mut Client, p: Element) -> Vec<Element> {
    let jid = c.jid().to_owned();
    let kind = p.attr("type").map(str::to_owned);
    let status = status_of(&p);
    c.send(&p).await.expect("send presence");
    collect_until(c, |e| {
        is_presence(e, &jid, kind.as_deref()) && status_of(e) == status
    })
    .await
    .0
}

/// Logs in and becomes available with `p` (initial presence).
pub async fn available_with(s: &TestServer, user: &str, resource: &str, p: Element) -> Client {
    let mut c = login(s, user, resource).await;
    broadcast(&mut c, p).await;
    c
}

/// Logs in and becomes available with empty initial presence.
pub async fn available(s: &TestServer, user: &str, resource: &str) -> Client {
    available_with(s, user, resource, presence()).await
}

/// Receives until `pred` holds; returns what came before and the match.
pub async fn collect_until(
    c: &mut Client,
    pred: impl Fn(&Element) -> bool,
) -> (Vec<Element>, Element) {
    let mut before = Vec::new();
    loop {
        match c.recv(T).await {
            Ok(el) if pred(&el) => return (before, el),
            Ok(el) => before.push(el),
            Err(e) => panic!(
                "{}: expected stanza did not arrive ({e}); got meanwhile: {}",
                c.jid(),
                xml_list(&before)
            ),
        }
    }
}

/// Waits for the first element matching `pred`, skipping others, with a readable failure.
pub async fn expect(c: &mut Client, what: &str, pred: impl Fn(&Element) -> bool) -> Element {
    match c.recv_matching(T, pred).await {
        Ok(el) => el,
        Err(e) => panic!("{}: {what} did not arrive: {e}", c.jid()),
    }
}

/// The first of `seen` matching `pred`, or else the next such element to arrive.
pub async fn seen_or_expect(
    c: &mut Client,
    seen: &[Element],
    what: &str,
    pred: impl Fn(&Element) -> bool,
) -> Element {
    match seen.iter().find(|e| pred(e)) {
        Some(e) => e.clone(),
        None => expect(c, what, pred).await,
    }
}

/// Receives until each predicate has matched one element (in any order); returns the matches in
/// the order of the predicates. Roster pushes among them are acknowledged.
pub async fn expect_all(c: &mut Client, preds: &[&dyn Fn(&Element) -> bool]) -> Vec<Element> {
    let mut found: Vec<Option<Element>> = preds.iter().map(|_| None).collect();
    let mut seen = Vec::new();
    while found.iter().any(Option::is_none) {
        let el = match c.recv(T).await {
            Ok(el) => el,
            Err(e) => panic!(
                "{}: {} of {} expected stanzas arrived ({e}); got: {}",
                c.jid(),
                found.iter().filter(|f| f.is_some()).count(),
                preds.len(),
                xml_list(&seen)
            ),
        };
        if let Some(i) = (0..preds.len()).find(|&i| found[i].is_none() && preds[i](&el)) {
            if el.name() == "iq" && el.attr("type") == Some("set") {
                ack(c, &el).await;
            }
            found[i] = Some(el.clone());
        }
        seen.push(el);
    }
    found.into_iter().flatten().collect()
}

pub fn xml_list(els: &[Element]) -> String {
    els.iter()
        .map(Element::to_xml)
        .collect::<Vec<_>>()
        .join("\n")
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub fn next_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// Sends an IQ of `kind` (with `to` if given) carrying `payload`, and returns its answer (result or
/// error) together with everything that arrived before it.
pub async fn iq_collect(
    c: &mut Client,
    kind: &str,
    to: Option<&str>,
    payload: Element,
) -> (Vec<Element>, Element) {
    let id = next_id("iq");
    let mut iq = Element::new("iq", NS_CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id.as_str())
        .with_child(payload);
    if let Some(to) = to {
        iq.set_attr("to", to);
    }
    c.send(&iq).await.expect("send iq");
    collect_until(c, |e| {
        e.name() == "iq"
            && e.attr("id") == Some(id.as_str())
            && matches!(e.attr("type"), Some("result" | "error"))
    })
    .await
}

/// The answer to an IQ (result or error).
pub async fn iq(c: &mut Client, kind: &str, to: Option<&str>, payload: Element) -> Element {
    iq_collect(c, kind, to, payload).await.1
}

/// The answer to an IQ, which must be a result.
pub async fn iq_ok(c: &mut Client, kind: &str, to: Option<&str>, payload: Element) -> Element {
    let what = payload.to_xml();
    let r = iq(c, kind, to, payload).await;
    assert_eq!(
        r.attr("type"),
        Some("result"),
        "{}: {what} failed: {}",
        c.jid(),
        r.to_xml()
    );
    r
}

/// The defined condition of a stanza error (RFC 6120 §8.3.3).
pub fn error_condition(el: &Element) -> Option<String> {
    let err = el.children().find(|c| c.name() == "error")?;
    err.children()
        .find(|c| c.ns() == NS_STANZAS && c.name() != "text")
        .map(|c| c.name().to_owned())
}

/// The error type (`modify`, `cancel`, `wait`, `auth`) of a stanza error.
pub fn error_type(el: &Element) -> Option<String> {
    el.children()
        .find(|c| c.name() == "error")
        .and_then(|e| e.attr("type"))
        .map(str::to_owned)
}

pub fn error_text(el: &Element) -> Option<String> {
    let err = el.children().find(|c| c.name() == "error")?;
    err.get_child("text", NS_STANZAS).map(|t| t.text())
}

/// Pings the server; returns everything that arrived before the answer. A ping is answered by
/// the session's own task after everything the client sent before it was routed.
pub async fn ping_drain(c: &mut Client) -> Vec<Element> {
    iq_collect(c, "get", Some("localhost"), Element::new("ping", NS_PING))
        .await
        .0
}

/// Asks for the roster and returns everything that arrived before the answer: the answer comes
/// from the account's roster and presence queue, after every job queued for the account before
/// it. Also makes the session an interested resource (RFC 6121 §2.1.6).
pub async fn settle(c: &mut Client) -> Vec<Element> {
    let (before, answer) = iq_collect(c, "get", None, Element::new("query", NS_ROSTER)).await;
    assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
    before
}

/// Settles each client in turn: for a chain of presence work that goes from the first account's
/// queue to the second's (and so on), everything it delivers has arrived afterwards. Returns
/// what each client received meanwhile, in the same order.
pub async fn settle_all(clients: &mut [&mut Client]) -> Vec<Vec<Element>> {
    let mut out = Vec::with_capacity(clients.len());
    for c in clients.iter_mut() {
        out.push(settle(c).await);
    }
    out
}

// ----- rosters (RFC 6121 §2) -----

pub fn roster_query() -> Element {
    Element::new("query", NS_ROSTER)
}

pub fn roster_item(jid: &str, name: Option<&str>, groups: &[&str]) -> Element {
    let mut item = Element::new("item", NS_ROSTER).with_attr("jid", jid);
    if let Some(n) = name {
        item.set_attr("name", n);
    }
    for g in groups {
        item.push_child(Element::new("group", NS_ROSTER).with_text(*g));
    }
    item
}

/// The `<query/>` of a roster get answer.
pub async fn roster_get(c: &mut Client) -> Element {
    let r = iq_ok(c, "get", None, roster_query()).await;
    r.get_child("query", NS_ROSTER)
        .cloned()
        .unwrap_or_else(|| panic!("roster result without a query: {}", r.to_xml()))
}

/// A roster set with one item; returns the answer.
pub async fn roster_set(c: &mut Client, item: Element) -> Element {
    iq(c, "set", None, roster_query().with_child(item)).await
}

/// The item for `jid` in a roster query, if any.
pub fn item<'a>(query: &'a Element, jid: &str) -> Option<&'a Element> {
    query
        .children()
        .find(|i| i.is("item", NS_ROSTER) && i.attr("jid") == Some(jid))
}

pub fn groups(item: &Element) -> Vec<String> {
    item.children()
        .filter(|g| g.is("group", NS_ROSTER))
        .map(|g| g.text())
        .collect()
}

/// (subscription, ask, approved) of an item, as a client shows them.
pub fn sub_state(item: &Element) -> (String, Option<String>, bool) {
    (
        item.attr("subscription").unwrap_or("none").to_owned(),
        item.attr("ask").map(str::to_owned),
        item.attr("approved") == Some("true"),
    )
}

/// Whether `el` is a roster push (RFC 6121 §2.1.6) about `jid`.
pub fn is_push_for(el: &Element, jid: &str) -> bool {
    el.name() == "iq"
        && el.attr("type") == Some("set")
        && el
            .get_child("query", NS_ROSTER)
            .is_some_and(|q| item(q, jid).is_some())
}

/// Waits for a roster push about `jid`, acknowledges it as a client must (RFC 6121 §2.1.6), and
/// returns the push.
pub async fn expect_push(c: &mut Client, jid: &str) -> Element {
    let push = expect(c, &format!("roster push for {jid}"), |e| {
        is_push_for(e, jid)
    })
    .await;
    ack(c, &push).await;
    push
}

/// Answers a server-sent IQ request with an empty result.
pub async fn ack(c: &mut Client, request: &Element) {
    let mut r = Element::new("iq", NS_CLIENT).with_attr("type", "result");
    if let Some(id) = request.attr("id") {
        r.set_attr("id", id);
    }
    if let Some(from) = request.attr("from") {
        r.set_attr("to", from);
    }
    c.send(&r).await.expect("ack");
}

/// The item of a push.
pub fn pushed_item(push: &Element) -> Element {
    push.get_child("query", NS_ROSTER)
        .and_then(|q| q.children().find(|i| i.is("item", NS_ROSTER)))
        .cloned()
        .unwrap_or_else(|| panic!("push without an item: {}", push.to_xml()))
}

/// The current state of `jid` in the roster of `c` ("none" with no ask when it has no item).
pub async fn state_in_roster(c: &mut Client, jid: &str) -> Option<(String, Option<String>, bool)> {
    let q = roster_get(c).await;
    item(&q, jid).map(sub_state)
}

/// The full RFC 6121 §3.1 handshake in one direction: `from` asks `to` (both online, `to`
/// available), `to` approves. Waits for `from` to learn of the approval.
pub async fn subscribe_approved(from: &mut Client, to: &mut Client) {
    let from_bare = bare_of(from.jid());
    let to_bare = bare_of(to.jid());
    from.send(&typed_presence("subscribe", &to_bare))
        .await
        .expect("subscribe");
    expect(to, "subscription request", |e| {
        is_presence(e, &from_bare, Some("subscribe"))
    })
    .await;
    to.send(&typed_presence("subscribed", &from_bare))
        .await
        .expect("subscribed");
    expect(from, "approval", |e| {
        is_presence(e, &to_bare, Some("subscribed"))
    })
    .await;
}

/// Mutual subscriptions ("both") between two online, available accounts, with everything the
/// handshakes caused delivered before it returns.
pub async fn befriend(a: &mut Client, b: &mut Client) {
    subscribe_approved(a, b).await;
    subscribe_approved(b, a).await;
    settle(a).await;
    settle(b).await;
    settle(a).await;
}

pub fn bare_of(full: &str) -> String {
    full.split('/').next().unwrap_or(full).to_owned()
}

pub fn chat(to: &str, body: &str) -> Element {
    Element::new("message", NS_CLIENT)
        .with_attr("to", to)
        .with_attr("type", "chat")
        .with_attr("id", next_id("msg"))
        .with_child(Element::new("body", NS_CLIENT).with_text(body))
}

pub fn is_message_with_body(el: &Element, body: &str) -> bool {
    el.name() == "message" && body_of(el).as_deref() == Some(body)
}

/// Whether the error ended the stream with `condition`.
pub fn is_stream_error(e: &ClientError, condition: &str) -> bool {
    matches!(e, ClientError::StreamError { condition: c, .. } if c == condition)
}

// ----- time stamps (XEP-0082) -----

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch of an XEP-0082 UTC timestamp `YYYY-MM-DDThh:mm:ss[.fff]Z`.
pub fn parse_stamp(s: &str) -> Option<i64> {
    let (date, time) = s.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>());
    let (hh, mm, ss) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), as in the usual era-based algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}
