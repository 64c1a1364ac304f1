//! Alerts posted as JSON to an HTTP endpoint (a SIEM's webhook), off the message path.
//!
//! The stage hands each alert to [`Webhook::post`], which never waits: the alert enters a
//! bounded queue, or is dropped and counted when the queue is full. One background task takes
//! alerts in order, waits (briefly) for the sequence number of the evidence record written for
//! the same message, and posts them one at a time over a new connection each, plain or through
//! rustls. A post that may pass later (connection error, timeout, 5xx, 408, 429) is tried again
//! a bounded number of times with a doubling delay; any other status gives it up at once.
//!
//! The HTTP/1.1 exchange is the smallest one that is correct: a `POST` with `Content-Length` and
//! `Connection: close`, then the response's status line (interim 1xx responses skipped); the
//! body of the response is not read. Standards: RFC 9110 (semantics: status classes §15,
//! `Host` §7.2), RFC 9112 (message syntax: status line §4, line endings §2.2), RFC 6750 §2.1
//! (bearer tokens), RFC 8259 (JSON), RFC 7301 (ALPN `http/1.1`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;
use zeroize::Zeroizing;

use super::engine::{Hit, Side};
use super::rules::Rule;

/// The longest delay between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);
/// The most bytes of a response head (status line and headers) read before giving up.
const MAX_HEAD_BYTES: usize = 16 * 1024;
/// A full queue is reported in the log at most this often.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// Where alerts are posted. The server builds it from `compliance.alert_webhook`.
#[derive(Clone)]
pub struct Endpoint {
    /// A DNS name, or an IP address without brackets: what is connected to and, over TLS, the
    /// name the certificate must show.
    pub host: String,
    pub port: u16,
    /// The `Host` header (RFC 9110 §7.2).
    pub authority: String,
    /// The request target: path and query (RFC 9112 §3.2.1).
    pub target: String,
    /// `Some` for `https`: the client configuration with its trust anchors.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Endpoint {
    /// `scheme://host:port`, for logs: the path and query may hold a secret of the receiver.
    pub fn origin(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("origin", &self.origin())
            .finish_non_exhaustive()
    }
}

/// Why a bearer token was refused. The messages never contain the token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} may be read by others (mode {mode:o}): make it readable by the server only (chmod 600)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("the environment variable {0} is not set")]
    Unset(String),
    #[error("{0}: the token is empty")]
    Empty(String),
    #[error(
        "{0}: the token has a character a bearer token cannot have (RFC 6750 §2.1 allows letters, digits and - . _ ~ + /, then = for padding)"
    )]
    Syntax(String),
}

/// The secret sent as `Authorization: Bearer …`. Never shown by `Debug`; wiped from memory
/// when dropped.
#[derive(Clone)]
pub struct BearerToken(Zeroizing<String>);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(…)")
    }
}

impl BearerToken {
    /// A token read from `source` (a file name or a variable name, for errors), white space
    /// around it ignored; its characters must be those of RFC 6750 `b64token`, which also keeps
    /// it from breaking the header.
    pub fn new(text: &str, source: &str) -> Result<BearerToken, TokenError> {
        let token = text.trim();
        if token.is_empty() {
            return Err(TokenError::Empty(source.to_owned()));
        }
        let body = token.trim_end_matches('=');
        let ok = !body.is_empty()
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
        if !ok {
            return Err(TokenError::Syntax(source.to_owned()));
        }
        Ok(BearerToken(Zeroizing::new(token.to_owned())))
    }

    /// The token in a file that only its owner may read.
    pub fn from_file(path: &Path) -> Result<BearerToken, TokenError> {
        let read = |source| TokenError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        if let Some(mode) = crate::keys::too_open(&meta) {
            return Err(TokenError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(read)?);
        BearerToken::new(&text, &path.display().to_string())
    }

    /// The token in the environment variable `name`.
    pub fn from_env(name: &str) -> Result<BearerToken, TokenError> {
        let text =
            Zeroizing::new(std::env::var(name).map_err(|_| TokenError::Unset(name.to_owned()))?);
        BearerToken::new(&text, name)
    }
}

/// The webhook's settings; the server maps the `compliance.alert_webhook*` keys onto them.
#[derive(Debug, Clone)]
pub struct WebhookOptions {
    pub endpoint: Endpoint,
    pub token: Option<BearerToken>,
    /// One attempt, from connecting to the status line.
    pub timeout: Duration,
    /// Attempts after the first, for failures that may pass.
    pub retries: u32,
    /// The delay before the first retry; it doubles for each next one, up to
    /// [`MAX_RETRY_DELAY`].
    pub first_retry: Duration,
    /// Alerts waiting to be posted, at most.
    pub queue: usize,
    /// Posts carry the message text. The stage turns it off when evidence is sealed.
    pub include_text: bool,
}

/// The rule of an alert, as posted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleRef {
    pub id: String,
    pub category: String,
    /// `None` for a user's report.
    pub severity: Option<String>,
    pub description: String,
}

/// Something a rule found, with its text (posted only with the message text).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FoundText {
    pub what: String,
    pub text: String,
}

/// One alert as posted: the JSON object documented in docs/compliance.md.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlertEvent {
    /// `alert` (a rule's `alert` action) or `report` (a user's report).
    pub event: &'static str,
    /// RFC 3339, UTC.
    pub time: String,
    pub unix_time: i64,
    pub rule: RuleRef,
    /// The user in the rule's scope (bare JID): the sender of an outgoing message, the
    /// recipient of an incoming one, the reporter of a report.
    pub user: String,
    /// The other party (bare JID), or the reported address.
    pub peer: String,
    /// `outgoing`, `incoming` or `report`.
    pub direction: &'static str,
    pub actions: Vec<String>,
    /// What happened to the message, in words.
    pub outcome: String,
    /// How often the rule fired for this user within its longest escalation window, this time
    /// included; 0 for a rule without escalation.
    pub count: usize,
    /// The evidence record written for the same message (`causeriectl evidence show SEQ`), when
    /// it was captured and stored in time.
    pub evidence_seq: Option<i64>,
    /// The category a reporter chose (reports only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The message's bodies as received, or the reporter's words; only with
    /// `include_text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<Vec<String>>,
    /// What the rule found, with the text; only with `include_text`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Vec<FoundText>>,
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl AlertEvent {
    /// The alert of `rule` on a message from `sender` to `recipient` (bare JIDs).
    pub fn for_hit(
        rule: &Rule,
        hit: &Hit,
        sender: &str,
        recipient: &str,
        actions: &[&str],
        outcome: &str,
        count: usize,
    ) -> AlertEvent {
        let (user, peer, direction) = match hit.side {
            Side::Outgoing => (sender, recipient, "outgoing"),
            Side::Incoming => (recipient, sender, "incoming"),
        };
        let unix_time = now_unix();
        AlertEvent {
            event: "alert",
            time: crate::rfc3339::format(unix_time),
            unix_time,
            rule: RuleRef {
                id: rule.id.clone(),
                category: rule.category.clone(),
                severity: Some(rule.severity.name().to_owned()),
                description: rule.description.clone(),
            },
            user: user.to_owned(),
            peer: peer.to_owned(),
            direction,
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            outcome: outcome.to_owned(),
            count,
            evidence_seq: None,
            reason: None,
            text: None,
            found: None,
        }
    }

    /// A user's report of `reported`.
    pub fn for_report(
        reporter: &str,
        reported: &str,
        reason: &str,
        actions: &[&str],
    ) -> AlertEvent {
        let unix_time = now_unix();
        AlertEvent {
            event: "report",
            time: crate::rfc3339::format(unix_time),
            unix_time,
            rule: RuleRef {
                id: "user-report".to_owned(),
                category: "report by a user".to_owned(),
                severity: None,
                description: "A user reported a contact or a message.".to_owned(),
            },
            user: reporter.to_owned(),
            peer: reported.to_owned(),
            direction: "report",
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
            outcome: "recorded for the security officers".to_owned(),
            count: 0,
            evidence_seq: None,
            reason: Some(reason.to_owned()),
            text: None,
            found: None,
        }
    }

    /// Adds the message's bodies and what `hit` found in them.
    pub fn with_text<S: AsRef<str>>(mut self, bodies: &[S], hit: &Hit) -> AlertEvent {
        self.text = Some(bodies.iter().map(|b| b.as_ref().to_owned()).collect());
        self.found = Some(
            hit.found
                .iter()
                .map(|f| FoundText {
                    what: f.what.clone(),
                    text: f
                        .body
                        .and_then(|b| bodies.get(b))
                        .and_then(|b| b.as_ref().get(f.range.clone()))
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect(),
        );
        self
    }
}

/// What the webhook did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Alerts the receiver accepted (2xx).
    pub posted: u64,
    /// Alerts given up after their last attempt, or refused by the receiver.
    pub failed: u64,
    /// Alerts dropped because the queue was full.
    pub dropped: u64,
}

struct Job {
    event: AlertEvent,
    /// The sequence number of the evidence record of the same message, once stored.
    evidence: Option<oneshot::Receiver<i64>>,
}

struct Shared {
    origin: String,
    posted: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_drop_warning: Mutex<Option<Instant>>,
    /// Alerts queued or being posted, and a wake-up when that reaches zero.
    pending: AtomicUsize,
    idle: Notify,
}

/// The queue and its sender task. Create it inside the Tokio runtime; the task ends when the
/// webhook is dropped and the queue is empty.
pub struct Webhook {
    tx: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    include_text: bool,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("origin", &self.shared.origin)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    pub fn start(opts: WebhookOptions) -> Webhook {
        let (tx, rx) = mpsc::channel(opts.queue.max(1));
        let shared = Arc::new(Shared {
            origin: opts.endpoint.origin(),
            posted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_drop_warning: Mutex::new(None),
            pending: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        let include_text = opts.include_text;
        tracing::info!(webhook = %shared.origin, "compliance alerts are also posted to a webhook");
        tokio::spawn(run(rx, shared.clone(), opts));
        Webhook {
            tx,
            shared,
            include_text,
        }
    }

    /// Whether posts carry the message text.
    pub fn include_text(&self) -> bool {
        self.include_text
    }

    /// Queues `event`; never waits. With a full queue the alert is dropped and counted.
    /// `evidence` yields the sequence number of the evidence record of the same message.
    pub fn post(&self, event: AlertEvent, evidence: Option<oneshot::Receiver<i64>>) {
        self.shared.pending.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(Job { event, evidence }) {
            Ok(()) => {}
            Err(e) => {
                self.done();
                let total = self.shared.dropped.fetch_add(1, Ordering::AcqRel) + 1;
                if matches!(e, mpsc::error::TrySendError::Closed(_)) {
                    tracing::error!(webhook = %self.shared.origin, dropped_total = total, "the alert webhook's task has stopped; an alert was not posted");
                    return;
                }
                let mut last = self
                    .shared
                    .last_drop_warning
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                if last.is_none_or(|t| t.elapsed() >= DROP_WARNING_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!(webhook = %self.shared.origin, dropped_total = total, "the alert webhook's queue is full (compliance.alert_webhook_queue): alerts are dropped from the webhook");
                }
            }
        }
    }

    fn done(&self) {
        done(&self.shared);
    }

    pub fn stats(&self) -> WebhookStats {
        WebhookStats {
            posted: self.shared.posted.load(Ordering::Acquire),
            failed: self.shared.failed.load(Ordering::Acquire),
            dropped: self.shared.dropped.load(Ordering::Acquire),
        }
    }

    /// Waits until every queued alert was posted or given up, or until `deadline`; `false`
    /// when alerts were still waiting then.
    pub async fn flush(&self, deadline: Instant) -> bool {
        loop {
            let notified = self.shared.idle.notified();
            if self.shared.pending.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let left = self.shared.pending.load(Ordering::Acquire);
                if left > 0 {
                    tracing::warn!(webhook = %self.shared.origin, pending = left, "alerts not posted to the webhook at shutdown");
                }
                return left == 0;
            }
        }
    }
}

fn done(shared: &Shared) {
    if shared.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.idle.notify_waiters();
    }
}

/// Posts the queued alerts one at a time, in order.
async fn run(mut rx: mpsc::Receiver<Job>, shared: Arc<Shared>, opts: WebhookOptions) {
    while let Some(job) = rx.recv().await {
        let mut event = job.event;
        if let Some(seq) = job.evidence {
            // The evidence writer stores records in order, within milliseconds unless the
            // database is failing; the alert does not wait for it longer than one attempt.
            event.evidence_seq = tokio::time::timeout(opts.timeout, seq)
                .await
                .ok()
                .and_then(Result::ok);
        }
        match serde_json::to_vec(&event) {
            Ok(body) => {
                let request = request(&opts.endpoint, opts.token.as_ref(), &body);
                match deliver(&opts, &request).await {
                    Ok(status) => {
                        shared.posted.fetch_add(1, Ordering::AcqRel);
                        tracing::debug!(webhook = %shared.origin, status, rule = %event.rule.id, "alert posted");
                    }
                    Err(e) => {
                        shared.failed.fetch_add(1, Ordering::AcqRel);
                        tracing::warn!(webhook = %shared.origin, rule = %event.rule.id, user = %event.user, "an alert could not be posted to the webhook: {e}");
                    }
                }
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::AcqRel);
                tracing::error!(error = %e, "cannot encode an alert");
            }
        }
        done(&shared);
    }
}

/// Why a post failed, after its last attempt.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("the receiver answered {0}")]
    Status(u16),
    #[error("{last} (after {attempts} attempts)")]
    GaveUp { attempts: u32, last: Box<PostError> },
}

impl PostError {
    /// Failures that may pass if tried again (RFC 9110 §15.6 server errors, 408 and 429).
    fn is_transient(&self) -> bool {
        match self {
            PostError::Http(e) => !matches!(e, HttpError::BadName(_)),
            PostError::Timeout(_) => true,
            PostError::Status(s) => *s >= 500 || *s == 408 || *s == 429,
            PostError::GaveUp { .. } => false,
        }
    }
}

/// Posts `request` until the receiver accepts it, it fails for good, or the retries are spent.
/// Returns the 2xx status.
async fn deliver(opts: &WebhookOptions, request: &[u8]) -> Result<u16, PostError> {
    let mut delay = opts.first_retry;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome =
            match tokio::time::timeout(opts.timeout, post_once(&opts.endpoint, request)).await {
                Ok(Ok(status)) if (200..300).contains(&status) => return Ok(status),
                Ok(Ok(status)) => PostError::Status(status),
                Ok(Err(e)) => PostError::Http(e),
                Err(_) => PostError::Timeout(opts.timeout),
            };
        if !outcome.is_transient() {
            return Err(outcome);
        }
        if attempt > opts.retries {
            return Err(if attempt > 1 {
                PostError::GaveUp {
                    attempts: attempt,
                    last: Box::new(outcome),
                }
            } else {
                outcome
            });
        }
        tracing::debug!(webhook = %opts.endpoint.origin(), attempt, "posting an alert failed ({outcome}); trying again in {delay:?}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// The request: `POST` of `body` as JSON, the connection closed after the response.
pub fn request(
    endpoint: &Endpoint,
    token: Option<&BearerToken>,
    body: &[u8],
) -> Zeroizing<Vec<u8>> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: Causerie/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        endpoint.target,
        endpoint.authority,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let mut out = Zeroizing::new(Vec::with_capacity(head.len() + body.len() + 96));
    out.extend_from_slice(head.as_bytes());
    if let Some(token) = token {
        out.extend_from_slice(b"Authorization: Bearer ");
        out.extend_from_slice(token.0.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// Why one exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("`{0}` is not a name a TLS certificate can show")]
    BadName(String),
    #[error("the connection closed before a complete response")]
    Closed,
    #[error("the response does not start with an HTTP/1.x status line")]
    BadStatusLine,
    #[error("the response head is longer than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
}

/// One connection, one request, the final status.
async fn post_once(endpoint: &Endpoint, request: &[u8]) -> Result<u16, HttpError> {
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port)).await?;
    tcp.set_nodelay(true)?;
    match &endpoint.tls {
        None => exchange(tcp, request).await,
        Some(config) => {
            let name = ServerName::try_from(endpoint.host.clone())
                .map_err(|_| HttpError::BadName(endpoint.host.clone()))?;
            let tls = TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await?;
            exchange(tls, request).await
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<u16, HttpError> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        match parse_head(&buf)? {
            // RFC 9110 §15.2: interim responses come before the final one; skip them.
            Some((status, len)) if (100..200).contains(&status) => {
                buf.drain(..len);
                continue;
            }
            Some((status, _)) => return Ok(status),
            None if buf.len() > MAX_HEAD_BYTES => return Err(HttpError::HeadTooLarge),
            None => {}
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HttpError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status code and length of the first response head in `buf`, once it is complete (up to
/// the empty line that ends the headers). RFC 9112 §4: `HTTP-version SP status-code SP
/// [reason-phrase]`; a missing space after the code is tolerated, and so are bare LF line
/// endings (§2.2).
pub fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize)>, HttpError> {
    let mut start = 0;
    let mut status_line: Option<&[u8]> = None;
    while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
        let line = &buf[start..start + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let next = start + nl + 1;
        match status_line {
            None => status_line = Some(line),
            Some(status) if line.is_empty() => return Ok(Some((status_code(status)?, next))),
            Some(_) => {}
        }
        start = next;
    }
    // Refuse what is not HTTP before waiting for more of it.
    let first = status_line.unwrap_or(&buf[..buf.len().min(12)]);
    if !first.is_empty() {
        let n = first.len().min(5);
        if first[..n] != b"HTTP/"[..n] {
            return Err(HttpError::BadStatusLine);
        }
    }
    if let Some(line) = status_line {
        status_code(line)?;
    }
    Ok(None)
}

fn status_code(line: &[u8]) -> Result<u16, HttpError> {
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or(HttpError::BadStatusLine)?;
    let (minor, rest) = rest.split_first().ok_or(HttpError::BadStatusLine)?;
    let rest = rest.strip_prefix(b" ").ok_or(HttpError::BadStatusLine)?;
    if !minor.is_ascii_digit() || rest.len() < 3 {
        return Err(HttpError::BadStatusLine);
    }
    let (code, after) = rest.split_at(3);
    if !code.iter().all(u8::is_ascii_digit) || !(after.is_empty() || after[0] == b' ') {
        return Err(HttpError::BadStatusLine);
    }
    let n = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    if (100..=599).contains(&n) {
        Ok(n)
    } else {
        Err(HttpError::BadStatusLine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::engine::Found;
    use crate::compliance::rules;

    fn endpoint(tls: bool) -> Endpoint {
        Endpoint {
            host: "siem.example".into(),
            port: 8443,
            authority: "siem.example:8443".into(),
            target: "/hook?src=xmpp".into(),
            tls: tls.then(crate_tls_config),
        }
    }

    fn crate_tls_config() -> Arc<ClientConfig> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
                .with_no_client_auth(),
        )
    }

    #[test]
    fn the_request_is_a_complete_http1_post() {
        let token = BearerToken::new(" abc.DEF-123~+/== \n", "test").unwrap();
        let body = br#"{"event":"alert"}"#;
        let req = request(&endpoint(false), Some(&token), body);
        let text = std::str::from_utf8(&req).unwrap();
        assert_eq!(
            text,
            format!(
                "POST /hook?src=xmpp HTTP/1.1\r\nHost: siem.example:8443\r\nUser-Agent: Causerie/{}\r\n\
                 Content-Type: application/json\r\nContent-Length: 17\r\n\
                 Authorization: Bearer abc.DEF-123~+/==\r\nConnection: close\r\n\r\n{{\"event\":\"alert\"}}",
                env!("CARGO_PKG_VERSION")
            )
        );
        let req = request(&endpoint(true), None, b"");
        let text = std::str::from_utf8(&req).unwrap();
        assert!(!text.contains("Authorization"), "{text}");
        assert!(
            text.ends_with("Content-Length: 0\r\nConnection: close\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn origins_hide_the_path_and_query() {
        assert_eq!(endpoint(false).origin(), "http://siem.example:8443");
        assert_eq!(endpoint(true).origin(), "https://siem.example:8443");
        let mut v6 = endpoint(false);
        v6.host = "::1".into();
        assert_eq!(v6.origin(), "http://[::1]:8443");
        assert!(!format!("{:?}", endpoint(true)).contains("hook"));
    }

    #[test]
    fn tokens_are_checked_and_never_shown() {
        let t = BearerToken::new("s3cret-token", "file").unwrap();
        assert_eq!(format!("{t:?}"), "BearerToken(…)");
        for bad in [
            "",
            "  \n",
            "a b",
            "a\r\nX-Evil: 1",
            "tok\u{e9}n",
            "=abc",
            "a=b",
            "===",
        ] {
            let err = BearerToken::new(bad, "the file").expect_err(bad);
            let shown = err.to_string();
            assert!(shown.starts_with("the file: "), "{shown}");
            if bad.len() > 3 {
                assert!(!shown.contains(bad.trim()), "{shown}");
            }
        }
    }

    #[test]
    fn token_files_must_be_private_and_variables_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc123\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = BearerToken::from_file(&path).unwrap_err();
            assert!(
                matches!(err, TokenError::TooOpen { mode: 0o644, .. }),
                "{err}"
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let t = BearerToken::from_file(&path).unwrap();
        assert_eq!(t.0.as_str(), "abc123");
        assert!(matches!(
            BearerToken::from_file(&dir.path().join("none")),
            Err(TokenError::Read { .. })
        ));
        assert!(matches!(
            BearerToken::from_env("CAUSERIE_TEST_SURELY_UNSET_VARIABLE"),
            Err(TokenError::Unset(_))
        ));
    }

    #[test]
    fn status_lines() {
        let ok = |s: &[u8]| parse_head(s).unwrap();
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            Some((200, 38))
        );
        assert_eq!(
            ok(b"HTTP/1.0 503 Service Unavailable\r\n\r\nbody"),
            Some((503, 36))
        );
        assert_eq!(ok(b"HTTP/1.1 204\r\n\r\n"), Some((204, 16)));
        assert_eq!(ok(b"HTTP/1.1 201 \n\n"), Some((201, 15)));
        assert_eq!(
            ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
            Some((100, 25))
        );
        // Incomplete: wait for more.
        assert_eq!(ok(b""), None);
        assert_eq!(ok(b"HTT"), None);
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(ok(b"HTTP/1.1 200 OK\r\nServer: x\r\n"), None);
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"<html>",
            b"HTTP/2 200\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 OK 200\r\n\r\n",
            b"HTTP/1.1 099 x\r\n\r\n",
            b"HTTP/1.1 600 x\r\n\r\n",
            b"HTTP/1.1  200 OK\r\n\r\n",
            b"HTTP/1.x 200 OK\r\n\r\n",
        ] {
            assert!(
                parse_head(bad).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(bad)
            );
        }
    }

    fn rule() -> Rule {
        let text = "[[rule]]\nid = \"cards\"\ndescription = \"No cards\"\ncategory = \"sensitive data\"\nseverity = \"high\"\ndetectors = [\"payment-card\"]\nactions = [\"alert\"]\n";
        rules::parse(text).unwrap().remove(0)
    }

    #[test]
    fn alerts_carry_the_text_only_when_asked() {
        let hit = Hit {
            rule: 0,
            side: Side::Incoming,
            found: vec![Found {
                body: Some(0),
                range: 5..9,
                what: "payment card number".into(),
            }],
        };
        let event = AlertEvent::for_hit(
            &rule(),
            &hit,
            "eve@remote.example",
            "alice@corp.example",
            &["capture", "alert"],
            "it was delivered",
            2,
        );
        let json: serde_json::Value = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "alert");
        assert_eq!(json["user"], "alice@corp.example");
        assert_eq!(json["peer"], "eve@remote.example");
        assert_eq!(json["direction"], "incoming");
        assert_eq!(json["rule"]["id"], "cards");
        assert_eq!(json["rule"]["severity"], "high");
        assert_eq!(json["actions"], serde_json::json!(["capture", "alert"]));
        assert_eq!(json["count"], 2);
        assert!(json["evidence_seq"].is_null());
        assert!(
            json.get("text").is_none() && json.get("found").is_none(),
            "{json}"
        );
        assert_eq!(
            crate::rfc3339::parse(json["time"].as_str().unwrap()).ok(),
            json["unix_time"].as_i64()
        );
        let with = event.with_text(&["card 4111 etc"], &hit);
        let json: serde_json::Value = serde_json::to_value(&with).unwrap();
        assert_eq!(json["text"], serde_json::json!(["card 4111 etc"]));
        assert_eq!(json["found"][0]["text"], "4111");
        let report = AlertEvent::for_report(
            "bob@corp.example",
            "eve@remote.example",
            "spam",
            &["capture"],
        );
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(
            (json["event"].as_str(), json["reason"].as_str()),
            (Some("report"), Some("spam"))
        );
        assert!(json["rule"]["severity"].is_null());
    }

    /// A one-shot HTTP server on loopback answering each connection with the next of
    /// `answers` (raw bytes; `None` closes without answering), recording the requests.
    async fn server(
        answers: Vec<Option<&'static [u8]>>,
    ) -> (u16, tokio::task::JoinHandle<Vec<Vec<u8>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut seen = Vec::new();
            for answer in answers {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head and the body (Content-Length).
                loop {
                    let n = s.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len: usize = text
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                seen.push(buf);
                if let Some(a) = answer {
                    s.write_all(a).await.unwrap();
                }
            }
            seen
        });
        (port, task)
    }

    fn local(port: u16) -> WebhookOptions {
        WebhookOptions {
            endpoint: Endpoint {
                host: "127.0.0.1".into(),
                port,
                authority: format!("127.0.0.1:{port}"),
                target: "/hook".into(),
                tls: None,
            },
            token: None,
            timeout: Duration::from_secs(5),
            retries: 2,
            first_retry: Duration::from_millis(10),
            queue: 4,
            include_text: false,
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_others_are_not() {
        let (port, task) = server(vec![
            None,
            Some(b"HTTP/1.1 503 Busy\r\n\r\n"),
            Some(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
            ),
        ])
        .await;
        let opts = local(port);
        let req = request(&opts.endpoint, None, b"{}");
        assert_eq!(deliver(&opts, &req).await.unwrap(), 202);
        assert_eq!(task.await.unwrap().len(), 3);

        let (port, task) = server(vec![Some(b"HTTP/1.1 401 Unauthorized\r\n\r\n")]).await;
        let opts = local(port);
        let err = deliver(&opts, &request(&opts.endpoint, None, b"{}"))
            .await
            .unwrap_err();
        assert!(matches!(err, PostError::Status(401)), "{err}");
        assert_eq!(task.await.unwrap().len(), 1);

        let (port, task) = server(vec![
            Some(b"HTTP/1.1 500 x\r\n\r\n"),
            Some(b"HTTP/1.1 500 x\r\n\r\n"),
            Some(b"HTTP/1.1 500 x\r\n\r\n"),
        ])
        .await;
        let opts = local(port);
        let err = deliver(&opts, &request(&opts.endpoint, None, b"{}"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the receiver answered 500 (after 3 attempts)"
        );
        assert_eq!(task.await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        // A listener that never accepts: the first post hangs until its timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut opts = local(listener.local_addr().unwrap().port());
        opts.queue = 1;
        opts.retries = 0;
        opts.timeout = Duration::from_millis(300);
        let hook = Webhook::start(opts);
        let event = AlertEvent::for_report("a@x.example", "b@y.example", "spam", &[]);
        let started = std::time::Instant::now();
        for _ in 0..5 {
            hook.post(event.clone(), None);
        }
        assert!(started.elapsed() < Duration::from_millis(100));
        let stats = hook.stats();
        assert!(stats.dropped >= 3, "{stats:?}");
        assert!(hook.flush(Instant::now() + Duration::from_secs(5)).await);
        let stats = hook.stats();
        assert_eq!(stats.posted, 0);
        assert_eq!(stats.failed + stats.dropped, 5, "{stats:?}");
        drop(listener);
    }
}
