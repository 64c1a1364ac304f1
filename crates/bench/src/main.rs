//! causerie-bench: the load tool behind `docs/performance.md`.
//!
//! It logs in N users over TLS against any XMPP server on a loopback address (RFC 6120
//! negotiation through `causerie-testkit`'s client), holds the sessions idle to measure the
//! server's memory per session, then lets pairs of users exchange chat messages (RFC 6121 §5)
//! to measure throughput, delivery latency and the server's CPU time per message. `compare`
//! runs the same scenario against two servers and prints target/reference ratios;
//! `roster-login` measures a user with a large roster (RFC 6121 §2–4: login to roster and
//! contacts' presence, CPU per presence broadcast); `policy-gate` measures Causerie's usage-policy
//! gate (xeps/policy-acceptance.md) on against off in one run, and the cost of an acceptance;
//! `alternate` runs the message scenario against two servers that differ in one setting
//! (compliance rules on and off) in alternating rounds, with on/off ratios; `check` is an
//! interoperability check of the client; `users-csv` writes the bench accounts for import.
//!
//! It knows nothing of the server's internals: everything it measures goes through the XMPP
//! port and Linux's /proc for the PID it is given.

mod alternate;
mod check;
mod federation;
mod gate;
mod procfs;
mod report;
mod roster;
mod scenario;

use std::fs;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use causerie_testkit::client::{TlsMode, Trust};
use clap::{Args, Parser, Subcommand};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use roster::RosterScenario;
use scenario::{Scenario, Target, require_loopback};

#[derive(Parser)]
#[command(
    name = "causerie-bench",
    about = "XMPP load tool (loopback servers only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the scenario against one server.
    Run {
        /// The server's c2s address (STARTTLS port, or direct TLS port with --direct-tls).
        #[arg(long)]
        addr: SocketAddr,
        /// The server's XMPP domain.
        #[arg(long, default_value = "localhost")]
        domain: String,
        /// The server's process ID, for CPU and memory figures.
        #[arg(long)]
        server_pid: Option<u32>,
        /// A name for the server in the output.
        #[arg(long, default_value = "server")]
        label: String,
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// Run the same scenario against two servers, one after the other, and print
    /// target/reference ratios.
    Compare {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value = "localhost")]
        target_domain: String,
        #[arg(long)]
        target_pid: Option<u32>,
        #[arg(long, default_value = "causerie")]
        target_label: String,
        #[arg(long)]
        reference: SocketAddr,
        #[arg(long, default_value = "localhost")]
        reference_domain: String,
        #[arg(long)]
        reference_pid: Option<u32>,
        #[arg(long, default_value = "prosody")]
        reference_label: String,
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// One user with a large roster of mutual subscriptions: prepare it through the protocol,
    /// then measure the login (to the roster and every online contact's presence) and the
    /// server's CPU per presence broadcast. With --reference, the same against a second server
    /// (run first), with target/reference ratios.
    RosterLogin {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long, default_value = "localhost")]
        target_domain: String,
        #[arg(long)]
        target_pid: Option<u32>,
        #[arg(long, default_value = "causerie")]
        target_label: String,
        #[arg(long)]
        reference: Option<SocketAddr>,
        #[arg(long, default_value = "localhost")]
        reference_domain: String,
        #[arg(long)]
        reference_pid: Option<u32>,
        #[arg(long, default_value = "prosody")]
        reference_label: String,
        #[command(flatten)]
        scenario: RosterArgs,
    },
    /// The usage-policy gate of Causerie on against off, in one run: the same message scenario
    /// and session set-ups against a server whose bench accounts accepted the version in force
    /// (--on) and one with `[policy] enabled = false` (--off), alternated round by round, with
    /// on/off ratios; and an account's first session, which accepts, against a later one.
    PolicyGate {
        /// The gate-on server's c2s address; a usage policy must be in force there.
        #[arg(long)]
        on: SocketAddr,
        #[arg(long)]
        on_pid: Option<u32>,
        /// The gate-off server's c2s address, with the same accounts.
        #[arg(long)]
        off: SocketAddr,
        #[arg(long)]
        off_pid: Option<u32>,
        /// The XMPP domain of both servers.
        #[arg(long, default_value = "localhost")]
        domain: String,
        #[command(flatten)]
        scenario: GateArgs,
    },
    /// The message scenario against two servers that differ in one setting (the same accounts),
    /// alternated round by round, with on/off ratios: for instance compliance rules on and off.
    Alternate {
        /// The server with the setting on.
        #[arg(long)]
        on: SocketAddr,
        #[arg(long)]
        on_pid: Option<u32>,
        #[arg(long, default_value = "on")]
        on_label: String,
        /// The server with the setting off.
        #[arg(long)]
        off: SocketAddr,
        #[arg(long)]
        off_pid: Option<u32>,
        #[arg(long, default_value = "off")]
        off_label: String,
        /// The XMPP domain of both servers.
        #[arg(long, default_value = "localhost")]
        domain: String,
        #[command(flatten)]
        scenario: AlternateArgs,
    },
    /// Check the client against a server: each mechanism, login, messages, close.
    Check {
        /// The server's STARTTLS address.
        #[arg(long)]
        addr: SocketAddr,
        #[arg(long, default_value = "localhost")]
        domain: String,
        /// Also check direct TLS (XEP-0368) on this port of the same address.
        #[arg(long)]
        direct_tls_port: Option<u16>,
        /// SASL mechanisms to check, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "SCRAM-SHA-1,PLAIN")]
        mechanisms: Vec<String>,
        #[command(flatten)]
        accounts: AccountArgs,
        /// Trust only this PEM CA file instead of accepting any certificate.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Messages per second across server-to-server streams: for each --run, a sender on one
    /// server sends chat messages to a receiver on another, at most --window in flight. Runs go
    /// one after the other; ratios are to the last run.
    Federation {
        /// LABEL=SENDER_JID,PASSWORD,IP:PORT=>RECEIVER_JID,PASSWORD,IP:PORT (repeatable).
        #[arg(long = "run", required = true)]
        runs: Vec<String>,
        #[arg(long, default_value_t = 5000)]
        messages: usize,
        #[arg(long, default_value_t = 100)]
        window: usize,
    },
    /// Write the CSV "jid,password" (with that header line) for the bench accounts.
    UsersCsv {
        /// Number of accounts.
        #[arg(long)]
        count: usize,
        #[arg(long, default_value = "localhost")]
        domain: String,
        #[command(flatten)]
        accounts: AccountArgs,
        /// Output file; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Clone)]
struct AccountArgs {
    /// Localpart pattern; {i} is the account number.
    #[arg(long, default_value = "bench{i}")]
    user_pattern: String,
    /// Password pattern; {i} is the account number.
    #[arg(long, default_value = "bench{i}")]
    password_pattern: String,
    /// Number of the first account.
    #[arg(long, default_value_t = 1)]
    first_index: usize,
}

#[derive(Args, Clone)]
struct ScenarioArgs {
    /// Number of users logged in at once (even: they message in pairs).
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Messages each user sends to its peer.
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// Logins in progress at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Messages in flight per direction of a pair.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    #[arg(long)]
    direct_tls: bool,
    /// Force this SASL mechanism (default: the best offered).
    #[arg(long)]
    mechanism: Option<String>,
    /// Seconds all sessions stay idle before the server's memory is read.
    #[arg(long, default_value_t = 5.0)]
    idle_secs: f64,
    /// Upper bound of the message phase, in seconds.
    #[arg(long, default_value_t = 120.0)]
    max_duration_secs: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Trust only this PEM CA file instead of accepting any certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Message texts, one per line, sent in turn after each body's "SEQ MICROS".
    #[arg(long)]
    bodies: Option<PathBuf>,
    #[command(flatten)]
    accounts: AccountArgs,
}

#[derive(Args, Clone)]
struct RosterArgs {
    /// Contacts in the user's roster (accounts first_index+1 ..= first_index+N).
    #[arg(long, default_value_t = 500)]
    contacts: usize,
    /// Contacts online while the user logs in.
    #[arg(long, default_value_t = 50)]
    online: usize,
    /// Measured logins.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Numbers of online contacts at which presence broadcasts are measured, ascending.
    #[arg(long, value_delimiter = ',', default_value = "50,500")]
    broadcast_online: Vec<usize>,
    /// Broadcasts measured at each point.
    #[arg(long, default_value_t = 200)]
    broadcasts: usize,
    /// Logins in progress at once while preparing and bringing contacts online.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    #[arg(long)]
    direct_tls: bool,
    /// Force this SASL mechanism (default: the best offered).
    #[arg(long)]
    mechanism: Option<String>,
    /// Upper bound of the whole run against one server, in seconds.
    #[arg(long, default_value_t = 600.0)]
    max_duration_secs: f64,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Trust only this PEM CA file instead of accepting any certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    accounts: AccountArgs,
}

#[derive(Args, Clone)]
struct GateArgs {
    /// Rounds; each runs the set-up blocks and the message scenario against both servers.
    #[arg(long, default_value_t = 8)]
    rounds: usize,
    /// Sessions one after the other in each set-up block (gate off, gate on, first sessions).
    #[arg(long, default_value_t = 50)]
    sessions: usize,
    /// Users of the message scenario (even), logged in at once.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Messages each user sends to its peer in each message run.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Logins in progress at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Messages in flight per direction of a pair.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    #[arg(long)]
    direct_tls: bool,
    /// Force this SASL mechanism (default: the best offered).
    #[arg(long)]
    mechanism: Option<String>,
    /// Upper bound of each message phase, in seconds.
    #[arg(long, default_value_t = 60.0)]
    max_duration_secs: f64,
    /// Trust only this PEM CA file instead of accepting any certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Message texts, one per line, sent in turn after each body's "SEQ MICROS".
    #[arg(long)]
    bodies: Option<PathBuf>,
    #[command(flatten)]
    accounts: AccountArgs,
}

#[derive(Args, Clone)]
struct AlternateArgs {
    /// Rounds; each runs the message scenario against both servers.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// Rounds run first against both servers and left out of the figures.
    #[arg(long, default_value_t = 1)]
    warmup_rounds: usize,
    /// Log in to each server once and keep the sessions: a round is then the message phase
    /// against each server only.
    #[arg(long)]
    keep_sessions: bool,
    /// Users of the message scenario (even), logged in at once.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Messages each user sends to its peer in each message run.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Logins in progress at once.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Messages in flight per direction of a pair.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// TLS from the first byte (XEP-0368) instead of STARTTLS.
    #[arg(long)]
    direct_tls: bool,
    /// Force this SASL mechanism (default: the best offered).
    #[arg(long)]
    mechanism: Option<String>,
    /// Upper bound of each message phase, in seconds.
    #[arg(long, default_value_t = 60.0)]
    max_duration_secs: f64,
    /// Trust only this PEM CA file instead of accepting any certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Message texts, one per line, sent in turn after each body's "SEQ MICROS".
    #[arg(long)]
    bodies: Option<PathBuf>,
    #[command(flatten)]
    accounts: AccountArgs,
}

impl GateArgs {
    fn scenario(&self) -> Result<gate::GateScenario> {
        let base = Scenario {
            users: self.users,
            messages: self.messages,
            concurrency: self.concurrency,
            window: self.window,
            tls: if self.direct_tls {
                TlsMode::DirectTls
            } else {
                TlsMode::StartTls
            },
            trust: trust(self.ca_file.as_ref())?,
            mechanism: self.mechanism.clone(),
            user_pattern: self.accounts.user_pattern.clone(),
            password_pattern: self.accounts.password_pattern.clone(),
            first_index: self.accounts.first_index,
            // Memory per session is not compared: the servers are not fresh after round one.
            idle: Duration::ZERO,
            max_duration: seconds(self.max_duration_secs, "--max-duration-secs")?,
            bodies: bodies(self.bodies.as_ref())?,
        };
        let s = gate::GateScenario {
            base,
            rounds: self.rounds,
            sessions: self.sessions,
        };
        s.validate()?;
        Ok(s)
    }
}

impl AlternateArgs {
    fn scenario(&self) -> Result<alternate::AlternateScenario> {
        let base = Scenario {
            users: self.users,
            messages: self.messages,
            concurrency: self.concurrency,
            window: self.window,
            tls: if self.direct_tls {
                TlsMode::DirectTls
            } else {
                TlsMode::StartTls
            },
            trust: trust(self.ca_file.as_ref())?,
            mechanism: self.mechanism.clone(),
            user_pattern: self.accounts.user_pattern.clone(),
            password_pattern: self.accounts.password_pattern.clone(),
            first_index: self.accounts.first_index,
            // Memory per session is not compared: the servers are not fresh after round one.
            idle: Duration::ZERO,
            max_duration: seconds(self.max_duration_secs, "--max-duration-secs")?,
            bodies: bodies(self.bodies.as_ref())?,
        };
        let s = alternate::AlternateScenario {
            base,
            rounds: self.rounds,
            warmup_rounds: self.warmup_rounds,
            keep_sessions: self.keep_sessions,
        };
        s.validate()?;
        Ok(s)
    }
}

impl RosterArgs {
    fn scenario(&self) -> Result<RosterScenario> {
        if self.broadcast_online.len() > report::MAX_BROADCAST_POINTS {
            bail!(
                "--broadcast-online takes at most {} values",
                report::MAX_BROADCAST_POINTS
            );
        }
        let s = RosterScenario {
            contacts: self.contacts,
            online: self.online,
            repeat: self.repeat,
            broadcast_online: self.broadcast_online.clone(),
            broadcasts: self.broadcasts,
            concurrency: self.concurrency,
            tls: if self.direct_tls {
                TlsMode::DirectTls
            } else {
                TlsMode::StartTls
            },
            trust: trust(self.ca_file.as_ref())?,
            mechanism: self.mechanism.clone(),
            user_pattern: self.accounts.user_pattern.clone(),
            password_pattern: self.accounts.password_pattern.clone(),
            first_index: self.accounts.first_index,
            max_duration: seconds(self.max_duration_secs, "--max-duration-secs")?,
        };
        s.validate()?;
        Ok(s)
    }
}

fn trust(ca_file: Option<&PathBuf>) -> Result<Trust> {
    let Some(path) = ca_file else {
        return Ok(Trust::AnyCertificate);
    };
    let pem = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let roots: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .with_context(|| format!("parsing {}", path.display()))?;
    if roots.is_empty() {
        bail!("{} holds no certificate", path.display());
    }
    Ok(Trust::Roots(roots))
}

fn bodies(path: Option<&PathBuf>) -> Result<Arc<Vec<String>>> {
    let Some(path) = path else {
        return Ok(Arc::new(Vec::new()));
    };
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bodies = scenario::parse_bodies(&text).with_context(|| format!("{}", path.display()))?;
    Ok(Arc::new(bodies))
}

fn seconds(v: f64, what: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("{what}: not a duration: {v}"))
}

impl ScenarioArgs {
    fn scenario(&self) -> Result<Scenario> {
        let s = Scenario {
            users: self.users,
            messages: self.messages,
            concurrency: self.concurrency,
            window: self.window,
            tls: if self.direct_tls {
                TlsMode::DirectTls
            } else {
                TlsMode::StartTls
            },
            trust: trust(self.ca_file.as_ref())?,
            mechanism: self.mechanism.clone(),
            user_pattern: self.accounts.user_pattern.clone(),
            password_pattern: self.accounts.password_pattern.clone(),
            first_index: self.accounts.first_index,
            idle: seconds(self.idle_secs, "--idle-secs")?,
            max_duration: seconds(self.max_duration_secs, "--max-duration-secs")?,
            bodies: bodies(self.bodies.as_ref())?,
        };
        s.validate()?;
        Ok(s)
    }
}

fn users_csv(count: usize, domain: &str, accounts: &AccountArgs) -> Result<String> {
    if count > scenario::MAX_USERS {
        bail!("--count must be at most {}", scenario::MAX_USERS);
    }
    for p in [&accounts.user_pattern, &accounts.password_pattern] {
        if !p.contains("{i}") {
            bail!("pattern {p:?} must contain {{i}}");
        }
        // The CSV has no quoting: keep fields free of its separators.
        if p.contains([',', '"', '\n', '\r']) {
            bail!("pattern {p:?} must not contain commas, quotes or line breaks");
        }
    }
    let mut out = String::from("jid,password\n");
    for n in 0..count {
        let i = (accounts.first_index + n).to_string();
        out.push_str(&accounts.user_pattern.replace("{i}", &i));
        out.push('@');
        out.push_str(domain);
        out.push(',');
        out.push_str(&accounts.password_pattern.replace("{i}", &i));
        out.push('\n');
    }
    Ok(out)
}

async fn main_async(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run {
            addr,
            domain,
            server_pid,
            label,
            scenario,
        } => {
            require_loopback(&addr)?;
            let s = scenario.scenario()?;
            let target = Target {
                label,
                addr,
                domain,
                pid: server_pid,
            };
            let r = scenario::run(&target, &s).await?;
            if scenario.json {
                println!("{}", report::json(&s, &r));
            } else {
                print!("{}", report::table(&s, &r));
            }
        }
        Command::Compare {
            target,
            target_domain,
            target_pid,
            target_label,
            reference,
            reference_domain,
            reference_pid,
            reference_label,
            scenario,
        } => {
            require_loopback(&target)?;
            require_loopback(&reference)?;
            let s = scenario.scenario()?;
            let reference = Target {
                label: reference_label,
                addr: reference,
                domain: reference_domain,
                pid: reference_pid,
            };
            let target = Target {
                label: target_label,
                addr: target,
                domain: target_domain,
                pid: target_pid,
            };
            let r = scenario::run(&reference, &s).await?;
            let t = scenario::run(&target, &s).await?;
            if scenario.json {
                println!("{}", report::json_comparison(&s, &t, &r));
            } else {
                print!("{}", report::comparison(&s, &t, &r));
            }
        }
        Command::Federation {
            runs,
            messages,
            window,
        } => {
            let mut parsed = Vec::new();
            for r in &runs {
                let (label, rest) = r
                    .split_once('=')
                    .with_context(|| format!("--run {r}: expected LABEL=SENDER=>RECEIVER"))?;
                let (sender, receiver) = rest
                    .split_once("=>")
                    .with_context(|| format!("--run {r}: expected SENDER=>RECEIVER"))?;
                parsed.push((
                    label.to_owned(),
                    federation::Account::parse(sender)?,
                    federation::Account::parse(receiver)?,
                ));
            }
            let mut reports = Vec::new();
            for (label, sender, receiver) in &parsed {
                reports.push(federation::run(label, sender, receiver, messages, window).await?);
            }
            print!("{}", federation::table(&reports));
        }
        Command::RosterLogin {
            target,
            target_domain,
            target_pid,
            target_label,
            reference,
            reference_domain,
            reference_pid,
            reference_label,
            scenario,
        } => {
            require_loopback(&target)?;
            if let Some(r) = &reference {
                require_loopback(r)?;
            }
            let s = scenario.scenario()?;
            let reference_report = match reference {
                Some(addr) => {
                    let t = Target {
                        label: reference_label,
                        addr,
                        domain: reference_domain,
                        pid: reference_pid,
                    };
                    Some(roster::run(&t, &s).await?)
                }
                None => None,
            };
            let t = Target {
                label: target_label,
                addr: target,
                domain: target_domain,
                pid: target_pid,
            };
            let target_report = roster::run(&t, &s).await?;
            if scenario.json {
                println!(
                    "{}",
                    report::roster_json(&s, &target_report, reference_report.as_ref())
                );
            } else {
                match &reference_report {
                    Some(r) => print!("{}", report::roster_comparison(&s, &target_report, r)),
                    None => print!("{}", report::roster_table(&s, &target_report)),
                }
            }
        }
        Command::PolicyGate {
            on,
            on_pid,
            off,
            off_pid,
            domain,
            scenario,
        } => {
            require_loopback(&on)?;
            require_loopback(&off)?;
            let s = scenario.scenario()?;
            let on = Target {
                label: "gate on".into(),
                addr: on,
                domain: domain.clone(),
                pid: on_pid,
            };
            let off = Target {
                label: "gate off".into(),
                addr: off,
                domain,
                pid: off_pid,
            };
            let r = gate::run(&on, &off, &s).await?;
            print!("{}", gate::table(&s, &r));
        }
        Command::Alternate {
            on,
            on_pid,
            on_label,
            off,
            off_pid,
            off_label,
            domain,
            scenario,
        } => {
            require_loopback(&on)?;
            require_loopback(&off)?;
            let s = scenario.scenario()?;
            let on = Target {
                label: on_label,
                addr: on,
                domain: domain.clone(),
                pid: on_pid,
            };
            let off = Target {
                label: off_label,
                addr: off,
                domain,
                pid: off_pid,
            };
            let r = alternate::run(&on, &off, &s).await?;
            print!("{}", alternate::table(&s, &r));
        }
        Command::Check {
            addr,
            domain,
            direct_tls_port,
            mechanisms,
            accounts,
            ca_file,
        } => {
            require_loopback(&addr)?;
            let target = Target {
                label: "server".into(),
                addr,
                domain,
                pid: None,
            };
            let s = Scenario {
                users: 2,
                messages: 1,
                concurrency: 1,
                window: 1,
                tls: TlsMode::StartTls,
                trust: trust(ca_file.as_ref())?,
                mechanism: None,
                user_pattern: accounts.user_pattern,
                password_pattern: accounts.password_pattern,
                first_index: accounts.first_index,
                idle: Duration::ZERO,
                max_duration: Duration::from_secs(10),
                bodies: Arc::new(Vec::new()),
            };
            s.validate()?;
            check::run(&target, &s, &mechanisms, direct_tls_port).await?;
        }
        Command::UsersCsv {
            count,
            domain,
            accounts,
            out,
        } => {
            let csv = users_csv(count, &domain, &accounts)?;
            match out {
                Some(path) => {
                    fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?
                }
                None => std::io::stdout().write_all(csv.as_bytes())?,
            }
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(main_async(cli))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts(user: &str, password: &str) -> AccountArgs {
        AccountArgs {
            user_pattern: user.into(),
            password_pattern: password.into(),
            first_index: 1,
        }
    }

    #[test]
    fn users_csv_lists_every_account_after_a_header() {
        let csv = users_csv(3, "example.test", &accounts("bench{i}", "pw{i}")).expect("csv");
        assert_eq!(
            csv,
            "jid,password\nbench1@example.test,pw1\nbench2@example.test,pw2\nbench3@example.test,pw3\n"
        );
        assert!(users_csv(1, "d", &accounts("bench", "pw{i}")).is_err());
        assert!(users_csv(1, "d", &accounts("b{i}", "a,{i}")).is_err());
    }

    #[test]
    fn roster_login_command_line_parses() {
        let cli = Cli::try_parse_from([
            "causerie-bench",
            "roster-login",
            "--target",
            "127.0.0.1:15222",
            "--reference",
            "127.0.0.1:15322",
            "--contacts",
            "20",
            "--online",
            "5",
            "--broadcast-online",
            "5,20",
        ])
        .expect("parses");
        match cli.command {
            Command::RosterLogin {
                scenario,
                reference,
                ..
            } => {
                let s = scenario.scenario().expect("valid scenario");
                assert_eq!((s.contacts, s.online), (20, 5));
                assert_eq!(s.broadcast_online, vec![5, 20]);
                assert!(reference.is_some());
            }
            _ => panic!("expected roster-login"),
        }
        let bad = Cli::try_parse_from([
            "causerie-bench",
            "roster-login",
            "--target",
            "127.0.0.1:15222",
            "--contacts",
            "20",
            "--broadcast-online",
            "20,5",
        ])
        .expect("parses");
        match bad.command {
            Command::RosterLogin { scenario, .. } => assert!(scenario.scenario().is_err()),
            _ => panic!("expected roster-login"),
        }
    }

    #[test]
    fn policy_gate_command_line_parses() {
        let cli = Cli::try_parse_from([
            "causerie-bench",
            "policy-gate",
            "--on",
            "127.0.0.1:15242",
            "--off",
            "127.0.0.1:15252",
            "--rounds",
            "4",
            "--sessions",
            "10",
            "--users",
            "20",
        ])
        .expect("parses");
        match cli.command {
            Command::PolicyGate { scenario, .. } => {
                let s = scenario.scenario().expect("valid scenario");
                assert_eq!((s.rounds, s.sessions, s.base.users), (4, 10, 20));
                assert_eq!(s.accounts(), 60);
                assert_eq!(s.base.idle, Duration::ZERO);
            }
            _ => panic!("expected policy-gate"),
        }
    }

    #[test]
    fn alternate_command_line_parses() {
        let cli = Cli::try_parse_from([
            "causerie-bench",
            "alternate",
            "--on",
            "127.0.0.1:15262",
            "--on-label",
            "rules on",
            "--off",
            "127.0.0.1:15272",
            "--rounds",
            "6",
            "--users",
            "20",
            "--keep-sessions",
        ])
        .expect("parses");
        match cli.command {
            Command::Alternate {
                scenario, on_label, ..
            } => {
                let s = scenario.scenario().expect("valid scenario");
                assert_eq!((s.rounds, s.warmup_rounds, s.base.users), (6, 1, 20));
                assert!(s.keep_sessions);
                assert!(s.base.bodies.is_empty());
                assert_eq!(on_label, "rules on");
            }
            _ => panic!("expected alternate"),
        }
        let missing = Cli::try_parse_from([
            "causerie-bench",
            "alternate",
            "--on",
            "127.0.0.1:15262",
            "--off",
            "127.0.0.1:15272",
            "--bodies",
            "/nonexistent/bodies.txt",
        ])
        .expect("parses");
        match missing.command {
            Command::Alternate { scenario, .. } => assert!(scenario.scenario().is_err()),
            _ => panic!("expected alternate"),
        }
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "causerie-bench",
            "run",
            "--addr",
            "127.0.0.1:15322",
            "--users",
            "10",
            "--messages",
            "5",
            "--json",
        ])
        .expect("parses");
        match cli.command {
            Command::Run { scenario, .. } => {
                let s = scenario.scenario().expect("valid scenario");
                assert_eq!((s.users, s.messages), (10, 5));
                assert!(scenario.json);
            }
            _ => panic!("expected run"),
        }
    }
}
