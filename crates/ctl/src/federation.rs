//! `causeriectl federation …`: the federation partner list, read and written straight in the
//! database, whether the server runs or not. A running server polls the partner list's
//! revision and reloads it when it moved.

use std::collections::BTreeMap;
use std::process::ExitCode;

use causerie_config::Config;
use causerie_storage::audit::{MAX_DETAIL_BYTES, MAX_FIELD_BYTES};
use causerie_storage::federation::MAX_NOTE_BYTES;
use causerie_storage::{
    AuditEvent, AuditFilter, NewAuditEvent, Partner, PartnerRule, Storage, StoreError,
};
use clap::Subcommand;

use crate::json_string;
use crate::time::{format_utc, unix_now};

/// Told after every change: the server is not signalled, it notices the new revision.
const APPLIED: &str = "the running server applies it within a few seconds";

/// Events read per query while `federation status` walks the audit log.
const STATUS_PAGE: u64 = 1000;

#[derive(Subcommand, Debug)]
pub(crate) enum FederationCommand {
    /// Allow server-to-server traffic with a remote domain (adds or replaces its entry).
    Allow {
        /// The remote domain; prepared as in a JID (lower case, IDNA U-labels).
        domain: String,
        /// Why, who asked, a ticket; kept with the entry and in the audit log.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Deny server-to-server traffic with a remote domain (adds or replaces its entry).
    Deny {
        /// The remote domain; prepared as in a JID (lower case, IDNA U-labels).
        domain: String,
        /// Why, who asked, a ticket; kept with the entry and in the audit log.
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
    },
    /// Remove a remote domain's entry (exit code 1 if it has none).
    Remove {
        /// The remote domain; prepared as in a JID.
        domain: String,
    },
    /// List the partner list, one `DOMAIN allow|deny [NOTE]` line per entry, by domain.
    List {
        /// One JSON array of {domain, rule, note, updated_at, updated} objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Show each remote domain's rule and its latest server-to-server streams.
    ///
    /// One line per remote domain in the partner list or seen in the audit log's `s2s.*`
    /// events: its rule ("-" when it has none), the time of the last accepted and of the last
    /// refused stream (RFC 3339, UTC) with the refusal's detail, and the number of refusals in
    /// the last 24 hours. An event counts as accepted when its action ends in `.accepted`, as refused when its
    /// action ends in `.refused` or its outcome is `refused`.
    Status {
        /// One JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
}

/// What a command checked before the database was opened.
pub(crate) enum Prepared {
    Set {
        domain: String,
        rule: PartnerRule,
        note: Option<String>,
    },
    Remove {
        domain: String,
    },
    List {
        json: bool,
    },
    Status {
        json: bool,
    },
}

/// Checks the arguments; on bad input prints why and returns exit code 2.
pub(crate) fn prepare(cmd: FederationCommand) -> Result<Prepared, ExitCode> {
    let domain = |raw: &str| {
        causerie_jid::prepare_domain(raw).map_err(|e| {
            eprintln!("causeriectl: '{raw}' is not a valid domain: {e}");
            ExitCode::from(2)
        })
    };
    let note = |note: Option<String>| match note {
        Some(n) if n.len() > MAX_NOTE_BYTES => {
            eprintln!("causeriectl: the note is longer than {MAX_NOTE_BYTES} bytes");
            Err(ExitCode::from(2))
        }
        Some(n) if n.contains('\0') => {
            eprintln!("causeriectl: the note contains U+0000");
            Err(ExitCode::from(2))
        }
        // An empty note is no note.
        Some(n) if n.is_empty() => Ok(None),
        other => Ok(other),
    };
    Ok(match cmd {
        FederationCommand::Allow { domain: d, note: n } => Prepared::Set {
            domain: domain(&d)?,
            rule: PartnerRule::Allow,
            note: note(n)?,
        },
        FederationCommand::Deny { domain: d, note: n } => Prepared::Set {
            domain: domain(&d)?,
            rule: PartnerRule::Deny,
            note: note(n)?,
        },
        FederationCommand::Remove { domain: d } => Prepared::Remove {
            domain: domain(&d)?,
        },
        FederationCommand::List { json } => Prepared::List { json },
        FederationCommand::Status { json } => Prepared::Status { json },
    })
}

/// Prints a store error and returns its exit code: 2 for input the store refused, 3 for a
/// database that failed.
pub(crate) fn store_failure(what: &str, e: &StoreError) -> ExitCode {
    eprintln!("causeriectl: {what}: {e}");
    ExitCode::from(match e {
        StoreError::InvalidInput(_) => 2,
        StoreError::NotFound(_) | StoreError::AlreadyExists(_) => 1,
        _ => 3,
    })
}

/// `causeriectl:$USER`, or `causeriectl` when `USER` is unset or empty.
pub(crate) fn actor() -> String {
    let mut actor = match std::env::var("USER") {
        Ok(user) if !user.is_empty() => format!("causeriectl:{user}"),
        _ => "causeriectl".to_owned(),
    };
    truncate(&mut actor, MAX_FIELD_BYTES);
    actor
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

fn describe(p: &Partner) -> String {
    match &p.note {
        Some(note) => format!("{} (note: {note})", p.rule),
        None => p.rule.to_string(),
    }
}

/// Records a change in the audit log. The change itself is already committed: a failure here
/// is reported as such (exit code 3), not as a failed change.
pub(crate) async fn record(
    storage: &Storage,
    action: &str,
    subject: &str,
    detail: String,
) -> ExitCode {
    let mut detail = detail;
    truncate(&mut detail, MAX_DETAIL_BYTES);
    let ev = NewAuditEvent {
        at: unix_now(),
        actor: actor(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        outcome: "ok".to_owned(),
        detail,
        remote_addr: None,
    };
    match storage.audit.append(&ev).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "causeriectl: the change was made, but recording it in the audit log failed: {e}"
            );
            ExitCode::from(3)
        }
    }
}

pub(crate) async fn run(storage: &Storage, config: &Config, cmd: Prepared) -> ExitCode {
    match cmd {
        Prepared::Set { domain, rule, note } => set(storage, &domain, rule, note).await,
        Prepared::Remove { domain } => remove(storage, &domain).await,
        Prepared::List { json } => list(storage, config, json).await,
        Prepared::Status { json } => status(storage, config, json).await,
    }
}

/// Note of the entries that come from the configuration file.
const FROM_CONFIG: &str = "from the configuration file";

/// The database entries, then the configuration file's partners and denied domains that the
/// database does not override (a database entry decides for its domain, as in the server), by
/// domain.
async fn effective_partners(
    storage: &Storage,
    config: &Config,
) -> Result<Vec<Partner>, StoreError> {
    let mut partners = storage.federation.partners().await?;
    let configured = config
        .federation
        .partners
        .iter()
        .map(|p| (p.domain.as_str(), PartnerRule::Allow))
        .chain(
            config
                .federation
                .deny
                .iter()
                .map(|d| (d.as_str(), PartnerRule::Deny)),
        );
    let mut extra = Vec::new();
    for (domain, rule) in configured {
        if !partners.iter().any(|p| p.domain == domain) {
            extra.push(Partner {
                domain: domain.to_owned(),
                rule,
                note: Some(FROM_CONFIG.to_owned()),
                updated_at: 0,
            });
        }
    }
    partners.extend(extra);
    partners.sort_by(|a, b| a.domain.cmp(&b.domain));
    Ok(partners)
}

async fn previous(storage: &Storage, domain: &str) -> Result<Option<Partner>, StoreError> {
    Ok(storage
        .federation
        .partners()
        .await?
        .into_iter()
        .find(|p| p.domain == domain))
}

async fn set(storage: &Storage, domain: &str, rule: PartnerRule, note: Option<String>) -> ExitCode {
    let before = match previous(storage, domain).await {
        Ok(p) => p,
        Err(e) => return store_failure("read the partner list", &e),
    };
    if let Err(e) = storage
        .federation
        .set_partner(domain, rule, note.as_deref(), unix_now())
        .await
    {
        return store_failure(&format!("{rule} {domain}"), &e);
    }
    let verb = match rule {
        PartnerRule::Allow => "allowed",
        PartnerRule::Deny => "denied",
    };
    println!("{verb} {domain}; {APPLIED}");
    let mut detail = match &note {
        Some(n) => format!("note: {n}"),
        None => "no note".to_owned(),
    };
    detail.push_str(&match &before {
        Some(p) => format!("; was {}", describe(p)),
        None => "; new entry".to_owned(),
    });
    record(storage, &format!("federation.{rule}"), domain, detail).await
}

async fn remove(storage: &Storage, domain: &str) -> ExitCode {
    let before = match previous(storage, domain).await {
        Ok(p) => p,
        Err(e) => return store_failure("read the partner list", &e),
    };
    match storage.federation.remove_partner(domain).await {
        Ok(true) => {
            println!("removed {domain}; {APPLIED}");
            let detail = match &before {
                Some(p) => format!("was {}", describe(p)),
                None => "removed".to_owned(),
            };
            record(storage, "federation.remove", domain, detail).await
        }
        Ok(false) => {
            eprintln!("causeriectl: {domain} is not in the partner list");
            ExitCode::from(1)
        }
        Err(e) => store_failure(&format!("remove {domain}"), &e),
    }
}

async fn list(storage: &Storage, config: &Config, json: bool) -> ExitCode {
    let partners = match effective_partners(storage, config).await {
        Ok(p) => p,
        Err(e) => return store_failure("read the partner list", &e),
    };
    if json {
        let items: Vec<String> = partners
            .iter()
            .map(|p| {
                format!(
                    "{{\"domain\":{},\"rule\":{},\"note\":{},\"updated_at\":{},\"updated\":{}}}",
                    json_string(&p.domain),
                    json_string(p.rule.as_str()),
                    json_opt(p.note.as_deref()),
                    p.updated_at,
                    json_string(&format_utc(p.updated_at)),
                )
            })
            .collect();
        println!("[{}]", items.join(","));
    } else {
        for p in &partners {
            match &p.note {
                Some(note) => println!("{} {} {}", p.domain, p.rule, one_line(note)),
                None => println!("{} {}", p.domain, p.rule),
            }
        }
    }
    ExitCode::SUCCESS
}

/// What the audit log says about one remote domain.
#[derive(Default)]
struct PeerStatus {
    rule: Option<PartnerRule>,
    note: Option<String>,
    last_accepted: Option<AuditEvent>,
    last_refused: Option<AuditEvent>,
    refused_24h: u64,
}

fn accepted(ev: &AuditEvent) -> bool {
    ev.action.ends_with(".accepted")
}

fn refused(ev: &AuditEvent) -> bool {
    ev.action.ends_with(".refused") || ev.outcome == "refused"
}

/// Keeps the later of the two events: by time, then by id.
fn keep_latest(slot: &mut Option<AuditEvent>, ev: &AuditEvent) {
    if slot
        .as_ref()
        .is_none_or(|old| (ev.at, ev.id) > (old.at, old.id))
    {
        *slot = Some(ev.clone());
    }
}

async fn status(storage: &Storage, config: &Config, json: bool) -> ExitCode {
    let partners = match effective_partners(storage, config).await {
        Ok(p) => p,
        Err(e) => return store_failure("read the partner list", &e),
    };
    let mut peers: BTreeMap<String, PeerStatus> = BTreeMap::new();
    for p in partners {
        let entry = peers.entry(p.domain).or_default();
        entry.rule = Some(p.rule);
        entry.note = p.note;
    }
    let now = unix_now();
    let day_ago = now.saturating_sub(86_400);
    // The whole `s2s.*` history, a page at a time, keeping only one summary per domain.
    let mut after_id = None;
    loop {
        let filter = AuditFilter {
            action_prefix: Some("s2s.".to_owned()),
            limit: Some(STATUS_PAGE),
            after_id,
            ..AuditFilter::default()
        };
        let events = match storage.audit.list(&filter).await {
            Ok(events) => events,
            Err(e) => return store_failure("read the audit log", &e),
        };
        for ev in &events {
            if ev.subject.is_empty() {
                continue;
            }
            let entry = peers.entry(ev.subject.clone()).or_default();
            if refused(ev) {
                keep_latest(&mut entry.last_refused, ev);
                if ev.at >= day_ago {
                    entry.refused_24h += 1;
                }
            } else if accepted(ev) {
                keep_latest(&mut entry.last_accepted, ev);
            }
        }
        match events.last() {
            Some(last) if events.len() as u64 == STATUS_PAGE => after_id = Some(last.id),
            _ => break,
        }
    }
    if json {
        let items: Vec<String> = peers
            .iter()
            .map(|(domain, s)| {
                format!(
                    "{{\"domain\":{},\"rule\":{},\"note\":{},\"last_accepted\":{},\
                     \"last_refused\":{},\"refused_last_24h\":{}}}",
                    json_string(domain),
                    json_opt(s.rule.map(PartnerRule::as_str)),
                    json_opt(s.note.as_deref()),
                    json_event_summary(s.last_accepted.as_ref()),
                    json_event_summary(s.last_refused.as_ref()),
                    s.refused_24h
                )
            })
            .collect();
        println!("[{}]", items.join(","));
    } else {
        for (domain, s) in &peers {
            let time = |ev: &Option<AuditEvent>| {
                ev.as_ref()
                    .map_or_else(|| "-".to_owned(), |e| format_utc(e.at))
            };
            let mut line = format!(
                "{domain} {} last-accepted={} last-refused={} refused-24h={}",
                s.rule.map_or("-", PartnerRule::as_str),
                time(&s.last_accepted),
                time(&s.last_refused),
                s.refused_24h
            );
            if let Some(ev) = &s.last_refused
                && !ev.detail.is_empty()
            {
                line.push_str(&format!(" refusal: {}", one_line(&ev.detail)));
            }
            println!("{line}");
        }
    }
    ExitCode::SUCCESS
}

fn json_event_summary(ev: Option<&AuditEvent>) -> String {
    match ev {
        None => "null".to_owned(),
        Some(e) => format!(
            "{{\"at\":{},\"time\":{},\"action\":{},\"outcome\":{},\"detail\":{},\
             \"remote_addr\":{}}}",
            e.at,
            json_string(&format_utc(e.at)),
            json_string(&e.action),
            json_string(&e.outcome),
            json_string(&e.detail),
            json_opt(e.remote_addr.as_deref())
        ),
    }
}

pub(crate) fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_string)
}

/// `s` on one line: backslashes and control characters escaped (`\n`, `\t`, `\u{1b}`), so that
/// a note or a detail cannot forge extra lines of output.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_escapes_controls() {
        assert_eq!(
            one_line("a\nb\\c\t\u{1b}[0m é"),
            "a\\nb\\\\c\\t\\u{1b}[0m é"
        );
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let mut s = "ééé".to_owned();
        truncate(&mut s, 5);
        assert_eq!(s, "éé");
        let mut s = "abc".to_owned();
        truncate(&mut s, 5);
        assert_eq!(s, "abc");
    }
}
