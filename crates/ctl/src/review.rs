//! `causeriectl review …`: the review of quarantined messages. A message a `quarantine` rule
//! held waits in its evidence record; a reviewer lists the queue, reads the held message, and
//! releases or rejects it. The decision is written to the database (the server need not run);
//! the running server then delivers a released message to its recipient, or tells the sender
//! that a rejected one was not delivered, within `compliance.reload_secs` or at its next start.
//!
//! Every read of the queue or of a held message, and every decision, is written to the audit
//! log before anything is shown (a read that cannot be recorded is refused).

use std::process::ExitCode;

use causerie_storage::evidence::{
    MAX_REVIEW_REASON_BYTES, REVIEW_PENDING, REVIEW_REJECTED, REVIEW_RELEASED,
};
use causerie_storage::{EvidenceFilter, Storage, StoreError, StoredEvidence};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::evidence::{FilterArgs, audit, bad_input, filter_of, jid_of, record_number, walk};
use crate::federation::{actor, one_line, store_failure};
use crate::time::{format_utc, unix_now};

#[derive(Subcommand, Debug)]
pub(crate) enum ReviewCommand {
    /// List quarantined messages, oldest first: those pending review, or with --all every one
    /// ever held. One `SEQ TIME RULE USER@DOMAIN[/RESOURCE] DIRECTION PEER STATE` line each,
    /// where STATE is `pending`, or `released`/`rejected` followed by `delivered`, `told` (the
    /// sender of a rejected message) or `waiting for the server`. Recorded in the audit log.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Every quarantined message, decided or not.
        #[arg(long)]
        all: bool,
        /// One JSON array of objects instead.
        #[arg(long)]
        json: bool,
    },
    /// Show a quarantined message: its record, the review state and the message as it is held
    /// (never sealed, so that the server can deliver it; it is removed once the decision is
    /// carried out). Recorded in the audit log before anything is shown.
    Show {
        /// The record's number.
        seq: i64,
        /// One JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Release a message pending review: the running server delivers it to its recipient, as
    /// it was sent. A review is decided once. Recorded in the audit log.
    Release {
        seq: i64,
        /// Why, kept with the decision and in the audit log (not shown to the users).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Reject a message pending review: it is never delivered, and the running server tells
    /// the sender. A review is decided once. Recorded in the audit log.
    Reject {
        seq: i64,
        /// Why, kept with the decision and in the audit log (not shown to the users).
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
}

/// What a command checked before the database was opened.
pub(crate) enum Prepared {
    List {
        filter: EvidenceFilter,
        all: bool,
        json: bool,
    },
    Show {
        seq: i64,
        json: bool,
    },
    Decide {
        seq: i64,
        state: &'static str,
        reason: Option<String>,
    },
}

fn reason_of(reason: Option<String>) -> Result<Option<String>, ExitCode> {
    match reason.map(|r| r.trim().to_owned()) {
        Some(r) if r.len() > MAX_REVIEW_REASON_BYTES => Err(bad_input(&format!(
            "the reason is longer than {MAX_REVIEW_REASON_BYTES} bytes"
        ))),
        Some(r) if r.contains('\0') => Err(bad_input("the reason contains U+0000")),
        Some(r) if r.is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// Checks the arguments; on bad input prints why and returns exit code 2.
pub(crate) fn prepare(cmd: ReviewCommand) -> Result<Prepared, ExitCode> {
    Ok(match cmd {
        ReviewCommand::List { filter, all, json } => {
            let mut filter = filter_of(filter)?;
            if !all {
                filter.review = Some(REVIEW_PENDING.to_owned());
            }
            Prepared::List { filter, all, json }
        }
        ReviewCommand::Show { seq, json } => Prepared::Show {
            seq: record_number(seq)?,
            json,
        },
        ReviewCommand::Release { seq, reason } => Prepared::Decide {
            seq: record_number(seq)?,
            state: REVIEW_RELEASED,
            reason: reason_of(reason)?,
        },
        ReviewCommand::Reject { seq, reason } => Prepared::Decide {
            seq: record_number(seq)?,
            state: REVIEW_REJECTED,
            reason: reason_of(reason)?,
        },
    })
}

pub(crate) async fn run(storage: &Storage, cmd: Prepared) -> ExitCode {
    match cmd {
        Prepared::List { filter, all, json } => list(storage, filter, all, json).await,
        Prepared::Show { seq, json } => show(storage, seq, json).await,
        Prepared::Decide { seq, state, reason } => decide(storage, seq, state, reason).await,
    }
}

/// `pending`, or the decision and whether the server carried it out.
fn state(r: &StoredEvidence) -> String {
    match (r.review.as_deref(), r.handled_at) {
        (None, _) => "-".to_owned(),
        (Some(REVIEW_PENDING), _) => REVIEW_PENDING.to_owned(),
        (Some(REVIEW_RELEASED), Some(_)) => format!("{REVIEW_RELEASED},delivered"),
        (Some(REVIEW_REJECTED), Some(_)) => format!("{REVIEW_REJECTED},told"),
        (Some(s), None) => format!("{},waiting for the server", one_line(s)),
        (Some(s), Some(_)) => one_line(s),
    }
}

/// The record's review, without the held message.
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
        "review": r.review,
        "reviewed_by": r.reviewed_by,
        "reviewed_at": r.reviewed_at,
        "review_reason": r.review_reason,
        "handled_at": r.handled_at,
        "held": r.held.is_some(),
    })
}

async fn list(storage: &Storage, filter: EvidenceFilter, all: bool, json: bool) -> ExitCode {
    let mut records = Vec::new();
    let walked = walk(storage, filter, |r| {
        if r.review.is_some() {
            records.push(r);
        }
        Ok::<(), StoreError>(())
    })
    .await;
    if let Err(e) = walked {
        return store_failure("read the evidence", &e);
    }
    let what = if all { "quarantined" } else { "pending review" };
    // Recorded before anything is shown: a read that cannot be recorded does not happen.
    let detail = format!("listed {} message(s) {what}", records.len());
    if !audit(storage, "compliance.review.list", "", detail).await {
        return ExitCode::from(3);
    }
    if json {
        println!("{}", Value::Array(records.iter().map(metadata).collect()));
        return ExitCode::SUCCESS;
    }
    for r in &records {
        println!(
            "{} {} {} {} {} {} {}",
            r.seq,
            format_utc(r.created_at),
            one_line(&r.rule_id),
            one_line(&jid_of(r)),
            r.direction,
            if r.peer.is_empty() {
                "-".to_owned()
            } else {
                one_line(&r.peer)
            },
            state(r)
        );
    }
    ExitCode::SUCCESS
}

/// The record at `seq`, which must have been held for review (exit code 1 otherwise).
async fn quarantined(storage: &Storage, seq: i64) -> Result<StoredEvidence, ExitCode> {
    match storage.evidence.get(seq).await {
        Ok(Some(r)) if r.review.is_some() => Ok(r),
        Ok(Some(_)) => {
            eprintln!("causeriectl: record {seq} was never held for review");
            Err(ExitCode::from(1))
        }
        Ok(None) => {
            eprintln!("causeriectl: no evidence record {seq}");
            Err(ExitCode::from(1))
        }
        Err(e) => Err(store_failure("read the evidence", &e)),
    }
}

async fn show(storage: &Storage, seq: i64, json: bool) -> ExitCode {
    let r = match quarantined(storage, seq).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    let how = if r.held.is_some() {
        "held message shown"
    } else {
        "no held message left"
    };
    let detail = format!("record {seq} (rule {}, {}): {how}", r.rule_id, jid_of(&r));
    if !audit(storage, "compliance.review.read", &seq.to_string(), detail).await {
        return ExitCode::from(3);
    }
    if json {
        let mut v = metadata(&r);
        if let Value::Object(map) = &mut v {
            map.insert("held".to_owned(), json!(r.held));
        }
        println!("{v}");
        return ExitCode::SUCCESS;
    }
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
    let decided = match (&r.reviewed_by, r.reviewed_at) {
        (Some(by), Some(at)) => format!(" by {} at {}", one_line(by), format_utc(at)),
        _ => String::new(),
    };
    println!("review: {}{decided}", state(&r));
    if let Some(reason) = &r.review_reason {
        println!("reason: {}", one_line(reason));
    }
    if let Some(at) = r.handled_at {
        println!("carried out: {}", format_utc(at));
    }
    match &r.held {
        Some(held) => println!("\nheld message:\n{held}"),
        None if r.handled_at.is_some() => println!(
            "\nheld message: removed once the decision was carried out (`causeriectl evidence \
             show {seq}` shows the evidence)"
        ),
        None => println!(
            "\nheld message: none (held by an earlier version of the server; `causeriectl \
             evidence show {seq}` shows the evidence)"
        ),
    }
    ExitCode::SUCCESS
}

async fn decide(storage: &Storage, seq: i64, state: &str, reason: Option<String>) -> ExitCode {
    let r = match quarantined(storage, seq).await {
        Ok(r) => r,
        Err(code) => return code,
    };
    if state == REVIEW_RELEASED && r.review.as_deref() == Some(REVIEW_PENDING) && r.held.is_none() {
        eprintln!(
            "causeriectl: record {seq} holds no copy of the message (held by an earlier version \
             of the server), so nothing can be delivered; reject it, or read it with \
             `causeriectl evidence show {seq}`"
        );
        return ExitCode::from(1);
    }
    let decided = match storage
        .evidence
        .set_review(seq, state, &actor(), unix_now(), reason.as_deref())
        .await
    {
        Ok(d) => d,
        Err(StoreError::Conflict(why)) => {
            eprintln!("causeriectl: {why}");
            return ExitCode::from(1);
        }
        Err(e) => return store_failure("decide the review", &e),
    };
    let recipient = if decided.direction == "incoming" {
        jid_of(&decided)
    } else {
        decided.peer.clone()
    };
    let what = if state == REVIEW_RELEASED {
        format!("released: the running server delivers it to {recipient}")
    } else {
        "rejected: the running server tells the sender it was not delivered".to_owned()
    };
    println!("record {seq} {what} (within compliance.reload_secs, or when it next starts)");
    let mut detail = format!("record {seq} (rule {}, {}) {state}", r.rule_id, jid_of(&r));
    if let Some(reason) = &reason {
        detail.push_str(&format!(" (reason: {reason})"));
    }
    let action = if state == REVIEW_RELEASED {
        "compliance.review.release"
    } else {
        "compliance.review.reject"
    };
    if audit(storage, action, &seq.to_string(), detail).await {
        ExitCode::SUCCESS
    } else {
        eprintln!("causeriectl: the review was decided, but recording it failed");
        ExitCode::from(3)
    }
}
