//! The cost of the usage-policy gate (xeps/policy-acceptance.md), measured through the protocol
//! on two servers in one run: one with the gate on and a version in force that every bench
//! account has accepted, one with the gate off. Rounds alternate between them, so that whatever
//! else the machine does weighs on both alike, and every figure is given as the median of the
//! per-round ratios on/off.
//!
//! 1. **Prepare.** The version in force on the gate-on server is read with the extension's IQ
//!    (§4.4). Each of the N bench accounts logs in there; when the `<policy/>` stream feature
//!    (§4.2) announces that version, the client accepts it with `<accept/>` (§4.5) and checks the
//!    receipt it gets back. The gate-off server must announce nothing.
//! 2. **Rounds**, R times:
//!    - **Session set-up**, one session at a time (no queueing): K sessions on the gate-off
//!      server, K on the gate-on server with accounts that accepted, and K first sessions on
//!      the gate-on server with accounts that never logged in there, which accept before sending
//!      their initial presence. Timed from the TCP connect to the server reflecting the initial
//!      presence; the server's CPU over each block of K (login, presence, close). The three
//!      blocks run in a rotating order.
//!    - **Messages**, the load tool's scenario (`scenario::run`: N logins with bounded
//!      concurrency, initial presence, M chat messages per user between pairs, close) against
//!      each server, gate-off first in even rounds and gate-on first in odd ones. Any message
//!      refused by the gate, or a presence held by it, fails the run.
//! 3. **Receipts.** The K accounts of the set-up blocks, after 2R + 2 sessions each on the
//!    gate-on server, list their receipts (§4.7): each must hold exactly one for the version in
//!    force, the one written when it accepted.
//!
//! Accounts follow the load tool's patterns: numbers 0..N are the bench accounts, and round r
//! uses the K accounts N + rK .. N + (r+1)K for its first sessions, so a run needs N + RK
//! accounts on the gate-on server, none of which has accepted yet.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use causerie_testkit::client::{
    Client, ClientConfig, ClientError, NS_CLIENT, Negotiation, TlsMode,
};
use causerie_xml::Element;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::procfs::Probe;
use crate::scenario::{MAX_USERS, Report, Scenario, Target, percentile, require_loopback};

/// The namespace of the usage-policy extension.
const NS_POLICY: &str = "urn:causerie:policy:0";
/// XEP-0092, which the gate asks a restricted session for (§5.10).
const NS_VERSION: &str = "jabber:iq:version";
/// Upper bound of one wait for the server.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Most rounds of one run.
pub const MAX_ROUNDS: usize = 100;

/// What to run.
#[derive(Debug, Clone)]
pub struct GateScenario {
    /// The message scenario of each round; also gives the accounts and the login settings.
    pub base: Scenario,
    /// R: rounds.
    pub rounds: usize,
    /// K: sessions per block of the set-up measurement.
    pub sessions: usize,
}

impl GateScenario {
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        if self.rounds == 0 || self.rounds > MAX_ROUNDS {
            bail!("--rounds must be between 1 and {MAX_ROUNDS}");
        }
        if self.sessions == 0 || self.sessions > self.base.users {
            bail!("--sessions must be between 1 and --users");
        }
        if self.accounts() > MAX_USERS {
            bail!(
                "--users + --rounds × --sessions must be at most {MAX_USERS} accounts (asked for {})",
                self.accounts()
            );
        }
        Ok(())
    }

    /// Accounts a run needs on the gate-on server: N bench accounts, then K new ones per round.
    pub fn accounts(&self) -> usize {
        self.base.users + self.rounds * self.sessions
    }

    /// The account number of the `i`-th first session of round `r`.
    fn first_session_account(&self, r: usize, i: usize) -> usize {
        self.base.users + r * self.sessions + i
    }

    fn client_config(&self, target: &Target, n: usize) -> ClientConfig {
        let mut cfg = ClientConfig::new(
            target.addr,
            &target.domain,
            &self.base.username(n),
            &self.base.password(n),
        );
        cfg.tls = self.base.tls;
        cfg.trust = self.base.trust.clone();
        cfg.mechanism = self.base.mechanism.clone();
        cfg
    }
}

/// The three kinds of session of the set-up measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// On the gate-off server.
    Off,
    /// On the gate-on server, an account that accepted.
    On,
    /// On the gate-on server, an account's first session: it accepts.
    First,
}

/// One block of K sessions of one kind.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Connect to reflected presence, in microseconds, sorted.
    pub setup_us: Vec<u64>,
    /// For first sessions: `<accept/>` sent to its result, in microseconds, sorted.
    pub accept_us: Vec<u64>,
    /// The server's CPU seconds over the whole block (logins, presences, closes).
    pub server_cpu: Option<f64>,
}

impl Block {
    fn setup_ms(&self, p: f64) -> Option<f64> {
        (!self.setup_us.is_empty()).then(|| percentile(&self.setup_us, p) as f64 / 1000.0)
    }

    fn accept_ms(&self, p: f64) -> Option<f64> {
        (!self.accept_us.is_empty()).then(|| percentile(&self.accept_us, p) as f64 / 1000.0)
    }

    fn cpu_ms_per_session(&self) -> Option<f64> {
        let n = self.setup_us.len();
        self.server_cpu
            .filter(|_| n > 0)
            .map(|c| c * 1000.0 / n as f64)
    }
}

/// What one round measured.
#[derive(Debug, Clone)]
pub struct Round {
    pub off: Block,
    pub on: Block,
    pub first: Block,
    pub messages_off: Report,
    pub messages_on: Report,
    /// Whether the gate-on server ran the message scenario first in this round.
    pub on_first: bool,
}

/// What a whole run measured.
#[derive(Debug, Clone)]
pub struct GateReport {
    pub on_addr: String,
    pub off_addr: String,
    /// The version in force on the gate-on server.
    pub version: String,
    /// Bench accounts that accepted during preparation, and those that had already.
    pub accepted_now: usize,
    pub accepted_before: usize,
    pub rounds: Vec<Round>,
    /// Accounts whose receipts were listed at the end; each held exactly one.
    pub receipts_checked: usize,
    /// Sessions each of them had on the gate-on server by then.
    pub sessions_per_checked_account: usize,
}

/// Runs the whole comparison.
pub async fn run(on: &Target, off: &Target, s: &GateScenario) -> Result<GateReport> {
    require_loopback(&on.addr)?;
    require_loopback(&off.addr)?;
    s.validate()?;
    let version = version_in_force(on, s).await?;
    let (accepted_now, accepted_before) = prepare(on, s, &version).await?;
    check_off(off, s).await?;

    let on_probe = on.pid.map(|p| Probe::new(Some(p)));
    let off_probe = off.pid.map(|p| Probe::new(Some(p)));
    let mut rounds = Vec::with_capacity(s.rounds);
    for r in 0..s.rounds {
        let mut blocks = [Block::default(), Block::default(), Block::default()];
        let kinds = [Kind::Off, Kind::On, Kind::First];
        // A rotating order: each kind runs first, second and third in turn.
        for k in 0..kinds.len() {
            let slot = (r + k) % kinds.len();
            let kind = kinds[slot];
            let (target, probe) = match kind {
                Kind::Off => (off, off_probe),
                Kind::On | Kind::First => (on, on_probe),
            };
            blocks[slot] = setup_block(target, probe, s, kind, r, &version)
                .await
                .with_context(|| format!("round {}, {kind:?} sessions", r + 1))?;
        }
        let on_first = r % 2 == 1;
        let (messages_on, messages_off) = if on_first {
            let a = messages(on, &s.base).await?;
            (a, messages(off, &s.base).await?)
        } else {
            let b = messages(off, &s.base).await?;
            (messages(on, &s.base).await?, b)
        };
        let [off_block, on_block, first_block] = blocks;
        rounds.push(Round {
            off: off_block,
            on: on_block,
            first: first_block,
            messages_off,
            messages_on,
            on_first,
        });
    }

    let checked = check_receipts(on, s, &version).await?;
    Ok(GateReport {
        on_addr: on.addr.to_string(),
        off_addr: off.addr.to_string(),
        version,
        accepted_now,
        accepted_before,
        rounds,
        receipts_checked: checked,
        sessions_per_checked_account: 2 * s.rounds + 2,
    })
}

/// The message scenario against one server; a run in which anything was refused or lost does
/// not measure what it should, and stops the comparison.
pub(crate) async fn messages(target: &Target, s: &Scenario) -> Result<Report> {
    let r = crate::scenario::run(target, s)
        .await
        .with_context(|| format!("message scenario against {}", target.label))?;
    if r.logins_failed > 0 || r.message_errors > 0 || r.messages_delivered < r.messages_expected {
        let mut why = r.login_errors.clone();
        why.extend(r.message_error_samples.iter().cloned());
        bail!(
            "{}: {} logins failed, {} of {} messages delivered, {} errors: {}",
            target.label,
            r.logins_failed,
            r.messages_delivered,
            r.messages_expected,
            r.message_errors,
            why.join("; ")
        );
    }
    Ok(r)
}

/// A logged-in session and the usage-policy version its stream features announced, if any.
struct Session {
    client: Client,
    announced: Option<String>,
}

/// The whole RFC 6120 negotiation, as [`Client::login`] runs it, keeping the features that came
/// with `<bind/>`: they carry the `<policy/>` element (§4.2).
async fn login(cfg: &ClientConfig) -> Result<Session, ClientError> {
    let mut n = Negotiation::connect(cfg).await?;
    n.header().await?;
    let mut features = n.features().await?;
    if cfg.tls == TlsMode::StartTls {
        if features.starttls.is_none() {
            return Err(ClientError::Protocol(
                "the server does not offer STARTTLS".into(),
            ));
        }
        n.starttls().await?;
        n.header().await?;
        features = n.features().await?;
    }
    if features.mechanisms.is_empty() {
        return Err(ClientError::Protocol(
            "the server offers no SASL mechanism".into(),
        ));
    }
    let mechanism = n.choose_mechanism()?;
    n.auth(&mechanism).await?;
    n.restart().await?;
    n.header().await?;
    let features = n.features().await?;
    if !features.bind {
        return Err(ClientError::Protocol(
            "the server does not offer resource binding".into(),
        ));
    }
    let announced = announced_version(&features.element);
    let jid = n.bind(cfg.resource.as_deref()).await?;
    if features.session == Some(false) {
        n.session().await?;
    }
    Ok(Session {
        client: n.into_client(jid),
        announced,
    })
}

/// The version a `<policy required='true'/>` stream feature announces (§4.2); `required='false'`
/// restricts nothing.
fn announced_version(features: &Element) -> Option<String> {
    features
        .get_child("policy", NS_POLICY)
        .filter(|p| p.attr("required") == Some("true"))
        .and_then(|p| p.attr("version"))
        .map(str::to_owned)
}

/// Sends an IQ request and returns its answer. Meanwhile the server's software version query
/// (XEP-0092, which the gate sends a restricted session) is answered, as clients do; anything
/// else is skipped.
async fn request(client: &mut Client, iq: Element) -> Result<Element> {
    let id = iq.attr("id").unwrap_or_default().to_owned();
    client.send(&iq).await?;
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let el = client
            .recv_matching(left, |el| el.is("iq", NS_CLIENT))
            .await
            .with_context(|| format!("waiting for the answer to IQ {id}"))?;
        if el.attr("id") == Some(id.as_str()) && matches!(el.attr("type"), Some("result" | "error"))
        {
            return Ok(el);
        }
        if el.attr("type") == Some("get") && el.get_child("query", NS_VERSION).is_some() {
            let mut answer = Element::new("iq", NS_CLIENT)
                .with_attr("type", "result")
                .with_attr("id", el.attr("id").unwrap_or_default())
                .with_child(
                    Element::new("query", NS_VERSION)
                        .with_child(Element::new("name", NS_VERSION).with_text("causerie-bench"))
                        .with_child(
                            Element::new("version", NS_VERSION)
                                .with_text(env!("CARGO_PKG_VERSION")),
                        ),
                );
            if let Some(from) = el.attr("from") {
                answer = answer.with_attr("to", from);
            }
            client.send(&answer).await?;
        }
    }
}

fn policy_iq(kind: &str, id: &str, domain: &str, payload: Element) -> Element {
    Element::new("iq", NS_CLIENT)
        .with_attr("type", kind)
        .with_attr("id", id)
        .with_attr("to", domain)
        .with_child(payload)
}

/// §4.5: accepts `version` and checks the receipt of the answer.
async fn accept(client: &mut Client, domain: &str, version: &str) -> Result<()> {
    let iq = policy_iq(
        "set",
        "bench-accept",
        domain,
        Element::new("accept", NS_POLICY).with_attr("version", version),
    );
    let answer = request(client, iq).await?;
    let receipt = answer
        .get_child("receipt", NS_POLICY)
        .filter(|_| answer.attr("type") == Some("result"));
    match receipt {
        Some(r) if r.attr("version") == Some(version) => Ok(()),
        _ => bail!("accepting {version} was answered {}", answer.to_xml()),
    }
}

/// §4.4: the version in force, read from one session of the first bench account.
async fn version_in_force(on: &Target, s: &GateScenario) -> Result<String> {
    let cfg = s.client_config(on, 0);
    let mut session = login(&cfg)
        .await
        .with_context(|| format!("login of {} on {}", cfg.bare_jid(), on.label))?;
    let iq = policy_iq(
        "get",
        "bench-policy",
        &on.domain,
        Element::new("policy", NS_POLICY),
    );
    let answer = request(&mut session.client, iq).await?;
    let _ = session.client.close().await;
    answer
        .get_child("policy", NS_POLICY)
        .filter(|_| answer.attr("type") == Some("result"))
        .and_then(|p| p.attr("version"))
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{} has no usage policy in force (answer: {}); publish one with \
                 `causeriectl policy publish`",
                on.label,
                answer.to_xml()
            )
        })
}

/// Every bench account accepts `version` on the gate-on server, unless it already has.
/// Returns how many accepted now and how many had before.
async fn prepare(on: &Target, s: &GateScenario, version: &str) -> Result<(usize, usize)> {
    let semaphore = Arc::new(Semaphore::new(s.base.concurrency));
    let mut tasks = JoinSet::new();
    for n in 0..s.base.users {
        let cfg = s.client_config(on, n);
        let semaphore = semaphore.clone();
        let domain = on.domain.clone();
        let version = version.to_owned();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let jid = cfg.bare_jid();
            let result = async {
                let mut session = login(&cfg).await?;
                let accepted_now = match session.announced.as_deref() {
                    None => false,
                    Some(v) if v == version => {
                        accept(&mut session.client, &domain, &version).await?;
                        true
                    }
                    Some(v) => bail!("the stream announced version {v}, not {version}"),
                };
                let _ = session.client.close().await;
                Ok::<bool, anyhow::Error>(accepted_now)
            }
            .await;
            result.with_context(|| format!("preparing {jid}"))
        });
    }
    let (mut now, mut before) = (0, 0);
    while let Some(joined) = tasks.join_next().await {
        if joined.context("preparation task")?? {
            now += 1;
        } else {
            before += 1;
        }
    }
    Ok((now, before))
}

/// The gate-off server must hold nobody.
async fn check_off(off: &Target, s: &GateScenario) -> Result<()> {
    let cfg = s.client_config(off, 0);
    let session = login(&cfg)
        .await
        .with_context(|| format!("login of {} on {}", cfg.bare_jid(), off.label))?;
    if let Some(v) = session.announced {
        bail!(
            "{} announces usage policy {v} to {}: its gate is not off ([policy] enabled = false)",
            off.label,
            cfg.bare_jid()
        );
    }
    let _ = session.client.close().await;
    Ok(())
}

/// K sessions of one kind, one after the other.
async fn setup_block(
    target: &Target,
    probe: Option<Probe>,
    s: &GateScenario,
    kind: Kind,
    round: usize,
    version: &str,
) -> Result<Block> {
    let mut block = Block::default();
    let cpu_before = probe.map(|p| p.cpu_seconds()).transpose()?;
    for i in 0..s.sessions {
        let n = match kind {
            Kind::Off | Kind::On => i,
            Kind::First => s.first_session_account(round, i),
        };
        let cfg = s.client_config(target, n);
        let t0 = Instant::now();
        let mut session = login(&cfg)
            .await
            .with_context(|| format!("login of {}", cfg.bare_jid()))?;
        match (kind, session.announced.as_deref()) {
            (Kind::Off | Kind::On, None) => {}
            (Kind::First, Some(v)) if v == version => {
                let a0 = Instant::now();
                accept(&mut session.client, &target.domain, version).await?;
                block.accept_us.push(a0.elapsed().as_micros() as u64);
            }
            (Kind::First, None) => bail!(
                "{} was not asked to accept: the first sessions need accounts that never \
                 accepted (start from fresh data)",
                cfg.bare_jid()
            ),
            (_, Some(v)) => bail!("{} was asked to accept {v}", cfg.bare_jid()),
        }
        session
            .client
            .send_initial_presence(STEP_TIMEOUT)
            .await
            .with_context(|| format!("initial presence of {}", cfg.bare_jid()))?;
        block.setup_us.push(t0.elapsed().as_micros() as u64);
        session
            .client
            .close()
            .await
            .with_context(|| format!("closing the stream of {}", cfg.bare_jid()))?;
    }
    if let (Some(p), Some(before)) = (probe, cpu_before) {
        block.server_cpu = Some(p.cpu_seconds()? - before);
    }
    block.setup_us.sort_unstable();
    block.accept_us.sort_unstable();
    Ok(block)
}

/// §4.7: each account of the set-up blocks holds exactly one receipt for `version`, however many
/// sessions it had. Returns how many accounts were checked.
async fn check_receipts(on: &Target, s: &GateScenario, version: &str) -> Result<usize> {
    for n in 0..s.sessions {
        let cfg = s.client_config(on, n);
        let mut session = login(&cfg)
            .await
            .with_context(|| format!("login of {}", cfg.bare_jid()))?;
        let iq = policy_iq(
            "get",
            "bench-receipts",
            &on.domain,
            Element::new("receipts", NS_POLICY),
        );
        let answer = request(&mut session.client, iq).await?;
        let _ = session.client.close().await;
        let list = answer
            .get_child("receipts", NS_POLICY)
            .with_context(|| format!("receipts of {}: {}", cfg.bare_jid(), answer.to_xml()))?;
        let count = list
            .children()
            .filter(|r| r.is("receipt", NS_POLICY) && r.attr("version") == Some(version))
            .count();
        if count != 1 {
            bail!(
                "{} holds {count} receipts for {version} after {} sessions; expected 1",
                cfg.bare_jid(),
                2 * s.rounds + 2
            );
        }
    }
    Ok(s.sessions)
}

/// One line of the results: the value on each side in each round.
struct Figure {
    label: &'static str,
    unit: &'static str,
    sides: fn(&Round) -> (Option<f64>, Option<f64>),
}

/// The figures compared between the gate-on and the gate-off server.
const ON_OFF: &[Figure] = &[
    Figure {
        label: "messages/s",
        unit: "/s",
        sides: |r| {
            (
                Some(r.messages_on.messages_per_sec),
                Some(r.messages_off.messages_per_sec),
            )
        },
    },
    Figure {
        label: "server CPU per 1000 messages",
        unit: "ms",
        sides: |r| {
            (
                r.messages_on
                    .server_cpu_per_1000_messages
                    .map(|s| s * 1000.0),
                r.messages_off
                    .server_cpu_per_1000_messages
                    .map(|s| s * 1000.0),
            )
        },
    },
    Figure {
        label: "message latency p50",
        unit: "ms",
        sides: |r| {
            (
                Some(r.messages_on.latency_p50_ms),
                Some(r.messages_off.latency_p50_ms),
            )
        },
    },
    Figure {
        label: "message latency p99",
        unit: "ms",
        sides: |r| {
            (
                Some(r.messages_on.latency_p99_ms),
                Some(r.messages_off.latency_p99_ms),
            )
        },
    },
    Figure {
        label: "logins/s (concurrent)",
        unit: "/s",
        sides: |r| {
            (
                Some(r.messages_on.logins_per_sec),
                Some(r.messages_off.logins_per_sec),
            )
        },
    },
    Figure {
        label: "login time p50 (concurrent)",
        unit: "ms",
        sides: |r| {
            (
                Some(r.messages_on.login_p50_ms),
                Some(r.messages_off.login_p50_ms),
            )
        },
    },
    Figure {
        label: "server CPU per login (concurrent)",
        unit: "ms",
        sides: |r| {
            (
                cpu_per_login(&r.messages_on),
                cpu_per_login(&r.messages_off),
            )
        },
    },
    Figure {
        label: "session set-up p50 (one at a time)",
        unit: "ms",
        sides: |r| (r.on.setup_ms(50.0), r.off.setup_ms(50.0)),
    },
    Figure {
        label: "session set-up p90 (one at a time)",
        unit: "ms",
        sides: |r| (r.on.setup_ms(90.0), r.off.setup_ms(90.0)),
    },
    Figure {
        label: "server CPU per session (one at a time)",
        unit: "ms",
        sides: |r| (r.on.cpu_ms_per_session(), r.off.cpu_ms_per_session()),
    },
];

/// The figures of a first session (which accepts) against a later one, both gate on.
const FIRST_LATER: &[Figure] = &[
    Figure {
        label: "session set-up p50",
        unit: "ms",
        sides: |r| (r.first.setup_ms(50.0), r.on.setup_ms(50.0)),
    },
    Figure {
        label: "session set-up p90",
        unit: "ms",
        sides: |r| (r.first.setup_ms(90.0), r.on.setup_ms(90.0)),
    },
    Figure {
        label: "server CPU per session",
        unit: "ms",
        sides: |r| (r.first.cpu_ms_per_session(), r.on.cpu_ms_per_session()),
    },
    Figure {
        label: "<accept/> to its result, p50",
        unit: "ms",
        sides: |r| (r.first.accept_ms(50.0), None),
    },
    Figure {
        label: "<accept/> to its result, p90",
        unit: "ms",
        sides: |r| (r.first.accept_ms(90.0), None),
    },
];

fn cpu_per_login(r: &Report) -> Option<f64> {
    r.server_cpu_login_secs
        .filter(|_| r.logins_ok > 0)
        .map(|c| c * 1000.0 / r.logins_ok as f64)
}

/// The median of `v` (the mean of the middle two for an even count), `None` when empty.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// A figure summed up over the rounds: the median of each side, and the median, lowest and
/// highest of the per-round ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub ratio: Option<(f64, f64, f64)>,
}

pub fn summarize(pairs: &[(Option<f64>, Option<f64>)]) -> Summary {
    let a: Vec<f64> = pairs.iter().filter_map(|p| p.0).collect();
    let b: Vec<f64> = pairs.iter().filter_map(|p| p.1).collect();
    let ratios: Vec<f64> = pairs
        .iter()
        .filter_map(|p| match p {
            (Some(a), Some(b)) if *b != 0.0 => Some(a / b),
            _ => None,
        })
        .filter(|r| r.is_finite())
        .collect();
    let ratio = median(&ratios).map(|m| {
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (m, lo, hi)
    });
    Summary {
        a: median(&a),
        b: median(&b),
        ratio,
    }
}

pub(crate) fn value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(v) if unit == "/s" => format!("{v:.0}"),
        Some(v) if v >= 100.0 => format!("{v:.1} {unit}"),
        Some(v) => format!("{v:.3} {unit}"),
    }
}

fn section(out: &mut String, rounds: &[Round], figures: &[Figure], a: &str, b: &str) {
    let _ = writeln!(
        out,
        "  {:<40} {:>14} {:>14} {:>9} {:>13}",
        "", a, b, "ratio", "range"
    );
    for f in figures {
        let pairs: Vec<_> = rounds.iter().map(f.sides).collect();
        let s = summarize(&pairs);
        let (ratio, range) = match s.ratio {
            Some((m, lo, hi)) => (format!("{m:.3}"), format!("{lo:.2}–{hi:.2}")),
            None => ("-".into(), String::new()),
        };
        let _ = writeln!(
            out,
            "  {:<40} {:>14} {:>14} {:>9} {:>13}",
            f.label,
            value(s.a, f.unit),
            value(s.b, f.unit),
            ratio,
            range
        );
    }
}

/// The results for people.
pub fn table(s: &GateScenario, r: &GateReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "usage-policy gate: on at {} (version {} in force), off at {}",
        r.on_addr, r.version, r.off_addr
    );
    let _ = writeln!(
        out,
        "scenario: {} rounds; each: {} sessions one at a time of each kind, then {}",
        s.rounds,
        s.sessions,
        crate::report::describe(&s.base)
    );
    let _ = writeln!(
        out,
        "prepared: {} bench accounts accepted with <accept/> ({} had already)",
        r.accepted_now, r.accepted_before
    );
    let n = r.rounds.len();
    let _ = writeln!(
        out,
        "\ngate on (accepted) / gate off: median of {n} rounds; ratio = median of the per-round \
         ratios on/off, range = lowest–highest"
    );
    section(&mut out, &r.rounds, ON_OFF, "gate on", "gate off");
    let _ = writeln!(
        out,
        "\nacceptance: an account's first session (login, <accept/>, presence) / a later \
         session (login, presence), gate on"
    );
    section(&mut out, &r.rounds, FIRST_LATER, "first", "later");
    let _ = writeln!(
        out,
        "\nreceipts: {} accounts, after {} sessions each on the gate-on server, hold exactly one \
         receipt each",
        r.receipts_checked, r.sessions_per_checked_account
    );
    let _ = writeln!(
        out,
        "message runs: gate on first in {} of {n} rounds",
        r.rounds.iter().filter(|x| x.on_first).count()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::tests_support::scenario;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratios_are_paired_by_round() {
        // Drift doubles both sides in the second round: the per-round ratio does not move.
        let s = summarize(&[
            (Some(110.0), Some(100.0)),
            (Some(220.0), Some(200.0)),
            (Some(90.0), Some(100.0)),
        ]);
        assert_eq!(s.a, Some(110.0));
        assert_eq!(s.b, Some(100.0));
        let (m, lo, hi) = s.ratio.expect("ratios");
        assert!((m - 1.1).abs() < 1e-9, "{m}");
        assert!((lo - 0.9).abs() < 1e-9 && (hi - 1.1).abs() < 1e-9);
        let one_sided = summarize(&[(Some(1.0), None)]);
        assert_eq!(one_sided.ratio, None);
        assert_eq!(one_sided.a, Some(1.0));
    }

    #[test]
    fn first_sessions_take_new_accounts_each_round() {
        let g = GateScenario {
            base: scenario(),
            rounds: 3,
            sessions: 2,
        };
        assert!(g.validate().is_ok());
        assert_eq!(g.accounts(), 4 + 3 * 2);
        let firsts: Vec<usize> = (0..3)
            .flat_map(|r| (0..2).map(move |i| (r, i)))
            .map(|(r, i)| g.first_session_account(r, i))
            .collect();
        assert_eq!(firsts, vec![4, 5, 6, 7, 8, 9]);
        let too_many = GateScenario {
            sessions: 5,
            ..g.clone()
        };
        assert!(too_many.validate().is_err());
        let no_rounds = GateScenario { rounds: 0, ..g };
        assert!(no_rounds.validate().is_err());
    }

    #[test]
    fn only_a_required_policy_feature_announces_a_version() {
        let features = |required: &str| {
            Element::new("features", "http://etherx.jabber.org/streams")
                .with_child(Element::new("bind", "urn:ietf:params:xml:ns:xmpp-bind"))
                .with_child(
                    Element::new("policy", NS_POLICY)
                        .with_attr("required", required)
                        .with_attr("version", "ab".repeat(32))
                        .with_attr("short", "abab"),
                )
        };
        assert_eq!(announced_version(&features("true")), Some("ab".repeat(32)));
        assert_eq!(announced_version(&features("false")), None);
        let none = Element::new("features", "http://etherx.jabber.org/streams")
            .with_child(Element::new("bind", "urn:ietf:params:xml:ns:xmpp-bind"));
        assert_eq!(announced_version(&none), None);
    }
}
