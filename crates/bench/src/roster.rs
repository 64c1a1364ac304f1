//! The roster-login scenario: one user with a large roster of mutual subscriptions (RFC 6121 §3,
//! state "Both"), some of whose contacts are online.
//!
//! 1. **Prepare.** The user's roster is read; contacts missing from it are added through the
//!    protocol itself, so that it works against any server: each contact logs in, becomes
//!    available and asks to subscribe to the user; the user's client approves every request and
//!    asks back; the contact approves. The roster is read again and must hold every contact with
//!    `subscription='both'`.
//! 2. **Login.** M contacts log in and stay online. K times, the user logs in (full RFC 6120
//!    negotiation), asks for the roster and sends initial presence at once, as clients do; the
//!    time measured runs from the TCP connect to having both the whole roster and the presence of
//!    every online contact (RFC 6121 §4.2–4.3: the server probes the contacts and they answer).
//! 3. **Broadcast.** The user, available, sends B presence updates, one at a time, each awaited
//!    until every online contact has received it (RFC 6121 §4.4.2); the server's CPU time over
//!    the B broadcasts gives the cost of one. This is repeated with more contacts online, so that
//!    the cost of one more recipient shows apart from the fixed cost of a broadcast.
//!
//! Accounts follow the load tool's patterns: the user is number `first_index`, the contacts the
//! N numbers after it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use causerie_testkit::client::{Client, ClientConfig, ClientError, NS_CLIENT, TlsMode, Trust};
use causerie_xml::Element;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::procfs::Probe;
use crate::scenario::{Target, percentile, require_loopback};

const NS_ROSTER: &str = "jabber:iq:roster";
/// Upper bound of one wait for the server (a login, an answer, a delivery).
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Online contacts send whitespace this often, so that servers with an idle timeout keep them.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Most contacts in the scenario.
pub const MAX_CONTACTS: usize = 10_000;
/// Most repetitions of a measured step.
pub const MAX_REPEAT: usize = 10_000;

/// What to run; the same for every target of a comparison.
#[derive(Debug, Clone)]
pub struct RosterScenario {
    /// N: contacts in the user's roster.
    pub contacts: usize,
    /// M: contacts online while the user logs in.
    pub online: usize,
    /// K: measured logins.
    pub repeat: usize,
    /// Numbers of online contacts at which broadcasts are measured, ascending.
    pub broadcast_online: Vec<usize>,
    /// B: broadcasts measured at each of those points.
    pub broadcasts: usize,
    /// Logins in progress at once while preparing and bringing contacts online.
    pub concurrency: usize,
    pub tls: TlsMode,
    pub trust: Trust,
    pub mechanism: Option<String>,
    pub user_pattern: String,
    pub password_pattern: String,
    pub first_index: usize,
    /// Upper bound of the whole run against one server.
    pub max_duration: Duration,
}

impl RosterScenario {
    pub fn validate(&self) -> Result<()> {
        if self.contacts == 0 || self.contacts > MAX_CONTACTS {
            bail!("--contacts must be between 1 and {MAX_CONTACTS}");
        }
        if self.online > self.contacts {
            bail!("--online must be at most --contacts");
        }
        if self.repeat == 0 || self.repeat > MAX_REPEAT || self.broadcasts > MAX_REPEAT {
            bail!("--repeat must be between 1 and {MAX_REPEAT}, --broadcasts at most {MAX_REPEAT}");
        }
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self
            .broadcast_online
            .iter()
            .any(|&n| n == 0 || n > self.contacts)
        {
            bail!("every --broadcast-online value must be between 1 and --contacts");
        }
        if self.broadcast_online.windows(2).any(|w| w[0] >= w[1]) {
            bail!("--broadcast-online values must be ascending");
        }
        if self.max_duration > crate::scenario::MAX_DURATION {
            bail!(
                "--max-duration-secs must be at most {}",
                crate::scenario::MAX_DURATION.as_secs()
            );
        }
        for p in [&self.user_pattern, &self.password_pattern] {
            if !p.contains("{i}") {
                bail!("pattern {p:?} must contain {{i}}");
            }
        }
        Ok(())
    }

    /// Account `n`: 0 is the user, 1..=N the contacts.
    fn account(&self, n: usize) -> (String, String) {
        let i = (self.first_index + n).to_string();
        (
            self.user_pattern.replace("{i}", &i),
            self.password_pattern.replace("{i}", &i),
        )
    }

    fn client_config(&self, target: &Target, n: usize, resource: &str) -> ClientConfig {
        let (user, password) = self.account(n);
        let mut cfg = ClientConfig::new(target.addr, &target.domain, &user, &password);
        cfg.tls = self.tls;
        cfg.trust = self.trust.clone();
        cfg.mechanism = self.mechanism.clone();
        cfg.resource = Some(resource.to_owned());
        cfg
    }

    fn bare(&self, target: &Target, n: usize) -> String {
        format!("{}@{}", self.account(n).0, target.domain)
    }
}

/// The cost of broadcasts at one number of online contacts.
#[derive(Debug, Clone, Default)]
pub struct BroadcastPoint {
    pub recipients: usize,
    pub broadcasts: usize,
    /// Server CPU seconds over all the broadcasts.
    pub server_cpu_secs: Option<f64>,
    /// Wall time of one broadcast until the last recipient had it, median.
    pub delivery_p50_ms: f64,
}

impl BroadcastPoint {
    pub fn cpu_per_broadcast_ms(&self) -> Option<f64> {
        self.server_cpu_secs
            .filter(|_| self.broadcasts > 0)
            .map(|s| s * 1000.0 / self.broadcasts as f64)
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct RosterReport {
    pub label: String,
    pub addr: String,
    pub contacts: usize,
    pub online: usize,
    pub prepare_secs: f64,
    /// Contacts whose mutual subscription this run created.
    pub subscriptions_created: usize,
    /// Contacts in the user's roster with `subscription='both'` after preparing.
    pub roster_both: usize,
    pub logins: usize,
    pub login_p50_ms: f64,
    pub login_p90_ms: f64,
    pub login_max_ms: f64,
    /// Items in the roster of the last measured login.
    pub roster_items_at_login: usize,
    /// Server CPU over the measured logins (and the logouts between them), per login.
    pub server_cpu_per_login_ms: Option<f64>,
    pub broadcast: Vec<BroadcastPoint>,
    pub errors: Vec<String>,
}

impl RosterReport {
    /// The marginal server CPU of one more recipient, from the first and last broadcast points.
    pub fn cpu_per_recipient_us(&self) -> Option<f64> {
        let (first, last) = (self.broadcast.first()?, self.broadcast.last()?);
        if last.recipients <= first.recipients {
            return None;
        }
        let (a, b) = (first.cpu_per_broadcast_ms()?, last.cpu_per_broadcast_ms()?);
        Some((b - a) * 1000.0 / (last.recipients - first.recipients) as f64)
    }
}

fn ms(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// Runs the scenario against one target, within the scenario's time bound.
pub async fn run(target: &Target, s: &RosterScenario) -> Result<RosterReport> {
    require_loopback(&target.addr)?;
    s.validate()?;
    match tokio::time::timeout(s.max_duration, run_inner(target, s)).await {
        Ok(r) => r,
        Err(_) => bail!(
            "{}: the scenario did not finish within {} s",
            target.label,
            s.max_duration.as_secs()
        ),
    }
}

async fn run_inner(target: &Target, s: &RosterScenario) -> Result<RosterReport> {
    let server = target.pid.map(|pid| Probe::new(Some(pid)));
    let mut report = RosterReport {
        label: target.label.clone(),
        addr: target.addr.to_string(),
        contacts: s.contacts,
        online: s.online,
        ..RosterReport::default()
    };

    // Phase 1: the roster.
    let started = Instant::now();
    report.subscriptions_created = prepare(target, s).await?;
    report.prepare_secs = started.elapsed().as_secs_f64();
    let mut user = Client::login(&s.client_config(target, 0, "check"))
        .await
        .context("user login")?;
    let roster = roster_get(&mut user).await?;
    report.roster_both = both_count(&roster, &contact_set(target, s, 1..=s.contacts));
    user.close().await.ok();
    if report.roster_both != s.contacts {
        bail!(
            "{}: after preparing, {} of {} contacts have subscription 'both'",
            target.label,
            report.roster_both,
            s.contacts
        );
    }

    // Phase 2: logins with M contacts online.
    let (bcast_tx, mut bcast_rx) = mpsc::unbounded_channel::<(usize, String)>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut online = Online {
        tasks: JoinSet::new(),
        count: 0,
    };
    online
        .bring_to(target, s, s.online, &bcast_tx, &stop_rx)
        .await?;
    let expected: HashSet<String> = contact_set(target, s, 1..=s.online);
    let cpu_before = server.map(|p| p.cpu_seconds()).transpose()?;
    let mut times = Vec::with_capacity(s.repeat);
    for k in 0..s.repeat {
        let (took, items) = measured_login(target, s, k, &expected)
            .await
            .with_context(|| format!("{}: measured login {k}", target.label))?;
        times.push(ms(took));
        report.roster_items_at_login = items;
    }
    if let (Some(p), Some(before)) = (server, cpu_before) {
        report.server_cpu_per_login_ms =
            Some((p.cpu_seconds()? - before) * 1000.0 / s.repeat as f64);
    }
    times.sort_unstable();
    report.logins = times.len();
    report.login_p50_ms = percentile(&times, 50.0) as f64 / 1000.0;
    report.login_p90_ms = percentile(&times, 90.0) as f64 / 1000.0;
    report.login_max_ms = times.last().copied().unwrap_or(0) as f64 / 1000.0;

    // Phase 3: broadcasts to more and more online contacts.
    if !s.broadcast_online.is_empty() && s.broadcasts > 0 {
        let user = Client::login(&s.client_config(target, 0, "broadcaster"))
            .await
            .context("broadcaster login")?;
        let jid = user.jid().to_string();
        let (mut reader, mut writer) = user.split();
        // The user's own stream is drained on the side (echoes, contacts' presence).
        let (drain_stop_tx, mut drain_stop_rx) = watch::channel(false);
        let drain = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = drain_stop_rx.changed() => break,
                    r = reader.recv(STEP_TIMEOUT) => match r {
                        Ok(_) | Err(ClientError::Timeout) => {}
                        Err(_) => break,
                    },
                }
            }
            reader
        });
        writer
            .send(&Element::new("presence", NS_CLIENT))
            .await
            .context("broadcaster presence")?;
        for (p, &recipients) in s.broadcast_online.iter().enumerate() {
            online
                .bring_to(target, s, recipients, &bcast_tx, &stop_rx)
                .await?;
            // A first broadcast, not measured: everything before it (logins, probes) is over
            // once every recipient has it.
            broadcast_once(&mut writer, &mut bcast_rx, &format!("warm-{p}"), recipients).await?;
            let cpu_before = server.map(|p| p.cpu_seconds()).transpose()?;
            let mut walls = Vec::with_capacity(s.broadcasts);
            for b in 0..s.broadcasts {
                let t0 = Instant::now();
                broadcast_once(
                    &mut writer,
                    &mut bcast_rx,
                    &format!("b-{p}-{b}"),
                    recipients,
                )
                .await?;
                walls.push(ms(t0.elapsed()));
            }
            let cpu = match (server, cpu_before) {
                (Some(pr), Some(before)) => Some(pr.cpu_seconds()? - before),
                _ => None,
            };
            walls.sort_unstable();
            report.broadcast.push(BroadcastPoint {
                recipients,
                broadcasts: s.broadcasts,
                server_cpu_secs: cpu,
                delivery_p50_ms: percentile(&walls, 50.0) as f64 / 1000.0,
            });
        }
        let _ = drain_stop_tx.send(true);
        if let Ok(reader) = drain.await {
            Client::unsplit(reader, writer, jid).close().await.ok();
        }
    }

    let _ = stop_tx.send(true);
    while let Some(joined) = online.tasks.join_next().await {
        if let Ok(Err(e)) = joined
            && report.errors.len() < 5
        {
            report.errors.push(e);
        }
    }
    Ok(report)
}

fn contact_set(
    target: &Target,
    s: &RosterScenario,
    range: std::ops::RangeInclusive<usize>,
) -> HashSet<String> {
    range.map(|n| s.bare(target, n)).collect()
}

fn both_count(roster: &Element, contacts: &HashSet<String>) -> usize {
    roster
        .children()
        .filter(|i| i.is("item", NS_ROSTER))
        .filter(|i| i.attr("subscription") == Some("both"))
        .filter(|i| i.attr("jid").is_some_and(|j| contacts.contains(j)))
        .count()
}

async fn roster_get(c: &mut Client) -> Result<Element> {
    let id = "roster-get";
    c.send(
        &Element::new("iq", NS_CLIENT)
            .with_attr("type", "get")
            .with_attr("id", id)
            .with_child(Element::new("query", NS_ROSTER)),
    )
    .await?;
    let r = c
        .recv_matching(STEP_TIMEOUT, |e| {
            e.is("iq", NS_CLIENT) && e.attr("id") == Some(id)
        })
        .await
        .context("roster answer")?;
    if r.attr("type") != Some("result") {
        bail!("roster get failed: {}", r.to_xml());
    }
    Ok(r.get_child("query", NS_ROSTER)
        .cloned()
        .unwrap_or_else(|| Element::new("query", NS_ROSTER)))
}

fn subscription(kind: &str, to: &str) -> Element {
    Element::new("presence", NS_CLIENT)
        .with_attr("to", to)
        .with_attr("type", kind)
}

fn bare_of(jid: &str) -> &str {
    jid.split('/').next().unwrap_or(jid)
}

/// Phase 1: mutual subscriptions between the user and every contact not yet in the roster.
/// Returns how many were created.
async fn prepare(target: &Target, s: &RosterScenario) -> Result<usize> {
    let mut user = Client::login(&s.client_config(target, 0, "prepare"))
        .await
        .context("user login")?;
    let roster = roster_get(&mut user).await?;
    let all = contact_set(target, s, 1..=s.contacts);
    let in_roster: HashSet<String> = roster
        .children()
        .filter(|i| i.is("item", NS_ROSTER))
        .filter_map(|i| i.attr("jid").map(str::to_owned))
        .filter(|j| all.contains(j))
        .collect();
    if both_count(&roster, &all) != in_roster.len() {
        bail!(
            "{}: some contacts are in the user's roster without a mutual subscription; start from \
             fresh accounts",
            target.label
        );
    }
    let missing: Vec<usize> = (1..=s.contacts)
        .filter(|&n| !in_roster.contains(&s.bare(target, n)))
        .collect();
    if missing.is_empty() {
        user.close().await.ok();
        return Ok(0);
    }
    user.send_initial_presence(STEP_TIMEOUT).await?;
    let user_bare = s.bare(target, 0);
    let jid = user.jid().to_string();
    let (mut reader, mut writer) = user.split();
    let wanted: HashSet<String> = missing.iter().map(|&n| s.bare(target, n)).collect();
    let want = wanted.len();

    // The user's side: approve each request and ask back; done when every contact approved.
    let user_side = tokio::spawn(async move {
        let mut approved: HashSet<String> = HashSet::new();
        let mut asked: HashSet<String> = HashSet::new();
        while approved.len() < want {
            let el = reader
                .recv(STEP_TIMEOUT)
                .await
                .with_context(|| format!("user side: {} of {want} approvals", approved.len()))?;
            if !el.is("presence", NS_CLIENT) {
                continue;
            }
            let Some(from) = el.attr("from").map(|f| bare_of(f).to_owned()) else {
                continue;
            };
            if !wanted.contains(&from) {
                continue;
            }
            match el.attr("type") {
                Some("subscribe") if asked.insert(from.clone()) => {
                    writer.send(&subscription("subscribed", &from)).await?;
                    writer.send(&subscription("subscribe", &from)).await?;
                }
                // Approved: the contact's "subscribed", or its presence, which only comes once
                // subscribed (some servers push the roster change instead of delivering the
                // "subscribed" stanza, RFC 6121 §3.1.6).
                Some("subscribed") | None => {
                    approved.insert(from);
                }
                _ => {}
            }
        }
        anyhow::Ok((reader, writer))
    });

    let semaphore = Arc::new(Semaphore::new(s.concurrency));
    let mut contacts = JoinSet::new();
    for n in missing {
        let cfg = s.client_config(target, n, "prepare");
        let semaphore = semaphore.clone();
        let user_bare = user_bare.clone();
        contacts.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            contact_handshake(&cfg, &user_bare)
                .await
                .with_context(|| format!("contact {}", cfg.bare_jid()))
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = contacts.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if let Some(first) = failures.first() {
        let user_state = if user_side.is_finished() {
            match user_side.await {
                Ok(Ok(_)) => "the user's side had finished".to_owned(),
                Ok(Err(e)) => format!("the user's side failed: {e:#}"),
                Err(e) => format!("the user's side failed: {e}"),
            }
        } else {
            user_side.abort();
            "the user's side was still waiting".to_owned()
        };
        bail!(
            "{}: {} contacts failed to subscribe ({user_state}); first: {first}",
            target.label,
            failures.len()
        );
    }
    let (reader, writer) = user_side.await.context("user side")??;
    Client::unsplit(reader, writer, jid).close().await.ok();
    Ok(want)
}

/// The contact's half of the handshake: ask, then approve the user's request.
async fn contact_handshake(cfg: &ClientConfig, user: &str) -> Result<()> {
    let mut c = Client::login(cfg).await?;
    c.send_initial_presence(STEP_TIMEOUT).await?;
    c.send(&subscription("subscribe", user)).await?;
    let (mut asked, mut approved) = (false, false);
    let mut seen: Vec<String> = Vec::new();
    while !(asked && approved) {
        let el = c.recv(STEP_TIMEOUT).await.with_context(|| {
            format!(
                "asked {asked}, approved {approved}, received: {}",
                seen.join(" ")
            )
        })?;
        if seen.len() < 8 {
            seen.push(el.to_xml());
        }
        if !el.is("presence", NS_CLIENT) || el.attr("from").map(bare_of) != Some(user) {
            continue;
        }
        match el.attr("type") {
            Some("subscribe") if !asked => {
                c.send(&subscription("subscribed", user)).await?;
                asked = true;
            }
            Some("subscribed") | None => approved = true,
            _ => {}
        }
    }
    c.close().await.ok();
    Ok(())
}

/// Contacts held online, each by a task that answers the server's requests, keeps the stream
/// alive and reports the user's broadcasts it receives.
struct Online {
    tasks: JoinSet<std::result::Result<(), String>>,
    count: usize,
}

impl Online {
    /// Logs contacts count+1..=n in and waits until each is available.
    async fn bring_to(
        &mut self,
        target: &Target,
        s: &RosterScenario,
        n: usize,
        reports: &mpsc::UnboundedSender<(usize, String)>,
        stop: &watch::Receiver<bool>,
    ) -> Result<()> {
        if n <= self.count {
            return Ok(());
        }
        let semaphore = Arc::new(Semaphore::new(s.concurrency));
        let mut logins = JoinSet::new();
        for i in self.count + 1..=n {
            let cfg = s.client_config(target, i, "online");
            let semaphore = semaphore.clone();
            logins.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let mut c = Client::login(&cfg).await?;
                c.send_initial_presence(STEP_TIMEOUT).await?;
                anyhow::Ok((i, c))
            });
        }
        let user = s.bare(target, 0);
        while let Some(joined) = logins.join_next().await {
            let (i, c) = joined.context("login task")?.context("online contact")?;
            self.tasks
                .spawn(hold(c, i, user.clone(), reports.clone(), stop.clone()));
        }
        self.count = n;
        Ok(())
    }
}

async fn hold(
    mut c: Client,
    index: usize,
    user: String,
    reports: mpsc::UnboundedSender<(usize, String)>,
    mut stop: watch::Receiver<bool>,
) -> std::result::Result<(), String> {
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = keepalive.tick() => {
                c.send_raw(b" ").await.map_err(|e| e.to_string())?;
            }
            r = c.recv(STEP_TIMEOUT) => {
                let el = match r {
                    Ok(el) => el,
                    Err(ClientError::Timeout) => continue,
                    Err(e) => return Err(format!("{}: {e}", c.jid())),
                };
                if el.is("iq", NS_CLIENT) && matches!(el.attr("type"), Some("get" | "set")) {
                    // Pings and pushes: an empty result keeps the server content.
                    let mut answer = Element::new("iq", NS_CLIENT).with_attr("type", "result");
                    if let Some(id) = el.attr("id") {
                        answer.set_attr("id", id);
                    }
                    if let Some(from) = el.attr("from") {
                        answer.set_attr("to", from);
                    }
                    c.send(&answer).await.map_err(|e| e.to_string())?;
                } else if el.is("presence", NS_CLIENT)
                    && el.attr("from").map(bare_of) == Some(user.as_str())
                    && let Some(status) = el.get_child("status", NS_CLIENT)
                {
                    let _ = reports.send((index, status.text()));
                }
            }
        }
    }
    c.close().await.map_err(|e| e.to_string())
}

/// One presence update from the user, awaited until `recipients` contacts reported it.
async fn broadcast_once(
    writer: &mut causerie_testkit::client::ClientWriter,
    reports: &mut mpsc::UnboundedReceiver<(usize, String)>,
    marker: &str,
    recipients: usize,
) -> Result<()> {
    let p = Element::new("presence", NS_CLIENT)
        .with_child(Element::new("status", NS_CLIENT).with_text(marker));
    writer.send(&p).await?;
    let mut got: HashSet<usize> = HashSet::new();
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while got.len() < recipients {
        match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some((i, status))) if status == marker => {
                got.insert(i);
            }
            Ok(Some(_)) => {}
            Ok(None) => bail!("the online contacts are gone"),
            Err(_) => bail!(
                "broadcast {marker}: {} of {recipients} contacts received it in time",
                got.len()
            ),
        }
    }
    Ok(())
}

/// One measured login: connect, negotiate, ask for the roster and send initial presence, until
/// the roster and the presence of every online contact are in. Returns the time and the number
/// of roster items.
async fn measured_login(
    target: &Target,
    s: &RosterScenario,
    k: usize,
    online: &HashSet<String>,
) -> Result<(Duration, usize)> {
    let cfg = s.client_config(target, 0, &format!("login-{k}"));
    let t0 = Instant::now();
    let mut c = Client::login(&cfg).await?;
    let id = format!("roster-{k}");
    c.send(
        &Element::new("iq", NS_CLIENT)
            .with_attr("type", "get")
            .with_attr("id", id.as_str())
            .with_child(Element::new("query", NS_ROSTER)),
    )
    .await?;
    c.send(&Element::new("presence", NS_CLIENT)).await?;
    let mut items = None;
    let mut seen: HashSet<String> = HashSet::new();
    while items.is_none() || seen.len() < online.len() {
        let el = c.recv(STEP_TIMEOUT).await.with_context(|| {
            format!(
                "roster {}, {} of {} contacts' presence",
                if items.is_some() { "in" } else { "missing" },
                seen.len(),
                online.len()
            )
        })?;
        if el.is("iq", NS_CLIENT) && el.attr("id") == Some(id.as_str()) {
            if el.attr("type") != Some("result") {
                bail!("roster get failed: {}", el.to_xml());
            }
            let n = el.get_child("query", NS_ROSTER).map_or(0, |q| {
                q.children().filter(|i| i.is("item", NS_ROSTER)).count()
            });
            items = Some(n);
        } else if el.is("presence", NS_CLIENT)
            && el.attr("type").is_none()
            && let Some(from) = el.attr("from").map(bare_of)
            && online.contains(from)
        {
            seen.insert(from.to_owned());
        }
    }
    let took = t0.elapsed();
    c.close().await.ok();
    Ok((took, items.unwrap_or(0)))
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn scenario() -> RosterScenario {
        RosterScenario {
            contacts: 20,
            online: 5,
            repeat: 3,
            broadcast_online: vec![5, 20],
            broadcasts: 10,
            concurrency: 4,
            tls: TlsMode::StartTls,
            trust: Trust::AnyCertificate,
            mechanism: None,
            user_pattern: "bench{i}".into(),
            password_pattern: "bench{i}".into(),
            first_index: 1,
            max_duration: Duration::from_secs(60),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::scenario;
    use super::*;

    #[test]
    fn the_user_is_the_first_account_and_contacts_follow() {
        let s = scenario();
        assert_eq!(s.account(0), ("bench1".to_string(), "bench1".to_string()));
        assert_eq!(s.account(20).0, "bench21");
        assert!(s.validate().is_ok());
        for bad in [
            RosterScenario {
                online: 21,
                ..scenario()
            },
            RosterScenario {
                broadcast_online: vec![30],
                ..scenario()
            },
            RosterScenario {
                contacts: 0,
                online: 0,
                broadcast_online: vec![],
                ..scenario()
            },
        ] {
            assert!(bad.validate().is_err());
        }
    }

    #[test]
    fn only_mutual_items_of_known_contacts_count() {
        let roster = Element::new("query", NS_ROSTER)
            .with_child(
                Element::new("item", NS_ROSTER)
                    .with_attr("jid", "bench2@localhost")
                    .with_attr("subscription", "both"),
            )
            .with_child(
                Element::new("item", NS_ROSTER)
                    .with_attr("jid", "bench3@localhost")
                    .with_attr("subscription", "to"),
            )
            .with_child(
                Element::new("item", NS_ROSTER)
                    .with_attr("jid", "stranger@localhost")
                    .with_attr("subscription", "both"),
            );
        let contacts: HashSet<String> = ["bench2@localhost", "bench3@localhost"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(both_count(&roster, &contacts), 1);
    }
}
