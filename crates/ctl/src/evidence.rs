//! `causeriectl evidence …`: the compliance evidence chain. Listing its records, reading and
//! exporting them (with the officer's secret key for sealed payloads), checking the chain and
//! its signatures, retention purges and legal holds, and the officer's key pair.
//!
//! Every read of a record's content and every change is written to the audit log before the
//! content is shown (a read that cannot be recorded is refused), so the log says who read
//! which record when.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use causerie_config::Config;
use causerie_policy::compliance::evidence::{EVIDENCE_TAG, SignedEvidence, payload_intact};
use causerie_policy::compliance::seal::{self, OfficerKey, SealError};
use causerie_policy::{ChainProblem, ChainReport, ServerKey};
use causerie_storage::audit::{MAX_DETAIL_BYTES, MAX_FIELD_BYTES};
use causerie_storage::{EvidenceFilter, NewAuditEvent, Storage, StoreError, StoredEvidence};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::federation::{actor, one_line, store_failure, truncate};
use crate::time::{format_utc, parse_time, unix_now};

/// Records read per query while a command walks the chain (each may carry megabytes).
const PAGE: u64 = 100;

/// Name of the server's signing key in the data folder, as the server and `policy key` use it.
const KEY_FILE: &str = "policy.key";

/// The `format` of an export document.
const EXPORT_FORMAT: &str = "causerie-evidence-export-v1";

#[derive(Subcommand, Debug)]
pub(crate) enum EvidenceCommand {
    /// Create the compliance officer's key pair: the secret key goes to a new file (readable by
    /// its owner only; an existing file is never replaced, exit code 1) and the public key is
    /// printed, to be set as `compliance.seal_key`. Keep the secret file away from the server:
    /// whoever holds it reads sealed evidence. Needs no database.
    Keygen {
        /// The secret key file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// List evidence records, oldest first, without their content: one `SEQ TIME RULE
    /// USER@DOMAIN[/RESOURCE] DIRECTION PEER ACTIONS FLAGS` line each, where FLAGS lists
    /// `sealed`, `purged`, `hold` and `review=STATE` ("-" for none; "-" for no peer).
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// One JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Show one record and its payload (the stanza as received, its context, what matched),
    /// and whether the payload matches the hash the record signed and the record its hash and
    /// signature. A sealed payload needs the officer's secret key file (exit code 2 without
    /// it). Recorded in the audit log before anything is shown.
    Show {
        /// The record's number.
        seq: i64,
        /// The compliance officer's secret key file, for a sealed payload.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// One JSON object instead (the record as `export` writes it).
        #[arg(long)]
        json: bool,
    },
    /// Write the selected records to a new file (readable by its owner only), as one JSON
    /// document with each record's fields, payload, hash and signature and the server's public
    /// key, so that someone else can check them. With --key, sealed payloads are also given
    /// opened. Recorded in the audit log (the file is removed when that fails).
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// The compliance officer's secret key file, to open sealed payloads.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// The file to create.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check every record: its hash against its fields, its signature against the server's
    /// key (DATA_DIR/policy.key), the hash chain that links it to the one before, and its
    /// payload (unless purged) against the payload hash it signed.
    ///
    /// Exit code 0 when all is well; 1 with one line per problem (row position and seq) when
    /// a record was edited, removed, inserted or reordered; 3 when there is no key yet. Keep
    /// the `SEQ:HASH` printed at the end somewhere else and pass it with --checkpoint next
    /// time: that shows records removed from the end.
    Verify {
        /// A record known to have been stored earlier, as printed by a previous check.
        #[arg(long, value_name = "SEQ:HASH")]
        checkpoint: Option<String>,
    },
    /// Empty the payloads of records created before TIME, except those on legal hold or
    /// pending review; the records, their hashes and signatures stay, so the chain still
    /// verifies. TIME may not be in the future. Recorded in the audit log.
    Purge {
        /// RFC 3339 (2025-05-01T12:00:00Z), a date (2025-05-01, midnight UTC) or Unix seconds.
        #[arg(long, value_name = "TIME")]
        before: String,
    },
    /// Put a record on legal hold: no purge empties it until the hold is released. Recorded
    /// in the audit log.
    Hold {
        seq: i64,
        /// Why (a case or ticket number), kept in the audit log.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Release a record's legal hold. Recorded in the audit log.
    ReleaseHold {
        seq: i64,
        /// Why, kept in the audit log.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
}

/// Which records `list` and `export` take.
#[derive(Args, Debug)]
pub(crate) struct FilterArgs {
    /// Only the records of this account (a bare JID).
    #[arg(long, value_name = "JID")]
    user: Option<String>,
    /// Only the records of this rule.
    #[arg(long, value_name = "ID")]
    rule: Option<String>,
    /// Only records created at or after this time: RFC 3339, a date or Unix seconds.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only records created at or before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

/// What a command checked before the database was opened.
pub(crate) enum Prepared {
    /// Needs no database.
    Keygen {
        out: PathBuf,
    },
    List {
        filter: EvidenceFilter,
        json: bool,
    },
    Show {
        seq: i64,
        key: Option<OfficerKey>,
        public: [u8; 32],
        json: bool,
    },
    Export {
        filter: EvidenceFilter,
        key: Option<OfficerKey>,
        public: [u8; 32],
        out: PathBuf,
    },
    Verify {
        public: [u8; 32],
        checkpoint: Option<(i64, String)>,
    },
    Purge {
        before: i64,
    },
    Hold {
        seq: i64,
        hold: bool,
        note: Option<String>,
    },
}

pub(crate) fn bad_input(message: &str) -> ExitCode {
    eprintln!("causeriectl: {message}");
    ExitCode::from(2)
}

/// Checks the arguments and reads the key files a command needs; on bad input prints why and
/// returns exit code 2 (3 for a missing or unusable server key).
pub(crate) fn prepare(cmd: EvidenceCommand, config: &Config) -> Result<Prepared, ExitCode> {
    Ok(match cmd {
        EvidenceCommand::Keygen { out } => Prepared::Keygen { out },
        EvidenceCommand::List { filter, json } => Prepared::List {
            filter: filter_of(filter)?,
            json,
        },
        EvidenceCommand::Show { seq, key, json } => Prepared::Show {
            seq: record_number(seq)?,
            key: key.as_deref().map(officer_key).transpose()?,
            public: server_public(config)?,
            json,
        },
        EvidenceCommand::Export { filter, key, out } => {
            let filter = filter_of(filter)?;
            let key = key.as_deref().map(officer_key).transpose()?;
            if out.exists() {
                eprintln!(
                    "causeriectl: {} already exists; it is not replaced",
                    out.display()
                );
                return Err(ExitCode::from(1));
            }
            Prepared::Export {
                filter,
                key,
                public: server_public(config)?,
                out,
            }
        }
        EvidenceCommand::Verify { checkpoint } => Prepared::Verify {
            checkpoint: checkpoint
                .as_deref()
                .map(parse_checkpoint)
                .transpose()
                .map_err(|e| bad_input(&e))?,
            public: server_public(config)?,
        },
        EvidenceCommand::Purge { before } => {
            let before = parse_time(&before).map_err(|e| bad_input(&format!("--before: {e}")))?;
            if before > unix_now() {
                return Err(bad_input(&format!(
                    "--before {} is in the future: a purge reaches only records already made",
                    format_utc(before)
                )));
            }
            Prepared::Purge { before }
        }
        EvidenceCommand::Hold { seq, note } => Prepared::Hold {
            seq: record_number(seq)?,
            hold: true,
            note: note_of(note)?,
        },
        EvidenceCommand::ReleaseHold { seq, note } => Prepared::Hold {
            seq: record_number(seq)?,
            hold: false,
            note: note_of(note)?,
        },
    })
}

pub(crate) fn record_number(seq: i64) -> Result<i64, ExitCode> {
    if seq < causerie_policy::FIRST_SEQ {
        return Err(bad_input(&format!(
            "{seq} is not a record number (they start at {})",
            causerie_policy::FIRST_SEQ
        )));
    }
    Ok(seq)
}

fn note_of(note: Option<String>) -> Result<Option<String>, ExitCode> {
    match note {
        Some(n) if n.len() > MAX_DETAIL_BYTES / 2 => Err(bad_input(&format!(
            "the note is longer than {} bytes",
            MAX_DETAIL_BYTES / 2
        ))),
        Some(n) if n.contains('\0') => Err(bad_input("the note contains U+0000")),
        Some(n) if n.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

pub(crate) fn filter_of(args: FilterArgs) -> Result<EvidenceFilter, ExitCode> {
    let mut filter = EvidenceFilter::default();
    if let Some(raw) = args.user {
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
    if let Some(rule) = args.rule {
        if rule.trim().is_empty() {
            return Err(bad_input("--rule is empty"));
        }
        filter.rule_id = Some(rule);
    }
    if let Some(raw) = args.since {
        filter.since = Some(parse_time(&raw).map_err(|e| bad_input(&format!("--since: {e}")))?);
    }
    if let Some(raw) = args.until {
        filter.until = Some(parse_time(&raw).map_err(|e| bad_input(&format!("--until: {e}")))?);
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return Err(bad_input("--since is after --until"));
    }
    Ok(filter)
}

fn officer_key(path: &Path) -> Result<OfficerKey, ExitCode> {
    OfficerKey::read(path).map_err(|e| bad_input(&format!("--key: {e}")))
}

/// The server's public key, from DATA_DIR/policy.key; never creates the file, since a new key
/// verifies nothing.
fn server_public(config: &Config) -> Result<[u8; 32], ExitCode> {
    let path = config.server.data_dir.join(KEY_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "causeriectl: no server key ({} does not exist): the server has signed no \
                 evidence with this data folder",
                path.display()
            );
            return Err(ExitCode::from(3));
        }
        Err(e) => {
            eprintln!("causeriectl: key file {}: {e}", path.display());
            return Err(ExitCode::from(3));
        }
    }
    ServerKey::load_or_create(&path)
        .map(|k| k.public_key())
        .map_err(|e| {
            eprintln!("causeriectl: {e}");
            ExitCode::from(3)
        })
}

/// `SEQ:HASH`, as `evidence verify` prints it.
fn parse_checkpoint(text: &str) -> Result<(i64, String), String> {
    crate::policy::parse_chain_checkpoint(text, "record", "evidence verify")
}

/// `evidence keygen`.
pub(crate) fn keygen(out: &Path) -> ExitCode {
    let key = match OfficerKey::generate() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("causeriectl: {e}");
            return ExitCode::from(3);
        }
    };
    match key.write_new(out) {
        Ok(()) => {
            let public = key.public();
            println!("{public}");
            eprintln!(
                "secret key written to {} (fingerprint of the public key: {}).\nSet \
                 compliance.seal_key = \"{public}\" in the server's configuration, and keep \
                 the secret file where only the compliance officer can read it.",
                out.display(),
                public.fingerprint()
            );
            ExitCode::SUCCESS
        }
        Err(e @ SealError::Exists { .. }) => {
            eprintln!("causeriectl: {e}");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("causeriectl: {e}");
            ExitCode::from(2)
        }
    }
}

pub(crate) async fn run(storage: &Storage, cmd: Prepared) -> ExitCode {
    match cmd {
        Prepared::Keygen { out } => keygen(&out),
        Prepared::List { filter, json } => list(storage, filter, json).await,
        Prepared::Show {
            seq,
            key,
            public,
            json,
        } => show(storage, seq, key.as_ref(), &public, json).await,
        Prepared::Export {
            filter,
            key,
            public,
            out,
        } => export(storage, filter, key.as_ref(), &public, &out).await,
        Prepared::Verify { public, checkpoint } => verify(storage, &public, checkpoint).await,
        Prepared::Purge { before } => purge(storage, before).await,
        Prepared::Hold { seq, hold, note } => set_hold(storage, seq, hold, note).await,
    }
}

/// Every record matching `filter`, a page at a time, handed to `each` in seq order; `each`
/// may stop the walk with an error.
pub(crate) async fn walk<E: From<StoreError>>(
    storage: &Storage,
    mut filter: EvidenceFilter,
    mut each: impl FnMut(StoredEvidence) -> Result<(), E>,
) -> Result<(), E> {
    filter.limit = Some(PAGE);
    loop {
        let page = storage.evidence.list(&filter).await?;
        let full = page.len() as u64 == PAGE;
        let last = page.last().map(|r| r.seq);
        for r in page {
            each(r)?;
        }
        match last {
            Some(seq) if full => filter.after_seq = Some(seq),
            _ => return Ok(()),
        }
    }
}

pub(crate) fn jid_of(r: &StoredEvidence) -> String {
    if r.resource.is_empty() {
        format!("{}@{}", r.username, r.domain)
    } else {
        format!("{}@{}/{}", r.username, r.domain, r.resource)
    }
}

fn flags(r: &StoredEvidence) -> String {
    let mut out = Vec::new();
    if r.sealed {
        out.push("sealed".to_owned());
    }
    if r.payload.is_none() {
        out.push("purged".to_owned());
    }
    if r.legal_hold {
        out.push("hold".to_owned());
    }
    if let Some(review) = &r.review {
        out.push(format!("review={}", one_line(review)));
    }
    if out.is_empty() {
        "-".to_owned()
    } else {
        out.join(",")
    }
}

/// The record's fields and state, without its payload: a JSON object.
fn metadata(r: &StoredEvidence) -> Value {
    json!({
        "seq": r.seq,
        "created_at": r.created_at,
        "time": format_utc(r.created_at),
        "rule_id": r.rule_id,
        "category": r.category,
        "actions": r.actions,
        "username": r.username,
        "domain": r.domain,
        "resource": r.resource,
        "jid": jid_of(r),
        "peer": r.peer,
        "direction": r.direction,
        "remote_addr": r.remote_addr,
        "client": r.client,
        "sealed": r.sealed,
        "payload_hash": r.payload_hash,
        "prev_hash": r.prev_hash,
        "hash": r.hash,
        "signature": r.signature,
        "purged": r.payload.is_none(),
        "purged_at": r.purged_at,
        "legal_hold": r.legal_hold,
        "review": r.review,
        "reviewed_by": r.reviewed_by,
        "reviewed_at": r.reviewed_at,
    })
}

async fn list(storage: &Storage, filter: EvidenceFilter, json: bool) -> ExitCode {
    let mut items = Vec::new();
    let walked = walk(storage, filter, |r| {
        if json {
            items.push(metadata(&r));
        } else {
            println!(
                "{} {} {} {} {} {} {} {}",
                r.seq,
                format_utc(r.created_at),
                one_line(&r.rule_id),
                one_line(&jid_of(&r)),
                r.direction,
                if r.peer.is_empty() {
                    "-".to_owned()
                } else {
                    one_line(&r.peer)
                },
                one_line(&r.actions),
                flags(&r)
            );
        }
        Ok::<(), StoreError>(())
    })
    .await;
    if let Err(e) = walked {
        return store_failure("read the evidence", &e);
    }
    if json {
        println!("{}", Value::Array(items));
    }
    ExitCode::SUCCESS
}

/// Writes one audit record by `causeriectl:$USER`; false (after saying so) when it failed.
pub(crate) async fn audit(storage: &Storage, action: &str, subject: &str, detail: String) -> bool {
    let mut subject = subject.to_owned();
    truncate(&mut subject, MAX_FIELD_BYTES);
    let mut detail = detail;
    truncate(&mut detail, MAX_DETAIL_BYTES);
    let ev = NewAuditEvent {
        at: unix_now(),
        actor: actor(),
        action: action.to_owned(),
        subject,
        outcome: "ok".to_owned(),
        detail,
        remote_addr: None,
    };
    match storage.audit.append(&ev).await {
        Ok(_) => true,
        Err(e) => {
            eprintln!("causeriectl: cannot write the audit record ({action}): {e}");
            false
        }
    }
}

/// Whether the record's hash matches its fields and its signature is the server key's.
fn record_checks(r: &StoredEvidence, public: &[u8; 32]) -> (bool, bool) {
    let report = causerie_policy::verify_links(&[SignedEvidence::from(r)], public, None);
    let edited = report
        .problems
        .iter()
        .any(|p| matches!(p, ChainProblem::Edited { .. }));
    let badly_signed = report
        .problems
        .iter()
        .any(|p| matches!(p, ChainProblem::BadSignature { .. }));
    (!edited, !badly_signed)
}

/// The payload as a person reads it: the plain text, or the sealed text opened.
enum Content {
    Purged,
    /// Sealed, and no key was given.
    Sealed,
    Plain(String),
    Opened(String),
}

fn content(r: &StoredEvidence, key: Option<&OfficerKey>) -> Result<Content, SealError> {
    let Some(payload) = &r.payload else {
        return Ok(Content::Purged);
    };
    if !r.sealed {
        return Ok(Content::Plain(payload.clone()));
    }
    let Some(key) = key else {
        return Ok(Content::Sealed);
    };
    let bytes = seal::open(payload, key)?;
    Ok(Content::Opened(String::from_utf8(bytes).map_err(|_| {
        SealError::Malformed("the opened payload is not UTF-8".to_owned())
    })?))
}

/// The record as `export` writes it: its fields, the payload as stored, whether it matches its
/// hash, and the opened payload when it was sealed and opened.
fn export_record(r: &StoredEvidence, opened: Option<&str>, open_error: Option<&str>) -> Value {
    let mut record = metadata(r);
    if let Value::Object(map) = &mut record {
        map.insert("payload".to_owned(), json!(r.payload));
        map.insert("payload_intact".to_owned(), json!(payload_intact(r)));
        if r.sealed {
            map.insert("payload_opened".to_owned(), json!(opened));
            if let Some(why) = open_error {
                map.insert("open_error".to_owned(), json!(why));
            }
        }
    }
    record
}

async fn show(
    storage: &Storage,
    seq: i64,
    key: Option<&OfficerKey>,
    public: &[u8; 32],
    json: bool,
) -> ExitCode {
    let r = match storage.evidence.get(seq).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("causeriectl: no evidence record {seq}");
            return ExitCode::from(1);
        }
        Err(e) => return store_failure("read the evidence", &e),
    };
    let intact = payload_intact(&r);
    let content = match content(&r, key) {
        Ok(Content::Sealed) if !json => {
            eprintln!(
                "causeriectl: the payload of record {seq} is sealed to the compliance officer's \
                 key; give the officer's secret key file with --key FILE"
            );
            return ExitCode::from(2);
        }
        Ok(c) => c,
        Err(e) => {
            eprintln!("causeriectl: record {seq}: {e}");
            return ExitCode::from(2);
        }
    };
    let how = match (&content, key) {
        (Content::Purged, _) => "payload purged".to_owned(),
        (Content::Sealed, _) => "sealed payload not opened".to_owned(),
        (Content::Plain(_), _) => "payload shown".to_owned(),
        (Content::Opened(_), Some(k)) => format!(
            "sealed payload opened with the officer key {}",
            k.public().fingerprint()
        ),
        (Content::Opened(_), None) => "sealed payload opened".to_owned(),
    };
    // Recorded before anything is shown: a read that cannot be recorded does not happen.
    let detail = format!("record {seq} (rule {}, {}): {how}", r.rule_id, jid_of(&r));
    if !audit(
        storage,
        "compliance.evidence.read",
        &seq.to_string(),
        detail,
    )
    .await
    {
        return ExitCode::from(3);
    }
    if json {
        let opened = match &content {
            Content::Opened(text) => Some(text.as_str()),
            _ => None,
        };
        println!("{}", export_record(&r, opened, None));
        return ExitCode::SUCCESS;
    }
    let (hash_ok, signature_ok) = record_checks(&r, public);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!("record: {}", r.seq);
    println!("time: {}", format_utc(r.created_at));
    println!("rule: {} ({})", one_line(&r.rule_id), one_line(&r.category));
    println!("actions: {}", one_line(&r.actions));
    println!("user: {}", one_line(&jid_of(&r)));
    println!("direction: {}", r.direction);
    println!(
        "peer: {}",
        if r.peer.is_empty() {
            "-".to_owned()
        } else {
            one_line(&r.peer)
        }
    );
    println!(
        "remote address: {}",
        r.remote_addr
            .as_deref()
            .map_or_else(|| "-".into(), one_line)
    );
    println!(
        "client: {}",
        r.client.as_deref().map_or_else(|| "-".into(), one_line)
    );
    println!("sealed: {}", yes_no(r.sealed));
    println!("legal hold: {}", yes_no(r.legal_hold));
    match &r.review {
        None => println!("review: -"),
        Some(state) => {
            let by = match (&r.reviewed_by, r.reviewed_at) {
                (Some(by), Some(at)) => format!(" by {} at {}", one_line(by), format_utc(at)),
                _ => String::new(),
            };
            println!("review: {}{by}", one_line(state));
        }
    }
    println!(
        "purged: {}",
        match (r.payload.is_none(), r.purged_at) {
            (false, _) => "no".to_owned(),
            (true, Some(at)) => format!("yes, at {}", format_utc(at)),
            (true, None) => "yes".to_owned(),
        }
    );
    println!(
        "payload hash: {} ({})",
        r.payload_hash,
        match intact {
            None => "no payload to check",
            Some(true) => "the payload matches it",
            Some(false) => "THE PAYLOAD DOES NOT MATCH IT: changed after signing",
        }
    );
    println!(
        "hash: {} ({})",
        r.hash,
        if hash_ok {
            "matches the record"
        } else {
            "DOES NOT MATCH THE RECORD: changed after signing"
        }
    );
    println!(
        "signature: {}",
        if signature_ok {
            "valid, by the server's key"
        } else {
            "NOT THE SERVER KEY'S"
        }
    );
    println!("previous hash: {}", r.prev_hash);
    match &content {
        Content::Purged | Content::Sealed => {}
        Content::Plain(text) | Content::Opened(text) => {
            println!();
            print_payload(text);
        }
    }
    if intact == Some(false) || !hash_ok || !signature_ok {
        eprintln!("causeriectl: record {seq} was changed after the server signed it");
    }
    ExitCode::SUCCESS
}

/// The payload, pretty-printed when it is JSON, and then its stanza exactly as received.
fn print_payload(text: &str) {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => {
            println!(
                "payload:\n{}",
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| text.to_owned())
            );
            if let Some(stanza) = v.get("stanza").and_then(Value::as_str) {
                println!("\nstanza as received:\n{stanza}");
            }
        }
        Err(_) => println!("payload:\n{text}"),
    }
}

/// Seqs as ranges (`1-5,9,12-13`), in as many subjects of at most `max` bytes as needed.
fn seq_ranges(seqs: &[i64], max: usize) -> Vec<String> {
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for &s in seqs {
        match ranges.last_mut() {
            Some((_, end)) if s == *end + 1 => *end = s,
            _ => ranges.push((s, s)),
        }
    }
    let mut out: Vec<String> = Vec::new();
    for (a, b) in ranges {
        let part = if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        };
        match out.last_mut() {
            Some(last) if last.len() + 1 + part.len() <= max => {
                last.push(',');
                last.push_str(&part);
            }
            _ => out.push(part),
        }
    }
    out
}

/// Why an export stopped.
enum ExportError {
    Store(StoreError),
    Write(std::io::Error),
}

impl From<StoreError> for ExportError {
    fn from(e: StoreError) -> Self {
        ExportError::Store(e)
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        ExportError::Write(e)
    }
}

async fn export(
    storage: &Storage,
    filter: EvidenceFilter,
    key: Option<&OfficerKey>,
    public: &[u8; 32],
    out: &Path,
) -> ExitCode {
    let file = match crate::create_private(out) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "causeriectl: {} already exists; it is not replaced",
                out.display()
            );
            return ExitCode::from(1);
        }
        Err(e) => return bad_input(&format!("{}: {e}", out.display())),
    };
    let mut w = BufWriter::new(file);
    let exported_at = unix_now();
    let header = json!({
        "format": EXPORT_FORMAT,
        "exported_at": exported_at,
        "exported": format_utc(exported_at),
        "exported_by": actor(),
        "server_public_key": hex(public),
        "server_key_fingerprint": causerie_policy::fingerprint(public),
        "filter": {
            "username": filter.username,
            "domain": filter.domain,
            "rule_id": filter.rule_id,
            "since": filter.since,
            "until": filter.until,
        },
        "officer_key": key.map(|k| k.public().to_string()),
        "how_to_verify": format!(
            "For each record: payload_hash is the SHA-256 (lowercase hex) of the payload text as \
             stored (a sealed payload is checked as sealed); hash is the SHA-256 of the canonical \
             bytes of the fields: the string {EVIDENCE_TAG}, seq and created_at (8-byte \
             big-endian signed), the strings rule_id, category, actions, username, domain, \
             resource, peer, direction, the optional strings remote_addr and client, one byte \
             sealed (0 or 1), the strings payload_hash and prev_hash, where a string is its \
             8-byte big-endian length and its UTF-8 bytes and an optional string a byte 0 \
             (absent) or 1 and the string; signature is the base64 Ed25519 signature (RFC \
             8032) by server_public_key of the 32 hash bytes; prev_hash is the previous \
             record's hash, 64 zeros for record 1."
        ),
    });
    let mut seqs = Vec::new();
    let mut unopened = 0usize;
    let written: Result<(), ExportError> = async {
        let text = header.to_string();
        // The header object, left open for the records.
        w.write_all(text.strip_suffix('}').unwrap_or(&text).as_bytes())?;
        w.write_all(b",\"records\":[\n")?;
        walk(storage, filter, |r| {
            let (opened, error) = match content(&r, key) {
                Ok(Content::Opened(t)) => (Some(t), None),
                Ok(_) => (None, None),
                Err(e) => {
                    unopened += 1;
                    (None, Some(e.to_string()))
                }
            };
            if !seqs.is_empty() {
                w.write_all(b",\n")?;
            }
            let record = export_record(&r, opened.as_deref(), error.as_deref());
            w.write_all(record.to_string().as_bytes())?;
            seqs.push(r.seq);
            Ok::<(), ExportError>(())
        })
        .await?;
        w.write_all(b"\n]}\n")?;
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    }
    .await;
    drop(w);
    if let Err(e) = written {
        let _ = std::fs::remove_file(out);
        return match e {
            ExportError::Store(e) => store_failure("read the evidence", &e),
            ExportError::Write(e) => {
                eprintln!("causeriectl: {}: {e}", out.display());
                ExitCode::from(3)
            }
        };
    }
    let opened = if key.is_some() {
        "sealed payloads opened"
    } else {
        "sealed payloads left sealed"
    };
    let subjects = seq_ranges(&seqs, MAX_FIELD_BYTES);
    let parts = subjects.len();
    for (i, subject) in subjects.iter().enumerate() {
        let detail = format!(
            "exported {} record(s) to {} ({opened}){}",
            seqs.len(),
            out.display(),
            if parts > 1 {
                format!("; part {} of {parts} of the list of records", i + 1)
            } else {
                String::new()
            }
        );
        if !audit(storage, "compliance.evidence.export", subject, detail).await {
            let _ = std::fs::remove_file(out);
            eprintln!("causeriectl: {} removed", out.display());
            return ExitCode::from(3);
        }
    }
    if seqs.is_empty()
        && !audit(
            storage,
            "compliance.evidence.export",
            "",
            format!("exported no record to {}", out.display()),
        )
        .await
    {
        let _ = std::fs::remove_file(out);
        return ExitCode::from(3);
    }
    println!("exported {} record(s) to {}", seqs.len(), out.display());
    if unopened > 0 {
        eprintln!(
            "causeriectl: {unopened} sealed payload(s) did not open with this key (sealed to \
             another key, or changed); they are exported sealed, with open_error"
        );
    }
    ExitCode::SUCCESS
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A payload that no longer matches the hash its record signed.
struct PayloadProblem {
    position: usize,
    seq: i64,
}

async fn verify(
    storage: &Storage,
    public: &[u8; 32],
    checkpoint: Option<(i64, String)>,
) -> ExitCode {
    let mut chain = Vec::new();
    let mut payload_problems = Vec::new();
    let (mut checked, mut purged) = (0usize, 0usize);
    let bar = crate::progress::Progress::new("records read", None);
    let walked = walk(storage, EvidenceFilter::default(), |r| {
        bar.inc();
        match payload_intact(&r) {
            None => purged += 1,
            Some(true) => checked += 1,
            Some(false) => payload_problems.push(PayloadProblem {
                position: chain.len() + 1,
                seq: r.seq,
            }),
        }
        chain.push(SignedEvidence::from(&r));
        Ok::<(), StoreError>(())
    })
    .await;
    bar.finish();
    if let Err(e) = walked {
        return store_failure("read the evidence", &e);
    }
    let ChainReport {
        rows,
        problems,
        last,
    } = causerie_policy::verify_links(&chain, public, checkpoint);
    if problems.is_empty() && payload_problems.is_empty() {
        println!(
            "{rows} records, chain intact, signatures valid; {checked} payloads match their \
             hashes, {purged} purged"
        );
        if let Some((seq, hash)) = last {
            println!("last record: {seq}:{hash} (keep it elsewhere; check with --checkpoint)");
        }
        return ExitCode::SUCCESS;
    }
    let mut rows_hit = BTreeSet::new();
    for p in &problems {
        println!("{p}");
        if let ChainProblem::Edited { position, .. }
        | ChainProblem::BadSignature { position, .. }
        | ChainProblem::Broken { position, .. }
        | ChainProblem::SeqGap { position, .. }
        | ChainProblem::CheckpointMismatch { position, .. } = p
        {
            rows_hit.insert(*position);
        }
    }
    for p in &payload_problems {
        println!(
            "row {} (seq {}): its payload does not match its payload hash (edited after signing)",
            p.position, p.seq
        );
        rows_hit.insert(p.position);
    }
    eprintln!(
        "causeriectl: {} problem(s) in {rows} records ({} row(s) affected): the evidence was \
         changed after it was signed",
        problems.len() + payload_problems.len(),
        rows_hit.len()
    );
    ExitCode::from(1)
}

async fn purge(storage: &Storage, before: i64) -> ExitCode {
    let n = match storage.evidence.purge(before, unix_now()).await {
        Ok(n) => n,
        Err(e) => return store_failure("purge the evidence", &e),
    };
    println!(
        "purged the payloads of {n} record(s) created before {} (records on legal hold or \
         pending review are kept)",
        format_utc(before)
    );
    let detail = format!(
        "{n} evidence payload(s) created before {} purged",
        format_utc(before)
    );
    if audit(storage, "compliance.evidence.purge", "", detail).await {
        ExitCode::SUCCESS
    } else {
        eprintln!("causeriectl: the payloads were purged, but recording it failed");
        ExitCode::from(3)
    }
}

async fn set_hold(storage: &Storage, seq: i64, hold: bool, note: Option<String>) -> ExitCode {
    match storage.evidence.set_legal_hold(seq, hold).await {
        Ok(true) => {}
        Ok(false) => {
            eprintln!("causeriectl: no evidence record {seq}");
            return ExitCode::from(1);
        }
        Err(e) => return store_failure("set the legal hold", &e),
    }
    let (action, done) = if hold {
        ("compliance.evidence.hold", "is on legal hold")
    } else {
        (
            "compliance.evidence.release-hold",
            "is no longer on legal hold",
        )
    };
    println!("record {seq} {done}");
    let mut detail = format!("record {seq} {done}");
    if let Some(note) = note {
        detail.push_str(&format!(" (note: {note})"));
    }
    if audit(storage, action, &seq.to_string(), detail).await {
        ExitCode::SUCCESS
    } else {
        eprintln!("causeriectl: the hold was changed, but recording it failed");
        ExitCode::from(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_ranges_are_compact_and_bounded() {
        assert_eq!(seq_ranges(&[], 100), Vec::<String>::new());
        assert_eq!(seq_ranges(&[1, 2, 3, 5, 7, 8], 100), ["1-3,5,7-8"]);
        assert_eq!(seq_ranges(&[4], 100), ["4"]);
        assert_eq!(seq_ranges(&[1, 3, 5, 7], 3), ["1,3", "5,7"]);
        let many: Vec<i64> = (1..2000).step_by(2).collect();
        let parts = seq_ranges(&many, MAX_FIELD_BYTES);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= MAX_FIELD_BYTES));
        let back: Vec<i64> = parts
            .iter()
            .flat_map(|p| p.split(','))
            .map(|s| s.parse().expect("single seqs"))
            .collect();
        assert_eq!(back, many);
    }

    #[test]
    fn checkpoints_are_seq_colon_hash() {
        let hash = "cd".repeat(32);
        assert_eq!(
            parse_checkpoint(&format!("3:{}", hash.to_uppercase())),
            Ok((3, hash.clone()))
        );
        for bad in [
            "",
            "3",
            "0:x",
            &format!("0:{hash}"),
            &format!("3:{}", &hash[1..]),
        ] {
            assert!(parse_checkpoint(bad).is_err(), "{bad:?}");
        }
    }
}
