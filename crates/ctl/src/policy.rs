//! `causeriectl policy …`: publishing usage-policy versions, reading them back, the server's
//! receipt-signing key, and the acceptance receipts (listing, who has not accepted, and the
//! check of their hash chain and signatures). Everything is read and written straight in the
//! database and the data folder, whether the server runs or not.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use causerie_config::Config;
use causerie_policy::{ChainReport, PolicyDocument, ServerKey, SignedReceipt};
use causerie_storage::audit::MAX_DETAIL_BYTES;
use causerie_storage::policy::{MAX_FIELD_BYTES, is_hash};
use causerie_storage::{
    NewAuditEvent, PolicyVersion, ReceiptFilter, Storage, StoreError, StoredReceipt,
};
use clap::Subcommand;

use crate::federation::{actor, json_opt, one_line, store_failure, truncate};
use crate::json_string;
use crate::time::{format_utc, parse_time, unix_now};

/// Receipts read per query while a command walks the whole chain.
const RECEIPT_PAGE: u64 = 1000;

/// Name of the key file in the data folder (`server.data_dir`).
const KEY_FILE: &str = "policy.key";

/// Shortest hash prefix `policy show` takes, so that a version number is not read as a prefix.
const MIN_PREFIX: usize = 4;

#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCommand {
    /// Publish a new version of the usage policy from a policy file.
    ///
    /// The file is Markdown or plain text opening with a TOML front matter between two `+++`
    /// lines (title, effective, categories, and optionally format and domain). Its version id is
    /// the SHA-256 of the file's exact bytes: any edit makes a new version that accounts must
    /// accept again. A version without `domain` applies to every hosted domain. Publishing the
    /// same file twice is refused (exit code 1); a file that does not parse, or that names a
    /// domain this server does not host, is refused with exit code 2 and nothing is written.
    /// Recorded in the audit log.
    Publish {
        /// The policy file.
        file: PathBuf,
        /// Who publishes it, kept with the version (default: causeriectl:$USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Show one version: its title, number, hash and short code, effective time, domain,
    /// categories, format, then the text.
    ///
    /// VERSION is a version number, a full hash, or a hash prefix of at least 4 hex digits.
    /// Without it, the version in force now for the first hosted domain. Exit code 1 when no
    /// version matches; 2 when a prefix matches several (they are listed).
    Show {
        /// Version number, hash or hash prefix.
        version: Option<String>,
        /// One JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// List every published version, one `SEQ HASH12 EFFECTIVE DOMAIN|* TITLE` line each
    /// (`*` for a version that applies to every domain); the versions in force now are marked
    /// `*current*` (with the domains, when a version for every domain is in force for some only).
    List {
        /// One JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Print the server's receipt-signing public key (hex) and its fingerprint.
    ///
    /// The secret key is the file DATA_DIR/policy.key (`server.data_dir` in the configuration),
    /// which the server uses too; it is created, readable by its owner only, on first use.
    /// Give the public key or the fingerprint to whoever checks receipts.
    Key,
    /// List acceptance receipts, oldest first: `SEQ TIME USER@DOMAIN[/RESOURCE] VERSION-HASH
    /// METHOD REMOTE-ADDRESS CLIENT` ("-" for an unknown address or client).
    Acceptances {
        /// Only the receipts of this account (a bare JID).
        #[arg(long, value_name = "JID")]
        user: Option<String>,
        /// Only receipts accepted at or after this time: RFC 3339 (2025-05-01T12:00:00Z), a
        /// date (2025-05-01, midnight UTC) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// One JSON array of objects instead.
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV (RFC 4180) with a header line instead.
        #[arg(long)]
        csv: bool,
    },
    /// For each hosted domain, the version in force now and the accounts that have not
    /// accepted it.
    Status {
        /// One JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Check every stored receipt: each one's hash against its fields, its signature against
    /// the server's key (DATA_DIR/policy.key), and the hash chain that links it to the one
    /// before.
    ///
    /// Exit code 0 when all is well; 1 with one line per problem (its row position and seq)
    /// when a receipt was edited, removed, inserted or reordered; 3 when there is no key yet.
    /// A removed last receipt leaves a valid shorter chain: keep the `SEQ:HASH` printed at the
    /// end of a good check somewhere else, and pass it with --checkpoint next time.
    Verify {
        /// A receipt known to have been stored earlier, as printed by a previous check.
        #[arg(long, value_name = "SEQ:HASH")]
        checkpoint: Option<String>,
    },
}

/// What a command checked before the database was opened.
pub(crate) enum Prepared {
    Publish {
        doc: PolicyDocument,
        domain: Option<String>,
        by: String,
    },
    Show {
        selector: Option<Selector>,
        json: bool,
    },
    List {
        json: bool,
    },
    /// Needs no database.
    Key,
    Acceptances {
        filter: ReceiptFilter,
        format: Format,
    },
    Status {
        json: bool,
    },
    Verify {
        public: [u8; 32],
        checkpoint: Option<(i64, String)>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Text,
    Json,
    Csv,
}

/// How `policy show` names a version.
pub(crate) struct Selector {
    typed: String,
    seq: Option<i64>,
    prefix: Option<String>,
}

impl Selector {
    fn parse(typed: &str) -> Result<Selector, String> {
        let t = typed.trim();
        let seq = (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<i64>().ok())
            .flatten();
        let lower = t.to_ascii_lowercase();
        let prefix = (lower.len() >= MIN_PREFIX
            && lower.len() <= 64
            && lower.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(lower);
        if seq.is_none() && prefix.is_none() {
            return Err(format!(
                "'{typed}' is not a version: expected a version number, a hash, or a hash \
                 prefix of at least {MIN_PREFIX} hex digits"
            ));
        }
        Ok(Selector {
            typed: t.to_owned(),
            seq,
            prefix,
        })
    }

    fn matches(&self, v: &PolicyVersion) -> bool {
        self.seq == Some(v.seq)
            || self
                .prefix
                .as_deref()
                .is_some_and(|p| v.hash.starts_with(p))
    }
}

/// The key file: `policy.key` in the configured data folder.
fn key_path(config: &Config) -> PathBuf {
    config.server.data_dir.join(KEY_FILE)
}

fn bad_input(message: &str) -> ExitCode {
    eprintln!("causeriectl: {message}");
    ExitCode::from(2)
}

/// Checks the arguments and reads the files a command needs; on bad input prints why and
/// returns exit code 2 (3 for a missing or unusable key).
pub(crate) fn prepare(cmd: PolicyCommand, config: &Config) -> Result<Prepared, ExitCode> {
    Ok(match cmd {
        PolicyCommand::Publish { file, by } => {
            let doc = PolicyDocument::read(&file)
                .map_err(|e| bad_input(&format!("{}: {e}", file.display())))?;
            let domain = match doc.domain() {
                None => None,
                Some(raw) => {
                    let d = causerie_jid::prepare_domain(raw).map_err(|e| {
                        bad_input(&format!(
                            "{}: `domain` '{raw}' is not a valid domain: {e}",
                            file.display()
                        ))
                    })?;
                    if !config.server.domains.contains(&d) {
                        return Err(bad_input(&format!(
                            "{}: `domain` '{raw}' is not a hosted domain (server.domains: {})",
                            file.display(),
                            config.server.domains.join(", ")
                        )));
                    }
                    Some(d)
                }
            };
            let by = match by {
                None => actor(),
                Some(b) if b.trim().is_empty() => return Err(bad_input("--by is empty")),
                Some(b) if b.len() > MAX_FIELD_BYTES => {
                    return Err(bad_input(&format!(
                        "--by is longer than {MAX_FIELD_BYTES} bytes"
                    )));
                }
                Some(b) if b.chars().any(char::is_control) => {
                    return Err(bad_input("--by contains a control character"));
                }
                Some(b) => b,
            };
            Prepared::Publish { doc, domain, by }
        }
        PolicyCommand::Show { version, json } => Prepared::Show {
            selector: version
                .as_deref()
                .map(Selector::parse)
                .transpose()
                .map_err(|e| bad_input(&e))?,
            json,
        },
        PolicyCommand::List { json } => Prepared::List { json },
        PolicyCommand::Key => Prepared::Key,
        PolicyCommand::Acceptances {
            user,
            since,
            json,
            csv,
        } => {
            let mut filter = ReceiptFilter {
                limit: Some(RECEIPT_PAGE),
                ..ReceiptFilter::default()
            };
            if let Some(raw) = user {
                let jid = causerie_jid::BareJid::parse(raw.trim())
                    .map_err(|e| bad_input(&format!("--user: invalid JID '{raw}': {e}")))?;
                let Some(node) = jid.node() else {
                    return Err(bad_input(&format!(
                        "--user: '{raw}' has no local part (user@domain)"
                    )));
                };
                filter.username = Some(node.to_owned());
                filter.domain = Some(jid.domain().to_owned());
            }
            if let Some(raw) = since {
                filter.since =
                    Some(parse_time(&raw).map_err(|e| bad_input(&format!("--since: {e}")))?);
            }
            let format = if json {
                Format::Json
            } else if csv {
                Format::Csv
            } else {
                Format::Text
            };
            Prepared::Acceptances { filter, format }
        }
        PolicyCommand::Status { json } => Prepared::Status { json },
        PolicyCommand::Verify { checkpoint } => {
            let checkpoint = checkpoint
                .as_deref()
                .map(parse_checkpoint)
                .transpose()
                .map_err(|e| bad_input(&e))?;
            let path = key_path(config);
            // Loading would create a key: a check must not, since a new key verifies nothing.
            match std::fs::symlink_metadata(&path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!(
                        "causeriectl: no receipt key yet ({} does not exist): the server has \
                         signed no receipt with this data folder",
                        path.display()
                    );
                    return Err(ExitCode::from(3));
                }
                Err(e) => {
                    eprintln!("causeriectl: key file {}: {e}", path.display());
                    return Err(ExitCode::from(3));
                }
            }
            let key = ServerKey::load_or_create(&path).map_err(|e| {
                eprintln!("causeriectl: {e}");
                ExitCode::from(3)
            })?;
            Prepared::Verify {
                public: key.public_key(),
                checkpoint,
            }
        }
    })
}

/// `SEQ:HASH`, as `policy verify` prints it.
fn parse_checkpoint(text: &str) -> Result<(i64, String), String> {
    parse_chain_checkpoint(text, "receipt", "policy verify")
}

/// `SEQ:HASH` of a signed chain (receipts, evidence), as its `verify` command printed it:
/// `what` names a row (`receipt`), `printer` the command.
pub(crate) fn parse_chain_checkpoint(
    text: &str,
    what: &str,
    printer: &str,
) -> Result<(i64, String), String> {
    let bad = || {
        format!(
            "--checkpoint '{text}': expected SEQ:HASH, a {what} number and its 64-digit hex \
             hash, as printed by an earlier `{printer}`"
        )
    };
    let (seq, hash) = text.trim().split_once(':').ok_or_else(bad)?;
    let seq: i64 = seq.parse().map_err(|_| bad())?;
    let hash = hash.to_ascii_lowercase();
    if seq < causerie_policy::FIRST_SEQ || !is_hash(&hash) {
        return Err(bad());
    }
    Ok((seq, hash))
}

/// `policy key`: loads the key, creating it (and the data folder) on first use.
pub(crate) fn key(config: &Config) -> ExitCode {
    let dir = &config.server.data_dir;
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("causeriectl: data folder {}: {e}", dir.display());
        return ExitCode::from(3);
    }
    let path = key_path(config);
    let existed = path.exists();
    match ServerKey::load_or_create(&path) {
        Ok(key) => {
            println!("public key: {}", key.public_key_hex());
            println!("fingerprint: {}", key.fingerprint());
            println!("key file: {}", path.display());
            if !existed {
                eprintln!("created a new receipt-signing key");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("causeriectl: {e}");
            ExitCode::from(3)
        }
    }
}

pub(crate) async fn run(storage: &Storage, config: &Config, cmd: Prepared) -> ExitCode {
    match cmd {
        Prepared::Publish { doc, domain, by } => publish(storage, &doc, domain, by).await,
        Prepared::Show { selector, json } => show(storage, config, selector, json).await,
        Prepared::List { json } => list(storage, config, json).await,
        Prepared::Key => key(config),
        Prepared::Acceptances { filter, format } => acceptances(storage, filter, format).await,
        Prepared::Status { json } => status(storage, config, json).await,
        Prepared::Verify { public, checkpoint } => verify(storage, &public, checkpoint).await,
    }
}

fn scope(domain: Option<&str>) -> &str {
    domain.unwrap_or("every domain")
}

async fn publish(
    storage: &Storage,
    doc: &PolicyDocument,
    domain: Option<String>,
    by: String,
) -> ExitCode {
    let versions = match storage.policy.versions().await {
        Ok(v) => v,
        Err(e) => return store_failure("read the policy versions", &e),
    };
    let already = |versions: &[PolicyVersion], domain: &Option<String>| {
        versions
            .iter()
            .find(|v| v.hash == doc.hash() && v.domain == *domain)
            .map(|v| v.seq)
    };
    if let Some(seq) = already(&versions, &domain) {
        eprintln!(
            "causeriectl: this file is already published as version {seq} ({})",
            doc.hash()
        );
        return ExitCode::from(1);
    }
    let new = causerie_policy::rows::new_version(doc, domain, unix_now(), &by);
    let v = match storage.policy.publish(&new).await {
        Ok(v) => v,
        Err(StoreError::AlreadyExists(_)) => {
            // Published by someone else since the check above.
            let seq = match storage.policy.versions().await {
                Ok(versions) => already(&versions, &new.domain),
                Err(_) => None,
            };
            eprintln!(
                "causeriectl: this file is already published as version {} ({})",
                seq.map_or_else(|| "?".to_owned(), |s| s.to_string()),
                doc.hash()
            );
            return ExitCode::from(1);
        }
        Err(e) => return store_failure("publish the policy", &e),
    };
    println!(
        "published version {} {} (code {}), effective {}, for {}",
        v.seq,
        v.hash,
        &v.hash[..4],
        format_utc(v.effective_at),
        scope(v.domain.as_deref())
    );
    let mut detail = format!(
        "version {} \"{}\" effective {} for {}; published by {}",
        v.seq,
        v.title,
        format_utc(v.effective_at),
        scope(v.domain.as_deref()),
        v.published_by
    );
    truncate(&mut detail, MAX_DETAIL_BYTES);
    let ev = NewAuditEvent {
        at: unix_now(),
        actor: actor(),
        action: "policy.publish".to_owned(),
        subject: v.hash.clone(),
        outcome: "ok".to_owned(),
        detail,
        remote_addr: None,
    };
    match storage.audit.append(&ev).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "causeriectl: the version was published, but recording it in the audit log \
                 failed: {e}"
            );
            ExitCode::from(3)
        }
    }
}

fn json_version(v: &PolicyVersion, current_for: Option<&[&str]>, with_text: bool) -> String {
    let categories: Vec<String> = v.categories.iter().map(|c| json_string(c)).collect();
    let mut out = format!(
        "{{\"seq\":{},\"hash\":{},\"code\":{},\"title\":{},\"effective_at\":{},\
         \"effective\":{},\"domain\":{},\"categories\":[{}],\"format\":{},\
         \"published_at\":{},\"published\":{},\"published_by\":{}",
        v.seq,
        json_string(&v.hash),
        json_string(&v.hash[..4]),
        json_string(&v.title),
        v.effective_at,
        json_string(&format_utc(v.effective_at)),
        json_opt(v.domain.as_deref()),
        categories.join(","),
        json_string(&v.format),
        v.published_at,
        json_string(&format_utc(v.published_at)),
        json_string(&v.published_by),
    );
    if let Some(domains) = current_for {
        let domains: Vec<String> = domains.iter().map(|d| json_string(d)).collect();
        out.push_str(&format!(",\"current_for\":[{}]", domains.join(",")));
    }
    if with_text {
        out.push_str(&format!(",\"text\":{}", json_string(&v.text)));
    }
    out.push('}');
    out
}

async fn show(
    storage: &Storage,
    config: &Config,
    selector: Option<Selector>,
    json: bool,
) -> ExitCode {
    let version = match selector {
        None => {
            let Some(domain) = config.server.domains.first() else {
                eprintln!("causeriectl: no hosted domain in the configuration");
                return ExitCode::from(3);
            };
            match storage.policy.current(domain, unix_now()).await {
                Ok(Some(v)) => v,
                Ok(None) => {
                    eprintln!("causeriectl: no policy version is in force for {domain}");
                    return ExitCode::from(1);
                }
                Err(e) => return store_failure("read the policy versions", &e),
            }
        }
        Some(sel) => {
            let versions = match storage.policy.versions().await {
                Ok(v) => v,
                Err(e) => return store_failure("read the policy versions", &e),
            };
            let mut found: Vec<PolicyVersion> =
                versions.into_iter().filter(|v| sel.matches(v)).collect();
            match found.len() {
                0 => {
                    eprintln!("causeriectl: no policy version '{}'", sel.typed);
                    return ExitCode::from(1);
                }
                1 => found.remove(0),
                _ => {
                    eprintln!(
                        "causeriectl: '{}' names several versions; give more of the hash:",
                        sel.typed
                    );
                    for v in &found {
                        eprintln!(
                            "  {} {} {} {}",
                            v.seq,
                            v.hash,
                            v.domain.as_deref().unwrap_or("*"),
                            one_line(&v.title)
                        );
                    }
                    return ExitCode::from(2);
                }
            }
        }
    };
    if json {
        println!("{}", json_version(&version, None, true));
    } else {
        let categories = if version.categories.is_empty() {
            "none".to_owned()
        } else {
            version
                .categories
                .iter()
                .map(|c| one_line(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!("title: {}", one_line(&version.title));
        println!(
            "version: {} {} (code {})",
            version.seq,
            version.hash,
            &version.hash[..4]
        );
        println!("effective: {}", format_utc(version.effective_at));
        println!("domain: {}", scope(version.domain.as_deref()));
        println!("categories: {categories}");
        println!("format: {}", version.format);
        println!(
            "published: {} by {}",
            format_utc(version.published_at),
            one_line(&version.published_by)
        );
        println!();
        print!("{}", version.text);
        if !version.text.ends_with('\n') {
            println!();
        }
    }
    ExitCode::SUCCESS
}

async fn list(storage: &Storage, config: &Config, json: bool) -> ExitCode {
    let versions = match storage.policy.versions().await {
        Ok(v) => v,
        Err(e) => return store_failure("read the policy versions", &e),
    };
    let now = unix_now();
    // (hosted domain, seq in force there)
    let mut in_force: Vec<(&str, i64)> = Vec::new();
    for domain in &config.server.domains {
        match storage.policy.current(domain, now).await {
            Ok(Some(v)) => in_force.push((domain, v.seq)),
            Ok(None) => {}
            Err(e) => return store_failure("read the policy versions", &e),
        }
    }
    let current_for = |v: &PolicyVersion| -> Vec<&str> {
        in_force
            .iter()
            .filter(|(_, seq)| *seq == v.seq)
            .map(|(d, _)| *d)
            .collect()
    };
    if json {
        let items: Vec<String> = versions
            .iter()
            .map(|v| json_version(v, Some(&current_for(v)), false))
            .collect();
        println!("[{}]", items.join(","));
    } else {
        for v in &versions {
            let mut line = format!(
                "{} {} {} {} {}",
                v.seq,
                &v.hash[..12],
                format_utc(v.effective_at),
                v.domain.as_deref().unwrap_or("*"),
                one_line(&v.title)
            );
            let domains = current_for(v);
            if !domains.is_empty() {
                line.push_str(" *current*");
                // A version for every domain that a domain's own version overrides somewhere.
                if v.domain.is_none() && domains.len() < config.server.domains.len() {
                    line.push_str(&format!(" ({})", domains.join(", ")));
                }
            }
            println!("{line}");
        }
    }
    ExitCode::SUCCESS
}

/// Every receipt matching `filter`, a page at a time, handed to `each` in seq order.
async fn walk_receipts(
    storage: &Storage,
    mut filter: ReceiptFilter,
    mut each: impl FnMut(StoredReceipt),
) -> Result<(), StoreError> {
    filter.limit = Some(RECEIPT_PAGE);
    loop {
        let page = storage.policy.receipts(&filter).await?;
        let full = page.len() as u64 == RECEIPT_PAGE;
        let last = page.last().map(|r| r.seq);
        for r in page {
            each(r);
        }
        match last {
            Some(seq) if full => filter.after_seq = Some(seq),
            _ => return Ok(()),
        }
    }
}

fn receipt_jid(r: &StoredReceipt) -> String {
    if r.resource.is_empty() {
        format!("{}@{}", r.username, r.domain)
    } else {
        format!("{}@{}/{}", r.username, r.domain, r.resource)
    }
}

/// One CSV field (RFC 4180 §2): quoted, with quotes doubled, when it holds a comma, a quote or
/// a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn acceptances(storage: &Storage, filter: ReceiptFilter, format: Format) -> ExitCode {
    let mut count = 0u64;
    match format {
        Format::Json => print!("["),
        Format::Csv => print!("seq,time,jid,policy_hash,method,remote_addr,client\r\n"),
        Format::Text => {}
    }
    let walked = walk_receipts(storage, filter, |r| {
        match format {
            Format::Text => println!(
                "{} {} {} {} {} {} {}",
                r.seq,
                format_utc(r.accepted_at),
                one_line(&receipt_jid(&r)),
                r.policy_hash,
                one_line(&r.method),
                r.remote_addr
                    .as_deref()
                    .map_or_else(|| "-".into(), one_line),
                r.client.as_deref().map_or_else(|| "-".into(), one_line),
            ),
            Format::Csv => print!(
                "{},{},{},{},{},{},{}\r\n",
                r.seq,
                format_utc(r.accepted_at),
                csv_field(&receipt_jid(&r)),
                r.policy_hash,
                csv_field(&r.method),
                csv_field(r.remote_addr.as_deref().unwrap_or("")),
                csv_field(r.client.as_deref().unwrap_or("")),
            ),
            Format::Json => print!(
                "{}{{\"seq\":{},\"accepted_at\":{},\"time\":{},\"jid\":{},\"username\":{},\
                 \"domain\":{},\"resource\":{},\"policy_hash\":{},\"method\":{},\
                 \"remote_addr\":{},\"client\":{}}}",
                if count == 0 { "" } else { "," },
                r.seq,
                r.accepted_at,
                json_string(&format_utc(r.accepted_at)),
                json_string(&receipt_jid(&r)),
                json_string(&r.username),
                json_string(&r.domain),
                json_string(&r.resource),
                json_string(&r.policy_hash),
                json_string(&r.method),
                json_opt(r.remote_addr.as_deref()),
                json_opt(r.client.as_deref()),
            ),
        }
        count += 1;
    })
    .await;
    if format == Format::Json {
        println!("]");
    }
    match walked {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => store_failure("read the receipts", &e),
    }
}

/// What `policy status` found for one hosted domain.
struct DomainStatus<'a> {
    domain: &'a str,
    version: Option<PolicyVersion>,
    accounts: usize,
    pending: Vec<String>,
}

async fn status(storage: &Storage, config: &Config, json: bool) -> ExitCode {
    let now = unix_now();
    let mut report = Vec::new();
    for domain in &config.server.domains {
        let version = match storage.policy.current(domain, now).await {
            Ok(v) => v,
            Err(e) => return store_failure("read the policy versions", &e),
        };
        let users = match storage.users.list_users(Some(domain)).await {
            Ok(u) => u,
            Err(e) => return store_failure("read the accounts", &e),
        };
        let mut pending = Vec::new();
        if let Some(v) = &version {
            for u in &users {
                match storage
                    .policy
                    .acceptance(&u.username, &u.domain, &v.hash)
                    .await
                {
                    Ok(Some(_)) => {}
                    Ok(None) => pending.push(format!("{}@{}", u.username, u.domain)),
                    Err(e) => return store_failure("read the receipts", &e),
                }
            }
        }
        report.push(DomainStatus {
            domain,
            version,
            accounts: users.len(),
            pending,
        });
    }
    if json {
        let items: Vec<String> = report
            .iter()
            .map(|s| {
                let pending: Vec<String> = s.pending.iter().map(|j| json_string(j)).collect();
                format!(
                    "{{\"domain\":{},\"version\":{},\"accounts\":{},\"not_accepted\":[{}]}}",
                    json_string(s.domain),
                    s.version
                        .as_ref()
                        .map_or_else(|| "null".to_owned(), |v| json_version(v, None, false)),
                    s.accounts,
                    pending.join(",")
                )
            })
            .collect();
        println!("[{}]", items.join(","));
    } else {
        for s in &report {
            match &s.version {
                None => println!("{}: no policy version in force", s.domain),
                Some(v) => {
                    let mut line = format!(
                        "{}: {} of {} accounts have not accepted version {} {} (code {})",
                        s.domain,
                        s.pending.len(),
                        s.accounts,
                        v.seq,
                        &v.hash[..12],
                        &v.hash[..4]
                    );
                    if !s.pending.is_empty() {
                        line.push_str(": ");
                        line.push_str(&s.pending.join(", "));
                    }
                    println!("{line}");
                }
            }
        }
    }
    ExitCode::SUCCESS
}

async fn verify(
    storage: &Storage,
    public: &[u8; 32],
    checkpoint: Option<(i64, String)>,
) -> ExitCode {
    let mut receipts = Vec::new();
    if let Err(e) = walk_receipts(storage, ReceiptFilter::default(), |r| {
        receipts.push(SignedReceipt::from(r));
    })
    .await
    {
        return store_failure("read the receipts", &e);
    }
    let ChainReport {
        rows,
        problems,
        last,
    } = causerie_policy::verify_chain(&receipts, public, checkpoint);
    if problems.is_empty() {
        println!("{rows} receipts, chain intact, signatures valid");
        if let Some((seq, hash)) = last {
            println!("last receipt: {seq}:{hash} (keep it elsewhere; check with --checkpoint)");
        }
        return ExitCode::SUCCESS;
    }
    // Several problems can share a row; count rows once.
    let mut rows_hit = BTreeSet::new();
    for p in &problems {
        println!("{p}");
        if let causerie_policy::ChainProblem::Edited { position, .. }
        | causerie_policy::ChainProblem::BadSignature { position, .. }
        | causerie_policy::ChainProblem::Broken { position, .. }
        | causerie_policy::ChainProblem::SeqGap { position, .. }
        | causerie_policy::ChainProblem::CheckpointMismatch { position, .. } = p
        {
            rows_hit.insert(*position);
        }
    }
    eprintln!(
        "causeriectl: {} problem(s) in {rows} receipts ({} row(s) affected): the receipts were \
         changed after they were signed",
        problems.len(),
        rows_hit.len()
    );
    ExitCode::from(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(""), "");
    }

    #[test]
    fn checkpoints_are_seq_colon_hash() {
        let hash = "ab".repeat(32);
        assert_eq!(
            parse_checkpoint(&format!("7:{hash}")),
            Ok((7, hash.clone()))
        );
        assert_eq!(
            parse_checkpoint(&format!("7:{}", hash.to_uppercase())),
            Ok((7, hash.clone()))
        );
        for bad in [
            String::new(),
            "7".into(),
            format!("0:{hash}"),
            format!("x:{hash}"),
            format!("7:{}", &hash[..63]),
            format!("7:{hash}:1"),
        ] {
            assert!(parse_checkpoint(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn selectors_take_numbers_and_prefixes() {
        let v = |seq: i64, hash: &str| PolicyVersion {
            seq,
            hash: hash.to_owned(),
            title: "t".into(),
            text: "x".into(),
            format: "text".into(),
            effective_at: 0,
            categories: vec![],
            domain: None,
            published_at: 0,
            published_by: "p".into(),
        };
        let a = v(12, &format!("abcd{}", "0".repeat(60)));
        let b = v(3, &format!("0012{}", "f".repeat(60)));
        let sel = Selector::parse("12").expect("number");
        assert!(sel.matches(&a) && !sel.matches(&b));
        let sel = Selector::parse("ABCD").expect("prefix");
        assert!(sel.matches(&a) && !sel.matches(&b));
        // Four digits may be a number and a prefix: both are candidates.
        let sel = Selector::parse("0012").expect("both");
        assert!(sel.matches(&b));
        assert!(Selector::parse("abc").is_err());
        assert!(Selector::parse("xyz12").is_err());
        assert!(Selector::parse("").is_err());
        assert!(Selector::parse(&"a".repeat(65)).is_err());
    }
}
