//! `causeriectl check`: whether this machine is ready to run the configured server, in groups
//! of checks, each reported `ok`, `warn`, `fail` or `skip` with one line of reason and, when
//! something should change, a hint.
//!
//! - `config`: the file loads and validates (every problem is reported), and the settings
//!   the server warns about at start ([`Config::warnings`]).
//! - `certificates`: for each hosted domain, the certificate the server would present (see
//!   [`crate::cert`]): readable, key belongs to it, names the domain (RFC 6125), valid now and
//!   for 30 more days, not self-signed, chain complete.
//! - `dns`: for each hosted domain, the SRV records of RFC 6120 §3.2.1 (`_xmpp-client._tcp`,
//!   `_xmpp-server._tcp`) and XEP-0368 (`_xmpps-client._tcp`, `_xmpps-server._tcp`) for the
//!   listeners that are configured, and the domain's addresses, asked through federation's
//!   resolver (the servers of `s2s.resolver`, else the system's); `localhost` has no DNS.
//! - `ports`: each listener's address is free, or in use by this server while it runs (the
//!   port answers as a Causerie listener would: an XMPP stream header, or HTTP, and the admin
//!   socket answers); anything else holding it is a failure.
//! - `database`: the configured database answers, and how far its schema is migrated.
//! - `permissions`: the data folder (0700), secret files (0600) and the admin socket (0600).
//!
//! Exit code 0 when nothing failed (warnings allowed), 1 when a check failed, 3 when the
//! configuration cannot be loaded at all (its problems are reported as `config` failures).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use causerie_config::{Config, ConfigError};
use causerie_s2s::{HickoryResolver, ResolveError, SrvAnswer};
use causerie_storage::StorageOptions;
use clap::ValueEnum;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cert;
use crate::time::unix_now;

/// How long one listener may take to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this much of a listener's answer is read.
const PROBE_READ_BYTES: usize = 4096;

#[derive(clap::Args, Debug)]
pub(crate) struct CheckArgs {
    /// The groups of checks to run, in this order (default: all).
    #[arg(value_enum, value_name = "GROUP")]
    groups: Vec<Group>,
    /// One JSON array of {group, check, status, message, hint} objects instead; status is
    /// ok, warn, fail or skip, and hint is left out when there is none.
    #[arg(long)]
    json: bool,
    /// How long the DNS lookups of one domain may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=60))]
    dns_timeout: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    Config,
    Certificates,
    Dns,
    Ports,
    Database,
    Permissions,
}

impl Group {
    const ALL: [Group; 6] = [
        Group::Config,
        Group::Certificates,
        Group::Dns,
        Group::Ports,
        Group::Database,
        Group::Permissions,
    ];

    fn name(self) -> &'static str {
        match self {
            Group::Config => "config",
            Group::Certificates => "certificates",
            Group::Dns => "dns",
            Group::Ports => "ports",
            Group::Database => "database",
            Group::Permissions => "permissions",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Verdict {
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Verdict {
    pub(crate) fn ok(message: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Ok,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn skip(message: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Skip,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn warn(message: impl Into<String>, hint: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub(crate) fn fail(message: impl Into<String>, hint: impl Into<String>) -> Verdict {
        Verdict {
            status: Status::Fail,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Finding {
    group: &'static str,
    check: String,
    #[serde(flatten)]
    verdict: Verdict,
}

#[derive(Default)]
struct Report {
    findings: Vec<Finding>,
}

impl Report {
    fn add(&mut self, group: Group, check: impl Into<String>, verdict: Verdict) {
        self.findings.push(Finding {
            group: group.name(),
            check: check.into(),
            verdict,
        });
    }

    fn failed(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.verdict.status == Status::Fail)
    }

    fn print(&self, json: bool) {
        if json {
            match serde_json::to_string(&self.findings) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("causeriectl: {e}"),
            }
            return;
        }
        let mut group = "";
        for f in &self.findings {
            if f.group != group {
                group = f.group;
                println!("{group}");
            }
            println!(
                "  {:<5} {}: {}",
                f.verdict.status.label(),
                f.check,
                f.verdict.message
            );
            if let Some(hint) = &f.verdict.hint {
                println!("        hint: {hint}");
            }
        }
        let count = |s: Status| {
            self.findings
                .iter()
                .filter(|f| f.verdict.status == s)
                .count()
        };
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        println!(
            "{} ok, {}, {}, {} skipped",
            count(Status::Ok),
            plural(count(Status::Warn), "warning"),
            plural(count(Status::Fail), "failure"),
            count(Status::Skip)
        );
    }
}

/// The configuration could not be loaded: its problems, one failure each, and exit code 3.
pub(crate) fn unloadable(error: &ConfigError, args: &CheckArgs) -> ExitCode {
    let mut report = Report::default();
    match error {
        ConfigError::Invalid { origin, problems } if !problems.is_empty() => {
            for problem in problems {
                report.add(
                    Group::Config,
                    problem.key.clone().unwrap_or_else(|| "config".to_owned()),
                    Verdict::fail(
                        format!("{origin}:{problem}"),
                        "correct the file: the server refuses to start with it",
                    ),
                );
            }
        }
        _ => report.add(
            Group::Config,
            "config",
            Verdict::fail(
                error.to_string(),
                "give the right file with --config PATH, readable by this user",
            ),
        ),
    }
    report.print(args.json);
    ExitCode::from(3)
}

pub(crate) async fn run(config: &Config, args: CheckArgs) -> ExitCode {
    let groups: Vec<Group> = if args.groups.is_empty() {
        Group::ALL.to_vec()
    } else {
        args.groups.clone()
    };
    let mut report = Report::default();
    for group in groups {
        match group {
            Group::Config => check_config(config, &mut report),
            Group::Certificates => check_certificates(config, &mut report),
            Group::Dns => {
                let timeout = Duration::from_secs(args.dns_timeout);
                check_dns(config, timeout, &mut report).await;
            }
            Group::Ports => check_ports(config, &mut report).await,
            Group::Database => check_database(config, &mut report).await,
            Group::Permissions => check_permissions(config, &mut report),
        }
    }
    report.print(args.json);
    if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn check_config(config: &Config, report: &mut Report) {
    report.add(
        Group::Config,
        "config",
        Verdict::ok(format!(
            "the configuration is valid (domains {}; data folder {})",
            config.server.domains.join(", "),
            config.server.data_dir.display()
        )),
    );
    for warning in config.warnings() {
        report.add(
            Group::Config,
            "config",
            Verdict::warn(
                warning,
                "the server logs this at start too; change the setting unless it is deliberate",
            ),
        );
    }
}

fn check_certificates(config: &Config, report: &mut Report) {
    let now = unix_now();
    let trust = cert::system_trust();
    for domain in &config.server.domains {
        let check = format!("certificate {domain}");
        let place = cert::placement(config, domain);
        // The server makes a new pair when either file of the self-signed location is missing.
        if place.entry.is_none() && !(place.cert.exists() && place.key.exists()) {
            let message = "none yet: the server generates a self-signed one at start";
            let verdict = if domain == "localhost" {
                Verdict::ok(message)
            } else {
                Verdict::warn(
                    format!("{message}, which clients and federation peers refuse"),
                    format!(
                        "`causeriectl cert import CERT KEY --domain {domain}` a CA's certificate, \
                         or configure one in a [[tls.certificates]] block"
                    ),
                )
            };
            report.add(Group::Certificates, check, verdict);
            continue;
        }
        match cert::load(&place.cert, &place.key) {
            Err(e) => {
                let hint = match place.entry {
                    Some(i) => format!(
                        "check tls.certificates[{i}].cert and .key, and that this user can read \
                         them (run as the server's user)"
                    ),
                    None => format!(
                        "`causeriectl cert generate --domain {domain} --force` makes a new pair"
                    ),
                };
                report.add(
                    Group::Certificates,
                    check,
                    Verdict::fail(format!("cannot be used: {e}"), hint),
                );
            }
            Ok(material) => {
                let verdicts = cert::judge(&material, domain, now, trust.as_ref());
                if verdicts.is_empty() {
                    report.add(
                        Group::Certificates,
                        check.clone(),
                        Verdict::ok(cert::describe(&place.cert, &material.info)),
                    );
                }
                for verdict in verdicts {
                    report.add(Group::Certificates, check.clone(), verdict);
                }
            }
        }
    }
}

/// The DNS questions `check` asks, so that its judgement is tested without DNS.
trait Dns {
    async fn srv(&self, service: &str, domain: &str) -> Result<SrvAnswer, ResolveError>;
    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError>;
}

impl Dns for HickoryResolver {
    async fn srv(&self, service: &str, domain: &str) -> Result<SrvAnswer, ResolveError> {
        HickoryResolver::srv(self, service, domain).await
    }

    async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        HickoryResolver::addresses(self, host).await
    }
}

/// The SRV services a configuration offers, with the port of the first listener of each.
fn services(config: &Config) -> Vec<(&'static str, u16)> {
    [
        ("_xmpp-client._tcp", &config.c2s.starttls_listen),
        ("_xmpps-client._tcp", &config.c2s.direct_tls_listen),
        ("_xmpp-server._tcp", &config.s2s.listen),
        ("_xmpps-server._tcp", &config.s2s.direct_tls_listen),
    ]
    .into_iter()
    .filter_map(|(service, listen)| {
        let port = listen.first().and_then(|a| socket_addr(a))?.port();
        (port != 0).then_some((service, port))
    })
    .collect()
}

/// Whether a hosted domain can have DNS records at all.
fn in_dns(domain: &str) -> bool {
    domain != "localhost"
        && !domain.ends_with(".localhost")
        && !domain.starts_with('[')
        && domain.parse::<IpAddr>().is_err()
}

/// The resolver federation would use: the servers of `s2s.resolver`, else the system's.
fn resolver(config: &Config) -> Result<HickoryResolver, ResolveError> {
    HickoryResolver::configured(&config.s2s.resolver).0
}

async fn check_dns(config: &Config, timeout: Duration, report: &mut Report) {
    let domains: Vec<&String> = config.server.domains.iter().collect();
    for domain in domains.iter().filter(|d| !in_dns(d)) {
        report.add(
            Group::Dns,
            format!("dns {domain}"),
            Verdict::skip("not a DNS name: nothing to publish"),
        );
    }
    let public: Vec<String> = domains.into_iter().filter(|d| in_dns(d)).cloned().collect();
    if public.is_empty() {
        return;
    }
    let resolver = match resolver(config) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            report.add(
                Group::Dns,
                "dns",
                Verdict::warn(
                    format!("no DNS resolver: {e}"),
                    "check /etc/resolv.conf, or set s2s.resolver",
                ),
            );
            return;
        }
    };
    let services = services(config);
    // Domains are looked up at once, so that the group takes one timeout at most.
    let mut tasks = tokio::task::JoinSet::new();
    for (index, domain) in public.iter().enumerate() {
        let resolver = resolver.clone();
        let services = services.clone();
        let domain = cert::dns_name(domain);
        tasks.spawn(async move {
            let found =
                tokio::time::timeout(timeout, dns_domain(&*resolver, &domain, &services)).await;
            (index, found)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(result) = joined {
            results.push(result);
        }
    }
    results.sort_by_key(|(index, _)| *index);
    for (index, found) in results {
        let domain = &public[index];
        match found {
            Ok(verdicts) => {
                for (check, verdict) in verdicts {
                    report.add(Group::Dns, check, verdict);
                }
            }
            Err(_) => report.add(
                Group::Dns,
                format!("dns {domain}"),
                Verdict::warn(
                    format!("no answer within {} s", timeout.as_secs()),
                    "check the DNS servers (s2s.resolver, else /etc/resolv.conf), or allow \
                     more time with --dns-timeout",
                ),
            ),
        }
    }
}

/// The records of one domain: one verdict per service, one for its addresses.
async fn dns_domain(
    dns: &impl Dns,
    domain: &str,
    services: &[(&'static str, u16)],
) -> Vec<(String, Verdict)> {
    let mut out = Vec::new();
    let mut any_srv = false;
    for (service, port) in services {
        let name = format!("{service}.{domain}");
        let check = format!("srv {name}");
        let record = format!("{name}. 3600 IN SRV 0 5 {port} {domain}.");
        let verdict = match dns.srv(service, domain).await {
            Ok(SrvAnswer::Records(records)) => {
                any_srv = true;
                let listed = records
                    .iter()
                    .map(|r| format!("{} {} {} {}", r.priority, r.weight, r.port, r.target))
                    .collect::<Vec<_>>()
                    .join(", ");
                if records.iter().any(|r| r.port == *port) {
                    Verdict::ok(listed)
                } else {
                    Verdict::warn(
                        format!("{listed}: no record points to port {port}, where the listener is"),
                        "fine if something forwards that port; otherwise correct the records",
                    )
                }
            }
            Ok(SrvAnswer::Absent) => Verdict::warn(
                "no record",
                format!("add `{record}` (the target needs an A/AAAA record)"),
            ),
            Ok(SrvAnswer::NotAvailable) => Verdict::warn(
                "the record says the service is not offered (target \".\"), yet a listener \
                 is configured",
                format!("replace it with `{record}`, or remove the listener"),
            ),
            Err(e) => Verdict::warn(
                format!("lookup failed: {e}"),
                "check the DNS servers (s2s.resolver, else /etc/resolv.conf)",
            ),
        };
        out.push((check, verdict));
    }
    let check = format!("address {domain}");
    let verdict = match dns.addresses(domain).await {
        Ok(addresses) => Verdict::ok(
            addresses
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Err(ResolveError::NotFound) if any_srv => {
            Verdict::ok("no A/AAAA record; clients and peers use the SRV targets")
        }
        Err(ResolveError::NotFound) => Verdict::warn(
            "no A/AAAA record, and no SRV record to point elsewhere",
            format!(
                "add `{domain}. 3600 IN A ADDRESS` (and AAAA for IPv6) with this server's address"
            ),
        ),
        Err(e) => Verdict::warn(
            format!("lookup failed: {e}"),
            "check the DNS servers (s2s.resolver, else /etc/resolv.conf)",
        ),
    };
    out.push((check, verdict));
    out
}

/// What a listener speaks, to recognise this server behind a port in use.
#[derive(Debug, Clone, Copy)]
enum Speaks {
    /// An XMPP stream in this namespace, after TLS with this ALPN id for direct TLS.
    Xmpp {
        namespace: &'static str,
        tls: Option<&'static [u8]>,
    },
    Http,
}

fn listeners(config: &Config) -> Vec<(String, String, Speaks)> {
    let xmpp = |namespace, tls| Speaks::Xmpp { namespace, tls };
    let mut out = Vec::new();
    let mut add = |key: &str, list: &[String], speaks: Speaks| {
        for (i, addr) in list.iter().enumerate() {
            out.push((format!("{key}[{i}]"), addr.clone(), speaks));
        }
    };
    add(
        "c2s.starttls_listen",
        &config.c2s.starttls_listen,
        xmpp("jabber:client", None),
    );
    add(
        "c2s.direct_tls_listen",
        &config.c2s.direct_tls_listen,
        xmpp("jabber:client", Some(causerie_tls::ALPN_XMPP_CLIENT)),
    );
    add(
        "s2s.listen",
        &config.s2s.listen,
        xmpp("jabber:server", None),
    );
    add(
        "s2s.direct_tls_listen",
        &config.s2s.direct_tls_listen,
        xmpp("jabber:server", Some(causerie_tls::ALPN_XMPP_SERVER)),
    );
    add("http.listen", &config.http.listen, Speaks::Http);
    if let Some(listen) = &config.admin.listen {
        out.push(("admin.listen".to_owned(), listen.clone(), Speaks::Http));
    }
    out
}

fn socket_addr(text: &str) -> Option<SocketAddr> {
    text.parse()
        .ok()
        .or_else(|| text.to_socket_addrs().ok()?.next())
}

/// Whether the server of this configuration runs: its admin socket accepts a connection.
async fn server_running(config: &Config) -> bool {
    let connect = tokio::net::UnixStream::connect(config.admin_socket());
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

async fn check_ports(config: &Config, report: &mut Report) {
    let running = server_running(config).await;
    let domain = config
        .server
        .domains
        .first()
        .cloned()
        .unwrap_or_else(|| "localhost".to_owned());
    for (key, text, speaks) in listeners(config) {
        let check = format!("port {key}");
        let Some(addr) = socket_addr(&text) else {
            report.add(
                Group::Ports,
                check,
                Verdict::fail(
                    format!("{text} is not an address of this machine"),
                    format!("correct {key}"),
                ),
            );
            continue;
        };
        if addr.port() == 0 {
            report.add(
                Group::Ports,
                check,
                Verdict::skip(format!("{text}: the system picks a free port at start")),
            );
            continue;
        }
        let verdict = port_verdict(&key, addr, speaks, running, &domain).await;
        report.add(Group::Ports, check, verdict);
    }
}

async fn port_verdict(
    key: &str,
    addr: SocketAddr,
    speaks: Speaks,
    running: bool,
    domain: &str,
) -> Verdict {
    use std::io::ErrorKind;
    let bound = std::net::TcpListener::bind(addr);
    let error = match bound {
        Ok(listener) => {
            drop(listener);
            return if running {
                Verdict::warn(
                    format!("{addr} is free, but the running server does not listen there"),
                    "restart the server to apply the configuration",
                )
            } else {
                Verdict::ok(format!("{addr} is free"))
            };
        }
        Err(e) => e,
    };
    match error.kind() {
        ErrorKind::AddrInUse => {}
        ErrorKind::PermissionDenied => {
            return Verdict::warn(
                format!("this user may not listen on {addr} (ports below 1024 need privileges)"),
                "fine if the server runs with them (CAP_NET_BIND_SERVICE); otherwise use a \
                 port above 1023",
            );
        }
        ErrorKind::AddrNotAvailable => {
            return Verdict::fail(
                format!("{} is not an address of this machine", addr.ip()),
                format!("correct {key}, or use [::] for every address"),
            );
        }
        _ => {
            return Verdict::fail(
                format!("cannot listen on {addr}: {error}"),
                format!("correct {key}"),
            );
        }
    }
    let answer = tokio::time::timeout(PROBE_TIMEOUT, probe(addr, speaks, domain)).await;
    let answer = answer.unwrap_or_else(|_| Err("no answer".to_owned()));
    let what = match speaks {
        Speaks::Xmpp { tls: Some(_), .. } => "an XMPP stream over TLS",
        Speaks::Xmpp { tls: None, .. } => "an XMPP stream",
        Speaks::Http => "HTTP",
    };
    let find = format!(
        "find it with `ss -ltnp 'sport = :{}'`; stop it, or choose another address for {key}",
        addr.port()
    );
    match answer {
        Ok(()) if running => Verdict::ok(format!(
            "{addr} is in use by the running server (it answers with {what})"
        )),
        Ok(()) => Verdict::fail(
            format!(
                "{addr} is in use by another server (it answers with {what}, but this \
                 configuration's server is not running)"
            ),
            find,
        ),
        Err(why) => Verdict::fail(
            format!("{addr} is in use by another program (it does not answer with {what}: {why})"),
            find,
        ),
    }
}

/// Where to connect to reach a listener: a wildcard address is reached on loopback.
fn probe_addresses(addr: SocketAddr) -> Vec<SocketAddr> {
    match addr.ip() {
        IpAddr::V6(ip) if ip.is_unspecified() => vec![
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        ],
        IpAddr::V4(ip) if ip.is_unspecified() => {
            vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())]
        }
        _ => vec![addr],
    }
}

/// Connects and checks that the listener answers as a Causerie listener of that kind would.
async fn probe(addr: SocketAddr, speaks: Speaks, domain: &str) -> Result<(), String> {
    let mut last = "cannot connect".to_owned();
    let mut stream = None;
    for target in probe_addresses(addr) {
        match TcpStream::connect(target).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect: {e}"),
        }
    }
    let stream = stream.ok_or(last)?;
    match speaks {
        Speaks::Http => {
            let request = b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let answer = exchange(stream, request).await?;
            if answer.starts_with(b"HTTP/1.") {
                Ok(())
            } else {
                Err(describe_answer(&answer))
            }
        }
        Speaks::Xmpp { namespace, tls } => {
            let header = format!(
                "<?xml version='1.0'?><stream:stream xmlns='{namespace}' \
                 xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
            );
            let answer = match tls {
                None => exchange(stream, header.as_bytes()).await?,
                Some(alpn) => {
                    let tls = tls_connect(stream, alpn, domain).await?;
                    exchange(tls, header.as_bytes()).await?
                }
            };
            let answer_text = String::from_utf8_lossy(&answer);
            if answer_text.contains("http://etherx.jabber.org/streams") {
                Ok(())
            } else {
                Err(describe_answer(&answer))
            }
        }
    }
}

/// A TLS handshake that accepts any certificate: only whether the listener speaks matters.
async fn tls_connect(
    stream: TcpStream,
    alpn: &'static [u8],
    domain: &str,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let base = causerie_tls::s2s::s2s_client_config(&causerie_tls::CertStore::new(), domain, false)
        .map_err(|e| e.to_string())?;
    let mut config = (*base).clone();
    config.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls_pki_types::ServerName::try_from(domain.to_owned())
        .unwrap_or_else(|_| rustls_pki_types::ServerName::from(Ipv4Addr::LOCALHOST));
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))
}

/// Writes `request` and reads what comes back until the peer closes, the buffer is full or
/// nothing more arrives for a moment.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<Vec<u8>, String> {
    stream
        .write_all(request)
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    let _ = stream.flush().await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while answer.len() < PROBE_READ_BYTES {
        let wait = if answer.is_empty() {
            PROBE_TIMEOUT
        } else {
            Duration::from_millis(200)
        };
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if answer.is_empty() => return Err(format!("read failed: {e}")),
            Ok(Err(_)) => break,
        }
        if answer.starts_with(b"HTTP/1.")
            || String::from_utf8_lossy(&answer).contains("http://etherx.jabber.org/streams")
        {
            break;
        }
    }
    Ok(answer)
}

fn describe_answer(answer: &[u8]) -> String {
    if answer.is_empty() {
        return "it closed the connection or said nothing".to_owned();
    }
    let text: String = String::from_utf8_lossy(&answer[..answer.len().min(40)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("it answered \"{}\"", text.trim())
}

async fn check_database(config: &Config, report: &mut Report) {
    let check = "database";
    if config.database.url.is_none() {
        let file = config.server.data_dir.join("causerie.db");
        if !file.exists() {
            report.add(
                Group::Database,
                check,
                Verdict::ok(format!(
                    "no database yet: the server creates {} at first start",
                    file.display()
                )),
            );
            return;
        }
    }
    let options = StorageOptions {
        max_connections: 1,
        connect_timeout_secs: config.database.connect_timeout_secs,
    };
    let limit = Duration::from_secs(config.database.connect_timeout_secs.saturating_add(5));
    let url = config.database_url();
    let status = tokio::time::timeout(limit, causerie_storage::schema_status(&url, &options)).await;
    let verdict = match status {
        Err(_) => Verdict::fail(
            format!("no answer within {} s", limit.as_secs()),
            "check that the database server runs and is reachable from here",
        ),
        Ok(Err(e)) => Verdict::fail(
            format!("cannot be used: {e}"),
            "check database.url, that the database runs, and that this user may connect",
        ),
        Ok(Ok(s)) if !s.unknown.is_empty() => Verdict::fail(
            format!(
                "{}: the schema has migrations this version does not know ({}): a newer \
                 Causerie used this database",
                s.backend,
                s.unknown.join(", ")
            ),
            "run the newer version, or restore a backup made before it",
        ),
        Ok(Ok(s)) if !s.pending.is_empty() => Verdict::warn(
            format!(
                "{}: answers; schema at {}, {} migration(s) behind {}",
                s.backend,
                s.applied.last().map_or("nothing", String::as_str),
                s.pending.len(),
                s.latest
            ),
            "the server applies them when it starts; back the database up first",
        ),
        Ok(Ok(s)) => Verdict::ok(format!(
            "{}: answers; schema current ({})",
            s.backend, s.latest
        )),
    };
    report.add(Group::Database, check, verdict);
}

/// A secret file and whether the server refuses it when group or others may read it.
struct Secret {
    what: String,
    path: std::path::PathBuf,
    refused_when_open: bool,
}

fn secrets(config: &Config) -> Vec<Secret> {
    let data = &config.server.data_dir;
    let mut out = vec![
        Secret {
            what: "server secret".to_owned(),
            path: data.join("server.secret"),
            refused_when_open: false,
        },
        Secret {
            what: "policy receipt key".to_owned(),
            path: data.join("policy.key"),
            refused_when_open: true,
        },
    ];
    for domain in &config.server.domains {
        let key = cert::placement(config, domain).key;
        if !out.iter().any(|s| s.path == key) {
            out.push(Secret {
                what: format!("TLS key of {domain}"),
                path: key,
                refused_when_open: false,
            });
        }
    }
    for (what, path) in [
        ("admin.token_file", &config.admin.token_file),
        (
            "compliance.alert_webhook_token_file",
            &config.compliance.alert_webhook_token_file,
        ),
    ] {
        if let Some(path) = path {
            out.push(Secret {
                what: what.to_owned(),
                path: path.clone(),
                refused_when_open: true,
            });
        }
    }
    out
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<u32> {
    None
}

fn check_permissions(config: &Config, report: &mut Report) {
    let data = &config.server.data_dir;
    match mode_of(data) {
        None => report.add(
            Group::Permissions,
            format!("folder {}", data.display()),
            Verdict::skip("does not exist yet: the server creates it with mode 0700"),
        ),
        Some(mode) if mode & 0o077 != 0 => report.add(
            Group::Permissions,
            format!("folder {}", data.display()),
            Verdict::warn(
                format!("mode {mode:04o}: other users can look into the data folder"),
                format!("chmod 700 {}", data.display()),
            ),
        ),
        Some(mode) => report.add(
            Group::Permissions,
            format!("folder {}", data.display()),
            Verdict::ok(format!("mode {mode:04o}")),
        ),
    }
    for secret in secrets(config) {
        let Some(mode) = mode_of(&secret.path) else {
            continue;
        };
        let check = format!("{} {}", secret.what, secret.path.display());
        let chmod = format!("chmod 600 {}", secret.path.display());
        let verdict = if mode & 0o077 == 0 {
            Verdict::ok(format!("mode {mode:04o}"))
        } else if secret.refused_when_open {
            Verdict::fail(
                format!("mode {mode:04o} lets group or others read it: the server refuses it"),
                chmod,
            )
        } else if mode & 0o007 != 0 {
            Verdict::fail(
                format!("mode {mode:04o} lets every user of this machine read it"),
                chmod,
            )
        } else {
            Verdict::warn(
                format!("mode {mode:04o} lets its group read it"),
                format!("fine if that group is the server's alone; otherwise {chmod}"),
            )
        };
        report.add(Group::Permissions, check, verdict);
    }
    let socket = config.admin_socket();
    let check = format!("admin socket {}", socket.display());
    let verdict = match mode_of(&socket) {
        None => Verdict::skip("absent: the server is not running"),
        Some(mode) if mode & 0o007 != 0 => Verdict::fail(
            format!("mode {mode:04o}: every user of this machine can run admin commands"),
            format!(
                "chmod 600 {} (the server sets it when it starts)",
                socket.display()
            ),
        ),
        Some(mode) if mode & 0o070 != 0 => Verdict::warn(
            format!("mode {mode:04o}: its group can run admin commands"),
            format!("chmod 600 {}", socket.display()),
        ),
        Some(mode) => Verdict::ok(format!("mode {mode:04o}")),
    };
    report.add(Group::Permissions, check, verdict);
}

#[cfg(test)]
mod tests {
    use super::*;
    use causerie_s2s::SrvRecord;
    use std::collections::HashMap;

    /// Answers from a table; anything not in it is absent.
    #[derive(Default)]
    struct Table {
        srv: HashMap<String, Result<SrvAnswer, ResolveError>>,
        addresses: HashMap<String, Vec<IpAddr>>,
    }

    impl Dns for Table {
        async fn srv(&self, service: &str, domain: &str) -> Result<SrvAnswer, ResolveError> {
            self.srv
                .get(&format!("{service}.{domain}"))
                .cloned()
                .unwrap_or(Ok(SrvAnswer::Absent))
        }

        async fn addresses(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
            self.addresses
                .get(host)
                .cloned()
                .ok_or(ResolveError::NotFound)
        }
    }

    fn record(port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority: 0,
            weight: 5,
            port,
            target: target.to_owned(),
        }
    }

    fn run(table: &Table, services: &[(&'static str, u16)]) -> Vec<(String, Verdict)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(dns_domain(table, "example.com", services))
    }

    #[test]
    fn missing_records_are_warnings_with_the_record_to_add() {
        let found = run(
            &Table::default(),
            &[("_xmpp-client._tcp", 5222), ("_xmpp-server._tcp", 5269)],
        );
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].0, "srv _xmpp-client._tcp.example.com");
        assert_eq!(found[0].1.status, Status::Warn);
        assert_eq!(
            found[0].1.hint.as_deref(),
            Some(
                "add `_xmpp-client._tcp.example.com. 3600 IN SRV 0 5 5222 example.com.` \
                 (the target needs an A/AAAA record)"
            )
        );
        assert_eq!(found[2].0, "address example.com");
        assert_eq!(found[2].1.status, Status::Warn);
    }

    #[test]
    fn records_are_compared_with_the_listeners() {
        let mut table = Table::default();
        table.srv.insert(
            "_xmpp-client._tcp.example.com".into(),
            Ok(SrvAnswer::Records(vec![record(5222, "xmpp.example.com")])),
        );
        table.srv.insert(
            "_xmpp-server._tcp.example.com".into(),
            Ok(SrvAnswer::Records(vec![record(5999, "xmpp.example.com")])),
        );
        table.srv.insert(
            "_xmpps-client._tcp.example.com".into(),
            Err(ResolveError::Timeout),
        );
        let found = run(
            &table,
            &[
                ("_xmpp-client._tcp", 5222),
                ("_xmpp-server._tcp", 5269),
                ("_xmpps-client._tcp", 5223),
            ],
        );
        assert_eq!(found[0].1, Verdict::ok("0 5 5222 xmpp.example.com"));
        assert_eq!(found[1].1.status, Status::Warn);
        assert!(found[1].1.message.contains("port 5269"), "{:?}", found[1]);
        assert_eq!(found[2].1.status, Status::Warn);
        assert!(found[2].1.message.contains("timed out"), "{:?}", found[2]);
        // SRV records point elsewhere: the domain needs no address of its own.
        assert_eq!(found[3].1.status, Status::Ok);
    }

    #[test]
    fn only_dns_names_are_looked_up() {
        assert!(in_dns("example.com"));
        assert!(!in_dns("localhost"));
        assert!(!in_dns("dev.localhost"));
        assert!(!in_dns("192.0.2.1"));
        assert!(!in_dns("[2001:db8::1]"));
    }

    #[test]
    fn wildcard_listeners_are_probed_on_loopback() {
        let v6: SocketAddr = "[::]:5222".parse().expect("addr");
        assert_eq!(
            probe_addresses(v6),
            vec![
                "[::1]:5222".parse().expect("addr"),
                "127.0.0.1:5222".parse().expect("addr")
            ]
        );
        let v4: SocketAddr = "192.0.2.7:5269".parse().expect("addr");
        assert_eq!(probe_addresses(v4), vec![v4]);
    }
}
