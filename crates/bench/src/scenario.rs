//! The benchmark scenario: N users log in over TLS with bounded concurrency and stay idle for a
//! while (memory per idle session), then pairs of them exchange M chat messages each with at
//! most `window` messages in flight per direction (throughput, latency, server CPU per message).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use causerie_testkit::client::{
    Client, ClientConfig, ClientError, ClientReader, ClientWriter, NS_CLIENT, TlsMode, Trust,
};
use causerie_xml::Element;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::procfs::Probe;

/// A server under test.
#[derive(Debug, Clone)]
pub struct Target {
    pub label: String,
    pub addr: SocketAddr,
    pub domain: String,
    pub pid: Option<u32>,
}

/// What to run against a target; the same for every target of a comparison.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub users: usize,
    pub messages: usize,
    pub concurrency: usize,
    pub window: usize,
    pub tls: TlsMode,
    pub trust: Trust,
    pub mechanism: Option<String>,
    pub user_pattern: String,
    pub password_pattern: String,
    pub first_index: usize,
    pub idle: Duration,
    pub max_duration: Duration,
    /// Texts the messages carry after their sequence number and timestamp, taken in turn; none
    /// sends the bare "SEQ MICROS".
    pub bodies: Arc<Vec<String>>,
}

/// Upper bounds that keep a mistyped command from turning into a load test of the machine.
pub const MAX_USERS: usize = 100_000;
pub const MAX_MESSAGES: usize = 100_000;
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Most message texts read from a `--bodies` file, and the longest one, in characters.
pub const MAX_BODIES: usize = 100_000;
pub const MAX_BODY_CHARS: usize = 4000;

/// The message texts of a `--bodies` file: one per line; blank lines and lines starting with `#`
/// are skipped.
pub fn parse_bodies(text: &str) -> Result<Vec<String>> {
    let mut bodies = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.chars().count() > MAX_BODY_CHARS {
            bail!("line {}: longer than {MAX_BODY_CHARS} characters", i + 1);
        }
        if bodies.len() == MAX_BODIES {
            bail!("more than {MAX_BODIES} message texts");
        }
        bodies.push(line.to_owned());
    }
    if bodies.is_empty() {
        bail!("no message text (one per line)");
    }
    Ok(bodies)
}

/// The body of message `seq` of sender `stream`: "SEQ MICROS", then a text when there are any.
/// Senders start at different texts, so that at any moment the server sees a mix.
fn body(bodies: &[String], stream: usize, seq: usize, micros: u64) -> String {
    if bodies.is_empty() {
        return format!("{seq} {micros}");
    }
    let text = &bodies[stream.wrapping_mul(7919).wrapping_add(seq) % bodies.len()];
    format!("{seq} {micros} {text}")
}

impl Scenario {
    pub fn validate(&self) -> Result<()> {
        if self.users < 2 || !self.users.is_multiple_of(2) || self.users > MAX_USERS {
            bail!("--users must be even, between 2 and {MAX_USERS}");
        }
        if self.messages > MAX_MESSAGES {
            bail!("--messages must be at most {MAX_MESSAGES}");
        }
        if self.concurrency == 0 || self.window == 0 {
            bail!("--concurrency and --window must be at least 1");
        }
        if self.max_duration > MAX_DURATION || self.idle > MAX_DURATION {
            bail!("durations must be at most {} s", MAX_DURATION.as_secs());
        }
        for p in [&self.user_pattern, &self.password_pattern] {
            if !p.contains("{i}") {
                bail!("pattern {p:?} must contain {{i}}");
            }
        }
        Ok(())
    }

    pub fn username(&self, n: usize) -> String {
        self.user_pattern
            .replace("{i}", &(self.first_index + n).to_string())
    }

    pub fn password(&self, n: usize) -> String {
        self.password_pattern
            .replace("{i}", &(self.first_index + n).to_string())
    }

    fn client_config(&self, target: &Target, n: usize) -> ClientConfig {
        let mut cfg = ClientConfig::new(
            target.addr,
            &target.domain,
            &self.username(n),
            &self.password(n),
        );
        cfg.tls = self.tls;
        cfg.trust = self.trust.clone();
        cfg.mechanism = self.mechanism.clone();
        cfg
    }
}

/// The benchmark refuses any address outside the loopback network: it logs in with well-known
/// passwords and generates load, which only belongs on a machine's own reference servers.
pub fn require_loopback(addr: &SocketAddr) -> Result<()> {
    if !addr.ip().is_loopback() {
        bail!(
            "{addr} is not a loopback address; the benchmark only runs against 127.0.0.0/8 or ::1"
        );
    }
    Ok(())
}

/// What one run measured. Server figures are `None` without a server PID.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub label: String,
    pub addr: String,
    pub users: usize,
    pub logins_ok: usize,
    pub logins_failed: usize,
    pub login_errors: Vec<String>,
    pub login_secs: f64,
    pub logins_per_sec: f64,
    pub login_p50_ms: f64,
    pub login_p99_ms: f64,
    pub server_cpu_login_secs: Option<f64>,
    pub rss_before: Option<u64>,
    pub rss_idle: Option<u64>,
    pub rss_per_session: Option<f64>,
    pub messages_expected: usize,
    pub messages_delivered: usize,
    pub message_errors: usize,
    pub message_error_samples: Vec<String>,
    pub message_secs: f64,
    pub messages_per_sec: f64,
    pub latency_p50_ms: f64,
    pub latency_p90_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    pub server_cpu_message_secs: Option<f64>,
    pub server_cpu_per_1000_messages: Option<f64>,
    pub bench_cpu_message_secs: Option<f64>,
    pub closed_cleanly: usize,
}

impl Report {
    /// Takes the message figures of an exchange (`exchange`) into a report of logins.
    pub fn add_messages(&mut self, m: &Report) {
        self.messages_expected = m.messages_expected;
        self.messages_delivered = m.messages_delivered;
        self.message_errors = m.message_errors;
        self.message_error_samples = m.message_error_samples.clone();
        self.message_secs = m.message_secs;
        self.messages_per_sec = m.messages_per_sec;
        self.latency_p50_ms = m.latency_p50_ms;
        self.latency_p90_ms = m.latency_p90_ms;
        self.latency_p99_ms = m.latency_p99_ms;
        self.latency_max_ms = m.latency_max_ms;
        self.server_cpu_message_secs = m.server_cpu_message_secs;
        self.server_cpu_per_1000_messages = m.server_cpu_per_1000_messages;
        self.bench_cpu_message_secs = m.bench_cpu_message_secs;
    }
}

/// The value at percentile `p` (nearest rank) of sorted values, 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

const ERROR_SAMPLES: usize = 5;
const PRESENCE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the scenario against one target.
pub async fn run(target: &Target, scenario: &Scenario) -> Result<Report> {
    let mut sessions = log_in(target, scenario).await?;
    let messages = exchange(&mut sessions, scenario).await?;
    let mut report = sessions.report.clone();
    report.add_messages(&messages);
    report.closed_cleanly = close(sessions).await;
    Ok(report)
}

/// The sessions of a run between its phases: the pairs that exchange messages (user 2k and user
/// 2k+1, both logged in), the sessions left without a peer, and the figures of the logins.
pub struct Sessions {
    target: Target,
    server: Option<Probe>,
    pairs: Vec<((usize, Client), (usize, Client))>,
    leftovers: Vec<Client>,
    /// The login and memory figures; the message figures are each exchange's.
    pub report: Report,
}

/// Phases 1 and 2 of the scenario: N logins with bounded concurrency, initial presence, the
/// idle wait and the server's memory.
pub async fn log_in(target: &Target, scenario: &Scenario) -> Result<Sessions> {
    require_loopback(&target.addr)?;
    scenario.validate()?;
    let server = target.pid.map(|pid| Probe::new(Some(pid)));
    let mut report = Report {
        label: target.label.clone(),
        addr: target.addr.to_string(),
        users: scenario.users,
        ..Report::default()
    };

    // Phase 1: logins with bounded concurrency.
    let rss_before = server.map(|p| p.rss_bytes()).transpose()?;
    let cpu_before_login = server.map(|p| p.cpu_seconds()).transpose()?;
    let semaphore = Arc::new(Semaphore::new(scenario.concurrency));
    let mut logins = JoinSet::new();
    let started = Instant::now();
    for n in 0..scenario.users {
        let cfg = scenario.client_config(target, n);
        let semaphore = semaphore.clone();
        logins.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let t0 = Instant::now();
            let result = Client::login(&cfg).await;
            (
                n,
                t0.elapsed(),
                result.map_err(|e| format!("{}: {e}", cfg.bare_jid())),
            )
        });
    }
    let mut clients: Vec<Option<Client>> = (0..scenario.users).map(|_| None).collect();
    let mut login_times = Vec::with_capacity(scenario.users);
    while let Some(joined) = logins.join_next().await {
        let (n, took, result) = joined.context("login task")?;
        match result {
            Ok(client) => {
                login_times.push(took.as_micros() as u64);
                clients[n] = Some(client);
            }
            Err(e) => {
                report.logins_failed += 1;
                if report.login_errors.len() < ERROR_SAMPLES {
                    report.login_errors.push(e);
                }
            }
        }
    }
    report.login_secs = started.elapsed().as_secs_f64();
    report.logins_ok = login_times.len();
    report.logins_per_sec = report.logins_ok as f64 / report.login_secs.max(1e-9);
    login_times.sort_unstable();
    report.login_p50_ms = ms(percentile(&login_times, 50.0));
    report.login_p99_ms = ms(percentile(&login_times, 99.0));
    if let (Some(p), Some(before)) = (server, cpu_before_login) {
        report.server_cpu_login_secs = Some(p.cpu_seconds()? - before);
    }

    // RFC 6121 §4.2: initial presence makes each session available, as a real client's is, so
    // that messages to the bare JID are delivered to it. Waiting for the server to reflect it
    // guarantees no message of the next phase overtakes a peer's presence.
    let mut presences = JoinSet::new();
    for (n, client) in clients.iter_mut().enumerate() {
        if let Some(mut c) = client.take() {
            presences.spawn(async move {
                let result = c.send_initial_presence(PRESENCE_TIMEOUT).await;
                (n, c, result)
            });
        }
    }
    while let Some(joined) = presences.join_next().await {
        let (n, c, result) = joined.context("presence task")?;
        result.with_context(|| format!("initial presence of {}", c.jid()))?;
        clients[n] = Some(c);
    }

    // Phase 2: all sessions idle, then the server's memory.
    tokio::time::sleep(scenario.idle).await;
    if let (Some(p), Some(before)) = (server, rss_before) {
        let idle = p.rss_bytes()?;
        report.rss_before = Some(before);
        report.rss_idle = Some(idle);
        if report.logins_ok > 0 {
            report.rss_per_session = Some((idle as f64 - before as f64) / report.logins_ok as f64);
        }
    }

    // Phase 3: messages between pairs (user 2k and user 2k+1) that both logged in.
    let mut pairs = Vec::new();
    let mut iter = clients.into_iter().enumerate();
    let mut leftovers = Vec::new();
    while let (Some((na, a)), Some((nb, b))) = (iter.next(), iter.next()) {
        match (a, b) {
            (Some(a), Some(b)) => pairs.push(((na, a), (nb, b))),
            (a, b) => leftovers.extend(a.into_iter().chain(b)),
        }
    }
    Ok(Sessions {
        target: target.clone(),
        server,
        pairs,
        leftovers,
        report,
    })
}

/// Phase 3: M chat messages from each user of every pair to its peer, with at most `window` in
/// flight per direction. The report holds the message figures only. The sessions stay open, so
/// that a comparison can run several exchanges over one set of logins.
pub async fn exchange(sessions: &mut Sessions, scenario: &Scenario) -> Result<Report> {
    let target = &sessions.target;
    let server = sessions.server;
    let own = Probe::new(None);
    let mut report = Report {
        label: target.label.clone(),
        addr: target.addr.to_string(),
        users: scenario.users,
        ..Report::default()
    };
    let pairs = std::mem::take(&mut sessions.pairs);
    report.messages_expected = pairs.len() * 2 * scenario.messages;
    let cpu_before_msgs = server.map(|p| p.cpu_seconds()).transpose()?;
    let own_before_msgs = own.cpu_seconds().ok();
    let epoch = Instant::now();
    let deadline = tokio::time::Instant::now() + scenario.max_duration;
    let mut streams = JoinSet::new();
    // Which users each pair is, to pair the sessions again afterwards.
    let mut indices = Vec::new();
    for (p, ((na, a), (nb, b))) in pairs.into_iter().enumerate() {
        indices.push((na, nb));
        let a_bare = format!("{}@{}", scenario.username(na), target.domain);
        let b_bare = format!("{}@{}", scenario.username(nb), target.domain);
        for (side, (client, peer)) in [(a, b_bare), (b, a_bare)].into_iter().enumerate() {
            let jid = client.jid().to_string();
            let bodies = scenario.bodies.clone();
            let stream = 2 * p + side;
            let (reader, writer) = client.split();
            let (count_tx, count_rx) = watch::channel(0usize);
            let messages = scenario.messages;
            let window = scenario.window;
            let n = if side == 0 { na } else { nb };
            streams.spawn(async move {
                let receiving = receive(reader, messages, epoch, deadline, count_tx);
                let sending = send(
                    writer, peer, &bodies, stream, messages, window, epoch, deadline, count_rx,
                );
                let (received, sent) = tokio::join!(receiving, sending);
                (n, jid, received, sent)
            });
        }
    }
    let mut latencies = Vec::with_capacity(report.messages_expected);
    let mut finished: std::collections::HashMap<usize, Client> = std::collections::HashMap::new();
    while let Some(joined) = streams.join_next().await {
        let (n, jid, received, sent) = joined.context("message task")?;
        let (reader, mut lat, errors) = received;
        report.messages_delivered += lat.len();
        latencies.append(&mut lat);
        report.message_errors += errors.len();
        for e in errors {
            if report.message_error_samples.len() < ERROR_SAMPLES {
                report.message_error_samples.push(format!("{jid}: {e}"));
            }
        }
        let (writer, send_error) = sent;
        if let Some(e) = send_error {
            report.message_errors += 1;
            if report.message_error_samples.len() < ERROR_SAMPLES {
                report.message_error_samples.push(format!("{jid}: {e}"));
            }
        }
        finished.insert(n, Client::unsplit(reader, writer, jid));
    }
    report.message_secs = epoch.elapsed().as_secs_f64();
    report.messages_per_sec = report.messages_delivered as f64 / report.message_secs.max(1e-9);
    if let (Some(p), Some(before)) = (server, cpu_before_msgs) {
        let used = p.cpu_seconds()? - before;
        report.server_cpu_message_secs = Some(used);
        if report.messages_delivered > 0 {
            report.server_cpu_per_1000_messages =
                Some(used * 1000.0 / report.messages_delivered as f64);
        }
    }
    if let (Some(before), Ok(after)) = (own_before_msgs, own.cpu_seconds()) {
        report.bench_cpu_message_secs = Some(after - before);
    }
    latencies.sort_unstable();
    report.latency_p50_ms = ms(percentile(&latencies, 50.0));
    report.latency_p90_ms = ms(percentile(&latencies, 90.0));
    report.latency_p99_ms = ms(percentile(&latencies, 99.0));
    report.latency_max_ms = ms(latencies.last().copied().unwrap_or(0));
    for (na, nb) in indices {
        if let (Some(a), Some(b)) = (finished.remove(&na), finished.remove(&nb)) {
            sessions.pairs.push(((na, a), (nb, b)));
        }
    }
    // A pair that lost a side (its task failed) is not used again, but still closed.
    sessions.leftovers.extend(finished.into_values());
    Ok(report)
}

/// Phase 4: close every stream (RFC 6120 §4.4); how many closed cleanly.
pub async fn close(sessions: Sessions) -> usize {
    let mut closing = JoinSet::new();
    let clients = sessions
        .pairs
        .into_iter()
        .flat_map(|((_, a), (_, b))| [a, b])
        .chain(sessions.leftovers);
    for client in clients {
        closing.spawn(client.close());
    }
    let mut closed = 0;
    while let Some(joined) = closing.join_next().await {
        if matches!(joined, Ok(Ok(()))) {
            closed += 1;
        }
    }
    closed
}

type Received = (ClientReader, Vec<u64>, Vec<String>);

/// Receives `messages` chat messages and returns their latencies in microseconds. The body is
/// "SEQ MICROS", MICROS being the send time since `epoch`.
async fn receive(
    mut reader: ClientReader,
    messages: usize,
    epoch: Instant,
    deadline: tokio::time::Instant,
    count: watch::Sender<usize>,
) -> Received {
    let mut latencies = Vec::with_capacity(messages);
    let mut errors = Vec::new();
    while latencies.len() < messages {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let el = match reader
            .recv_matching(left, |el| el.is("message", NS_CLIENT))
            .await
        {
            Ok(el) => el,
            Err(ClientError::Timeout) => {
                errors.push(format!(
                    "timed out with {} of {messages} messages received",
                    latencies.len()
                ));
                break;
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        };
        if el.attr("type") == Some("error") {
            errors.push(format!("message error: {}", el.to_xml()));
            continue;
        }
        let sent_at = el
            .get_child("body", NS_CLIENT)
            .map(|b| b.text())
            .and_then(|t| {
                t.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            });
        let Some(sent_at) = sent_at else {
            errors.push("a message without a timestamped body".into());
            continue;
        };
        let now = epoch.elapsed().as_micros() as u64;
        latencies.push(now.saturating_sub(sent_at));
        count.send_replace(latencies.len());
    }
    (reader, latencies, errors)
}

/// Sends `messages` chat messages to `peer`, never more than `window` ahead of what this side
/// has received from the peer, so the load is a closed loop whose latency measures the server.
#[allow(clippy::too_many_arguments)]
async fn send(
    mut writer: ClientWriter,
    peer: String,
    bodies: &[String],
    stream: usize,
    messages: usize,
    window: usize,
    epoch: Instant,
    deadline: tokio::time::Instant,
    mut received: watch::Receiver<usize>,
) -> (ClientWriter, Option<String>) {
    for seq in 0..messages {
        let wait = received.wait_for(|got| got + window > seq);
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(Ok(_)) => {}
            // The receiving side stopped (deadline or error); it reports why.
            Ok(Err(_)) | Err(_) => return (writer, None),
        }
        let now = epoch.elapsed().as_micros() as u64;
        let message = Element::new("message", NS_CLIENT)
            .with_attr("to", &peer)
            .with_attr("type", "chat")
            .with_attr("id", format!("m{seq}"))
            .with_child(Element::new("body", NS_CLIENT).with_text(body(bodies, stream, seq, now)));
        if let Err(e) = writer.send(&message).await {
            return (writer, Some(e.to_string()));
        }
    }
    (writer, None)
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn scenario() -> Scenario {
        Scenario {
            users: 4,
            messages: 10,
            concurrency: 2,
            window: 1,
            tls: TlsMode::StartTls,
            trust: Trust::AnyCertificate,
            mechanism: None,
            user_pattern: "bench{i}".into(),
            password_pattern: "pw-{i}".into(),
            first_index: 1,
            idle: Duration::from_secs(1),
            max_duration: Duration::from_secs(10),
            bodies: Arc::new(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::scenario;
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn bodies_carry_the_timestamp_first_and_texts_in_turn() {
        let texts = parse_bodies("# comment\n\n  first text \nsecond text\n").expect("texts");
        assert_eq!(texts, vec!["first text", "second text"]);
        assert_eq!(body(&[], 3, 5, 42), "5 42");
        let a = body(&texts, 0, 0, 42);
        let b = body(&texts, 0, 1, 43);
        assert_eq!(a, "0 42 first text");
        assert_eq!(b, "1 43 second text");
        // The receiver's parse of the timestamp, as in `receive`.
        assert_eq!(b.split_whitespace().nth(1), Some("43"));
        assert_ne!(
            body(&texts, 1, 0, 42),
            a,
            "senders start at different texts"
        );
        assert!(parse_bodies("# only a comment\n").is_err());
        assert!(parse_bodies(&"x".repeat(MAX_BODY_CHARS + 1)).is_err());
    }

    #[test]
    fn non_loopback_targets_are_refused() {
        assert!(require_loopback(&"127.0.0.1:5222".parse().expect("addr")).is_ok());
        assert!(require_loopback(&"127.3.2.1:5222".parse().expect("addr")).is_ok());
        assert!(require_loopback(&"[::1]:5222".parse().expect("addr")).is_ok());
        assert!(require_loopback(&"10.0.0.1:5222".parse().expect("addr")).is_err());
        assert!(require_loopback(&"0.0.0.0:5222".parse().expect("addr")).is_err());
    }

    #[test]
    fn user_names_follow_the_pattern_from_the_first_index() {
        let s = scenario();
        assert_eq!(s.username(0), "bench1");
        assert_eq!(s.password(3), "pw-4");
        assert!(s.validate().is_ok());
        let odd = Scenario {
            users: 3,
            ..scenario()
        };
        assert!(odd.validate().is_err());
        let no_placeholder = Scenario {
            user_pattern: "bench".into(),
            ..scenario()
        };
        assert!(no_placeholder.validate().is_err());
    }
}
