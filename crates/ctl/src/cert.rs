//! `causeriectl cert …`: the certificates the server presents for its hosted domains. `generate`
//! makes self-signed ones, `import` installs a certificate and key from a CA after checking
//! them, `list` shows what each domain would use. `causeriectl check` judges the same files
//! with [`judge`].
//!
//! Where a domain's certificate lives is decided as the server decides it at start: the
//! `[[tls.certificates]]` entry for the domain, else the entry for the wildcard one label up,
//! else the self-signed certificate kept under `DATA_DIR/tls/DOMAIN.crt` (and `.key`), which
//! the server generates when missing (`tls.self_signed_for_missing`). The server reads these
//! files when it starts only, so a change needs a restart.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine as _;
use causerie_config::Config;
use causerie_tls::inspect::{self, CertInfo, KeyMatch};
use causerie_tls::s2s::{PeerTrust, SYSTEM_CA_BUNDLE, load_roots};
use clap::Subcommand;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::check::Verdict;
use crate::json_string;
use crate::time::{format_utc, unix_now};

/// A certificate that ends within this many days is reported.
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 30;

/// Largest certificate or key file read: a chain is a few kilobytes.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Longest validity `cert generate` accepts, in days.
const MAX_DAYS: u32 = 3650;

/// Told after every change.
const RESTART_RUNNING: &str = "the running server reads its certificates at start only: \
                               restart it (for example `systemctl restart causerie`) to use them";
const RESTART_LATER: &str = "the server uses them the next time it starts";

#[derive(Subcommand, Debug)]
pub(crate) enum CertCommand {
    /// Make a new self-signed certificate and key (ECDSA P-256) for hosted domains, written
    /// where the server takes each domain's certificate from (the key with mode 0600; a
    /// replaced file keeps its owner, group and mode).
    /// Clients and other servers do not trust a self-signed certificate unless told to: use it
    /// for tests and private deployments, or until a CA's certificate is imported.
    Generate {
        /// A domain to make a certificate for (repeatable; default: every hosted domain). The
        /// certificate also names `*.DOMAIN`, for components.
        #[arg(long, value_name = "DOMAIN")]
        domain: Vec<String>,
        /// Days of validity.
        #[arg(long, value_name = "N", default_value_t = causerie_tls::SELF_SIGNED_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
        days: u32,
        /// Write DOMAIN.crt and DOMAIN.key into this folder instead (any domain is accepted).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace existing files (refused otherwise, with exit code 1).
        #[arg(long)]
        force: bool,
    },
    /// Install a certificate chain (PEM, leaf first) and its private key (PEM) for hosted
    /// domains, after checking them: the key belongs to the leaf, the leaf names every domain
    /// the files serve, and it is valid now. Bad input is refused with exit code 2 and changes
    /// nothing; otherwise the files are replaced atomically, keeping the owner, group and mode
    /// of the files they replace (a new key gets mode 0600). Run it as root or as the server's
    /// user.
    Import {
        /// The certificate chain, PEM.
        cert: PathBuf,
        /// The private key, PEM (PKCS#8, PKCS#1 or SEC1; not encrypted).
        key: PathBuf,
        /// A hosted domain to install it for (repeatable; default: every hosted domain the
        /// certificate names).
        #[arg(long, value_name = "DOMAIN")]
        domain: Vec<String>,
    },
    /// Show, for each hosted domain, the certificate the server uses: its file, names, end of
    /// validity and whether it is self-signed.
    List {
        /// One JSON array of {domain, cert, key, configured, present, names, not_after,
        /// self_signed, sha256, problem} objects instead.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(config: &Config, cmd: CertCommand) -> ExitCode {
    match cmd {
        CertCommand::Generate {
            domain,
            days,
            out,
            force,
        } => generate(config, &domain, days, out.as_deref(), force),
        CertCommand::Import { cert, key, domain } => import(config, &cert, &key, &domain),
        CertCommand::List { json } => list(config, json),
    }
}

/// Where the server takes one hosted domain's certificate from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placement {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The position of the `[[tls.certificates]]` entry; `None` for the self-signed location.
    pub entry: Option<usize>,
}

/// As the server's start-up does: the entry for the domain, else for the wildcard one label
/// up, else the self-signed files under the data folder.
pub(crate) fn placement(config: &Config, domain: &str) -> Placement {
    let certificates = &config.tls.certificates;
    let wildcard = domain
        .split_once('.')
        .map(|(_, parent)| format!("*.{parent}"));
    let position = certificates
        .iter()
        .position(|c| c.domain.eq_ignore_ascii_case(domain))
        .or_else(|| {
            let wildcard = wildcard.as_deref()?;
            certificates
                .iter()
                .position(|c| c.domain.eq_ignore_ascii_case(wildcard))
        });
    match position {
        Some(i) => Placement {
            cert: certificates[i].cert.clone(),
            key: certificates[i].key.clone(),
            entry: Some(i),
        },
        None => {
            let (cert, key) = causerie_tls::self_signed_paths(&config.server.data_dir, domain);
            Placement {
                cert,
                key,
                entry: None,
            }
        }
    }
}

/// A certificate chain and key read and parsed, with the facts of the leaf.
pub(crate) struct Material {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub info: CertInfo,
}

/// Reads a PEM file, refusing anything larger than a certificate file can be.
pub(crate) fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        return Err(format!(
            "{}: larger than {MAX_PEM_BYTES} bytes; not a PEM certificate or key",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Reads and parses a certificate chain and key from their files.
pub(crate) fn load(cert: &Path, key: &Path) -> Result<Material, String> {
    let cert_pem = read_pem(cert)?;
    let key_pem = read_pem(key)?;
    parse(&cert_pem, cert, &key_pem, key)
}

fn parse(cert_pem: &[u8], cert: &Path, key_pem: &[u8], key: &Path) -> Result<Material, String> {
    let chain = inspect::parse_chain(cert_pem).map_err(|e| format!("{}: {e}", cert.display()))?;
    let info = CertInfo::from_der(&chain[0]).map_err(|e| format!("{}: {e}", cert.display()))?;
    let key = inspect::parse_key(key_pem).map_err(|e| format!("{}: {e}", key.display()))?;
    Ok(Material { chain, key, info })
}

/// The trust anchors of this machine (the system CA bundle), to tell whether a CA-issued
/// certificate's chain is complete; `None` without a readable bundle.
pub(crate) fn system_trust() -> Option<PeerTrust> {
    let roots = load_roots(&[(Path::new(SYSTEM_CA_BUNDLE), true)]).ok()?;
    (!roots.is_empty()).then(|| PeerTrust::new(roots))
}

/// The name a certificate carries for a domain: IDNA A-labels (RFC 5890), as DNS has them.
pub(crate) fn dns_name(domain: &str) -> String {
    idna::domain_to_ascii(domain).unwrap_or_else(|_| domain.to_owned())
}

/// What is wrong with `material` as the certificate of `domain` at `now` (Unix seconds):
/// failures (the key is another certificate's, the names miss the domain, expired or not yet
/// valid) and warnings (ends soon, self-signed, chain not leading to a CA this machine trusts).
/// Empty when nothing is.
pub(crate) fn judge(
    material: &Material,
    domain: &str,
    now: i64,
    trust: Option<&PeerTrust>,
) -> Vec<Verdict> {
    let info = &material.info;
    let mut out = Vec::new();
    match inspect::key_matches(&material.chain, &material.key) {
        Ok(KeyMatch::Matches) => {}
        Ok(KeyMatch::Mismatch) => out.push(Verdict::fail(
            "the private key does not belong to the certificate",
            "install the key that was created with this certificate's request, or both files \
             from the same renewal",
        )),
        Ok(KeyMatch::Unknown) => out.push(Verdict::warn(
            "whether the private key belongs to the certificate cannot be told for this key type",
            "compare them with `openssl x509 -noout -pubkey` and `openssl pkey -pubout`",
        )),
        Err(e) => out.push(Verdict::fail(
            format!("the private key cannot be used: {e}"),
            "use an RSA, ECDSA (P-256, P-384) or Ed25519 key in PEM",
        )),
    }
    let names = info.names();
    if !info.covers(&dns_name(domain)) {
        out.push(Verdict::fail(
            format!(
                "it does not name {domain} (it names {})",
                if names.is_empty() {
                    "nothing in its subjectAltName".to_owned()
                } else {
                    names.join(", ")
                }
            ),
            format!(
                "get a certificate whose subjectAltName has {domain} (or *.{}), or `causeriectl \
                 cert generate --domain {domain}` for a self-signed one",
                domain.split_once('.').map_or(domain, |(_, parent)| parent)
            ),
        ));
    }
    let expired = now >= info.not_after;
    if expired {
        out.push(Verdict::fail(
            format!("it expired on {}", format_utc(info.not_after)),
            "renew it and `causeriectl cert import` the new one",
        ));
    } else if now < info.not_before {
        out.push(Verdict::fail(
            format!("it is not valid before {}", format_utc(info.not_before)),
            "check this machine's clock, or wait until then",
        ));
    } else if info.not_after - now < EXPIRY_WARNING_DAYS * 86_400 {
        out.push(Verdict::warn(
            format!(
                "it expires on {}, in {} days",
                format_utc(info.not_after),
                (info.not_after - now) / 86_400
            ),
            "renew it and `causeriectl cert import` the new one",
        ));
    }
    if info.self_issued {
        // A development domain is never reached by outside clients or peers.
        if domain != "localhost" {
            out.push(Verdict::warn(
                "it is self-signed: clients and federation peers refuse it unless told to \
                 trust it",
                format!(
                    "get one from a CA (ACME, or the company's CA) and `causeriectl cert import` \
                     it for {domain}"
                ),
            ));
        }
    } else if !expired
        && let Some(trust) = trust
        && let Err(why) = trust.check(Some(&material.chain), &dns_name(domain), None)
        && !matches!(why, causerie_tls::s2s::CertProblem::NameMismatch)
    {
        out.push(Verdict::warn(
            format!("its chain does not lead to a CA of this machine's bundle ({why})"),
            "put the intermediate certificates in the file after the leaf; a private CA must \
             be trusted by every client and peer",
        ));
    }
    out
}

/// One line about a certificate that is fine: file, names, end of validity, issuer.
pub(crate) fn describe(path: &Path, info: &CertInfo) -> String {
    format!(
        "{} (names {}; valid until {}; {})",
        path.display(),
        info.names().join(", "),
        format_utc(info.not_after),
        if info.self_issued {
            "self-signed"
        } else {
            "issued by a CA"
        }
    )
}

/// Names for a generated certificate of `domain`: the domain and its sub-domains (the server
/// does the same for its own self-signed certificate), but no wildcard for `localhost` or an
/// address.
fn names_for(domain: &str) -> Vec<String> {
    let name = dns_name(domain);
    let literal = name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[');
    if name == "localhost" || literal {
        vec![name]
    } else {
        vec![name.clone(), format!("*.{name}")]
    }
}

/// Files to write for some domains.
struct Target {
    domains: Vec<String>,
    names: Vec<String>,
    cert: PathBuf,
    key: PathBuf,
}

/// The domains as the commands take them: prepared like a JID's domainpart.
fn prepare_domains(config: &Config, given: &[String], any: bool) -> Result<Vec<String>, String> {
    if given.is_empty() {
        return Ok(config.server.domains.clone());
    }
    let mut out = Vec::new();
    for raw in given {
        let domain = causerie_jid::prepare_domain(raw.trim())
            .map_err(|e| format!("'{raw}' is not a domain: {e}"))?;
        if !any && !config.server.domains.contains(&domain) {
            return Err(format!(
                "{domain} is not a hosted domain of this server (server.domains: {})",
                config.server.domains.join(", ")
            ));
        }
        if !out.contains(&domain) {
            out.push(domain);
        }
    }
    Ok(out)
}

/// The domains grouped by the files they are served from, in the order first seen.
fn targets_by_placement(config: &Config, domains: &[String]) -> Vec<Target> {
    let mut targets: Vec<Target> = Vec::new();
    for domain in domains {
        let place = placement(config, domain);
        let names = names_for(domain);
        match targets
            .iter_mut()
            .find(|t| t.cert == place.cert && t.key == place.key)
        {
            Some(t) => {
                t.domains.push(domain.clone());
                for n in names {
                    if !t.names.contains(&n) {
                        t.names.push(n);
                    }
                }
            }
            None => {
                let mut names = names;
                // A wildcard entry serves sub-domains that are not hosted yet: keep its name.
                if let Some(i) = place.entry {
                    let entry = dns_name(&config.tls.certificates[i].domain);
                    if entry.starts_with("*.") && !names.contains(&entry) {
                        names.push(entry);
                    }
                }
                targets.push(Target {
                    domains: vec![domain.clone()],
                    names,
                    cert: place.cert,
                    key: place.key,
                });
            }
        }
    }
    targets
}

fn bad_input(message: &str) -> ExitCode {
    eprintln!("causeriectl: {message}");
    ExitCode::from(2)
}

fn generate(
    config: &Config,
    domains: &[String],
    days: u32,
    out: Option<&Path>,
    force: bool,
) -> ExitCode {
    let domains = match prepare_domains(config, domains, out.is_some()) {
        Ok(d) => d,
        Err(e) => return bad_input(&format!("{e}; use --out DIR for a domain not hosted here")),
    };
    let targets: Vec<Target> = match out {
        Some(dir) => domains
            .iter()
            .map(|d| Target {
                domains: vec![d.clone()],
                names: names_for(d),
                cert: dir.join(format!("{d}.crt")),
                key: dir.join(format!("{d}.key")),
            })
            .collect(),
        None => targets_by_placement(config, &domains),
    };
    let existing: Vec<String> = targets
        .iter()
        .flat_map(|t| [&t.cert, &t.key])
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !existing.is_empty() && !force {
        eprintln!(
            "causeriectl: refusing to overwrite {} (use --force to replace them)",
            existing.join(", ")
        );
        return ExitCode::from(1);
    }
    for target in &targets {
        let (cert_pem, key_pem) = match causerie_tls::generate_self_signed_for(&target.names, days)
        {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("causeriectl: {}: {e}", target.domains.join(", "));
                return ExitCode::from(3);
            }
        };
        match install_pair(
            &target.cert,
            cert_pem.as_bytes(),
            &target.key,
            key_pem.as_bytes(),
        ) {
            Ok(notes) => notes
                .iter()
                .for_each(|n| eprintln!("causeriectl: warning: {n}")),
            Err(e) => {
                eprintln!("causeriectl: {e}");
                return ExitCode::from(3);
            }
        }
        println!(
            "{}: wrote {} and {} (self-signed for {}; valid for {days} days)",
            target.domains.join(", "),
            target.cert.display(),
            target.key.display(),
            target.names.join(", ")
        );
    }
    if out.is_none() {
        eprintln!("causeriectl: {}", restart_note(config));
    }
    ExitCode::SUCCESS
}

fn import(config: &Config, cert: &Path, key: &Path, domains: &[String]) -> ExitCode {
    let material = match load(cert, key) {
        Ok(m) => m,
        Err(e) => return bad_input(&e),
    };
    let domains = match prepare_domains(config, domains, false) {
        Ok(d) if domains.is_empty() => d
            .into_iter()
            .filter(|d| material.info.covers(&dns_name(d)))
            .collect(),
        Ok(d) => d,
        Err(e) => return bad_input(&e),
    };
    if domains.is_empty() {
        return bad_input(&format!(
            "{} names none of the hosted domains (it names {}; server.domains: {})",
            cert.display(),
            material.info.names().join(", "),
            config.server.domains.join(", ")
        ));
    }
    let now = unix_now();
    let trust = system_trust();
    let targets = targets_by_placement(config, &domains);
    // A file may serve more domains than those asked for (a wildcard entry): the certificate
    // must do for all of them.
    let mut served: BTreeSet<String> = BTreeSet::new();
    for target in &targets {
        for d in &config.server.domains {
            let place = placement(config, d);
            if place.cert == target.cert && place.key == target.key {
                served.insert(d.clone());
            }
        }
    }
    let mut refused = false;
    let mut warnings = Vec::new();
    for domain in &served {
        for verdict in judge(&material, domain, now, trust.as_ref()) {
            match verdict.status {
                crate::check::Status::Fail => {
                    refused = true;
                    eprintln!("causeriectl: {domain}: {}", verdict.message);
                    if let Some(hint) = &verdict.hint {
                        eprintln!("  hint: {hint}");
                    }
                }
                _ => warnings.push(format!("{domain}: {}", verdict.message)),
            }
        }
    }
    if refused {
        eprintln!("causeriectl: nothing was installed");
        return ExitCode::from(2);
    }
    let chain_pem = pem_chain(&material.chain);
    let key_pem = pem_key(&material.key);
    for target in &targets {
        match install_pair(
            &target.cert,
            chain_pem.as_bytes(),
            &target.key,
            key_pem.as_bytes(),
        ) {
            Ok(notes) => warnings.extend(notes),
            Err(e) => {
                eprintln!("causeriectl: {e}");
                return ExitCode::from(3);
            }
        }
        println!(
            "{}: installed {} and {} ({})",
            target.domains.join(", "),
            target.cert.display(),
            target.key.display(),
            describe(cert, &material.info)
        );
    }
    for warning in warnings {
        eprintln!("causeriectl: warning: {warning}");
    }
    eprintln!("causeriectl: {}", restart_note(config));
    ExitCode::SUCCESS
}

/// Whether the server runs (its admin socket accepts a connection) decides what to tell.
fn restart_note(config: &Config) -> &'static str {
    #[cfg(unix)]
    if std::os::unix::net::UnixStream::connect(config.admin_socket()).is_ok() {
        return RESTART_RUNNING;
    }
    let _ = config;
    RESTART_LATER
}

fn list(config: &Config, json: bool) -> ExitCode {
    let now = unix_now();
    let mut rows = Vec::new();
    for domain in &config.server.domains {
        let place = placement(config, domain);
        let present = place.cert.exists();
        let loaded = present.then(|| load(&place.cert, &place.key));
        let (info, problem) = match loaded {
            Some(Ok(m)) => {
                let problems = judge(&m, domain, now, None);
                let first = problems
                    .into_iter()
                    .find(|v| v.status == crate::check::Status::Fail)
                    .map(|v| v.message);
                (Some(m.info), first)
            }
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        rows.push((domain, place, present, info, problem));
    }
    if json {
        let items: Vec<String> = rows
            .iter()
            .map(|(domain, place, present, info, problem)| {
                let names = info.as_ref().map_or_else(Vec::new, CertInfo::names);
                format!(
                    "{{\"domain\":{},\"cert\":{},\"key\":{},\"configured\":{},\"present\":{present},\
                     \"names\":[{}],\"not_after\":{},\"self_signed\":{},\"sha256\":{},\"problem\":{}}}",
                    json_string(domain),
                    json_string(&place.cert.display().to_string()),
                    json_string(&place.key.display().to_string()),
                    place.entry.is_some(),
                    names.iter().map(|n| json_string(n)).collect::<Vec<_>>().join(","),
                    info.as_ref()
                        .map_or("null".to_owned(), |i| json_string(&format_utc(i.not_after))),
                    info.as_ref()
                        .map_or("null".to_owned(), |i| i.self_issued.to_string()),
                    info.as_ref()
                        .map_or("null".to_owned(), |i| json_string(&i.fingerprint_hex())),
                    problem.as_deref().map_or("null".to_owned(), json_string),
                )
            })
            .collect();
        println!("[{}]", items.join(","));
        return ExitCode::SUCCESS;
    }
    for (domain, place, present, info, problem) in rows {
        let source = if place.entry.is_some() {
            "configured"
        } else {
            "self-signed location"
        };
        match (present, info) {
            (false, _) => println!(
                "{domain}\t{}\t{source}\tnot created yet (the server generates it at start)",
                place.cert.display()
            ),
            (true, Some(info)) => println!(
                "{domain}\t{}\t{source}\tuntil {}\t{}\t{}{}",
                place.cert.display(),
                format_utc(info.not_after),
                if info.self_issued {
                    "self-signed"
                } else {
                    "CA-issued"
                },
                info.names().join(","),
                problem.map_or(String::new(), |p| format!("\tPROBLEM: {p}"))
            ),
            (true, None) => println!(
                "{domain}\t{}\t{source}\tPROBLEM: {}",
                place.cert.display(),
                problem.unwrap_or_default()
            ),
        }
    }
    ExitCode::SUCCESS
}

fn pem_block(label: &str, der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The chain written back from what was parsed: only certificates, so that a combined file
/// (certificate and key together) never leaves its key in the readable certificate file.
fn pem_chain(chain: &[CertificateDer<'_>]) -> String {
    chain
        .iter()
        .map(|c| pem_block("CERTIFICATE", c.as_ref()))
        .collect()
}

fn pem_key(key: &PrivateKeyDer<'_>) -> String {
    let label = match key {
        PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
        PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
        _ => "PRIVATE KEY",
    };
    pem_block(label, key.secret_der())
}

/// Writes a certificate and its key: both go to temporary files in their folders first, then
/// are renamed over the old ones, so each file is always whole; if writing either fails,
/// nothing is replaced. Missing folders are created with mode 0700. Each file gets the owner,
/// group and mode of the file it replaces, or those [`attributes`] gives a new one. Returns
/// what could not be done about ownership, for the caller to say.
fn install_pair(
    cert: &Path,
    cert_pem: &[u8],
    key: &Path,
    key_pem: &[u8],
) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let key_tmp = stage(key, key_pem, true, &mut notes)?;
    let cert_tmp = match stage(cert, cert_pem, false, &mut notes) {
        Ok(t) => t,
        Err(e) => {
            let _ = std::fs::remove_file(&key_tmp);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&key_tmp, key) {
        let _ = std::fs::remove_file(&key_tmp);
        let _ = std::fs::remove_file(&cert_tmp);
        return Err(format!("{}: {e}", key.display()));
    }
    std::fs::rename(&cert_tmp, cert).map_err(|e| {
        let _ = std::fs::remove_file(&cert_tmp);
        format!(
            "{}: {e} (the key {} was already replaced)",
            cert.display(),
            key.display()
        )
    })?;
    Ok(notes)
}

/// Owner and group (when they should differ from this process's) and mode of a file about to
/// be written at `path`. A replaced file's are kept, so that a key readable by the server's
/// group (root:causerie 0640) stays so; a key never keeps access for others. A new file takes
/// its folder's owner and group (the server's, under its data folder, when run as root); a new
/// key is 0600, or 0640 in a folder of root's that its group may enter (`/etc/causerie/tls`
/// shared with the server's group), and a certificate 0644.
#[cfg(unix)]
fn attributes(path: &Path, dir: &Path, private: bool) -> (Option<(u32, u32)>, u32) {
    use std::os::unix::fs::MetadataExt;
    if let Ok(old) = std::fs::metadata(path) {
        let mode = old.mode() & 0o777;
        let mode = if private {
            (mode & 0o640) | 0o400
        } else {
            (mode & 0o666) | 0o400
        };
        return (Some((old.uid(), old.gid())), mode);
    }
    match std::fs::metadata(dir) {
        Ok(folder) => {
            let shared = folder.uid() == 0 && folder.mode() & 0o050 == 0o050;
            let mode = match (private, shared) {
                (true, true) => 0o640,
                (true, false) => 0o600,
                (false, _) => 0o644,
            };
            (Some((folder.uid(), folder.gid())), mode)
        }
        Err(_) => (None, if private { 0o600 } else { 0o644 }),
    }
}

/// Writes `bytes` to a new temporary file beside `path` and returns its path.
fn stage(
    path: &Path,
    bytes: &[u8],
    private: bool,
    notes: &mut Vec<String>,
) -> Result<PathBuf, String> {
    use std::io::Write;
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(&dir).map_err(failed)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    let (owner, mode) = attributes(path, &dir, private);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = private;
    let written = options.open(&tmp).and_then(|mut f| {
        // The creation mode passes through the umask; the intended one is set explicitly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(failed(e));
    }
    #[cfg(unix)]
    if let Some((uid, gid)) = owner {
        use std::os::unix::fs::MetadataExt;
        let current = std::fs::metadata(&tmp).map(|m| (m.uid(), m.gid())).ok();
        if current != Some((uid, gid))
            && let Err(e) = std::os::unix::fs::chown(&tmp, Some(uid), Some(gid))
        {
            notes.push(format!(
                "{} is owned by this user, not by {uid}:{gid} ({e}): make sure the server's \
                 user can read it",
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = notes;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use causerie_config::CertificateConfig;

    fn config(domains: &[&str], entries: &[(&str, &str)]) -> Config {
        let mut config = Config::default();
        config.server.domains = domains.iter().map(|d| d.to_string()).collect();
        config.server.data_dir = PathBuf::from("/srv/data");
        config.tls.certificates = entries
            .iter()
            .map(|(domain, file)| CertificateConfig {
                domain: domain.to_string(),
                cert: PathBuf::from(format!("/etc/{file}.crt")),
                key: PathBuf::from(format!("/etc/{file}.key")),
            })
            .collect();
        config
    }

    #[test]
    fn placement_follows_the_server() {
        let c = config(
            &["example.com", "chat.example.com", "other.org"],
            &[("*.example.com", "wild"), ("example.com", "apex")],
        );
        assert_eq!(
            placement(&c, "example.com").cert,
            PathBuf::from("/etc/apex.crt")
        );
        assert_eq!(
            placement(&c, "chat.example.com").key,
            PathBuf::from("/etc/wild.key")
        );
        let other = placement(&c, "other.org");
        assert_eq!(other.entry, None);
        assert_eq!(other.cert, PathBuf::from("/srv/data/tls/other.org.crt"));
    }

    #[test]
    fn domains_sharing_a_file_get_one_certificate() {
        let c = config(
            &["a.example.com", "b.example.com", "localhost"],
            &[("*.example.com", "wild")],
        );
        let targets = targets_by_placement(&c, &c.server.domains);
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].domains, vec!["a.example.com", "b.example.com"]);
        assert!(targets[0].names.contains(&"*.example.com".to_owned()));
        assert_eq!(targets[1].names, vec!["localhost"]);
    }

    #[test]
    fn pem_round_trips() {
        let (cert, key) =
            causerie_tls::generate_self_signed(&["example.com".into()]).expect("generated");
        let chain = inspect::parse_chain(cert.as_bytes()).expect("chain");
        let key = inspect::parse_key(key.as_bytes()).expect("key");
        assert_eq!(
            inspect::parse_chain(pem_chain(&chain).as_bytes()).expect("again"),
            chain
        );
        assert_eq!(
            inspect::parse_key(pem_key(&key).as_bytes())
                .expect("again")
                .secret_der(),
            key.secret_der()
        );
    }
}
