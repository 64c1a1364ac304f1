//! Conformance checks for [`AuditStore`](super::AuditStore): each function checks one behaviour
//! on events of its own (a fresh subject or action prefix) and returns what went wrong.
//!
//! The log is shared by everything on the database, so every listing is narrowed to the
//! check's own subject or action prefix: the checks hold while other runs append.

use std::collections::BTreeSet;

use super::{
    AuditEvent, AuditFilter, DEFAULT_LIST_LIMIT, MAX_DETAIL_BYTES, MAX_FIELD_BYTES, NewAuditEvent,
};
use crate::Storage;
use crate::conformance::{invalid_input, ok, unique_domain};

fn event(at: i64, action: &str, subject: &str) -> NewAuditEvent {
    NewAuditEvent {
        at,
        actor: "causeriectl:root".to_owned(),
        action: action.to_owned(),
        subject: subject.to_owned(),
        outcome: "ok".to_owned(),
        detail: String::new(),
        remote_addr: None,
    }
}

async fn append(storage: &Storage, ev: &NewAuditEvent) -> Result<i64, String> {
    ok("append", storage.audit.append(ev).await)
}

async fn list(storage: &Storage, filter: AuditFilter) -> Result<Vec<AuditEvent>, String> {
    ok("list", storage.audit.list(&filter).await)
}

fn by_subject(subject: &str) -> AuditFilter {
    AuditFilter {
        subject: Some(subject.to_owned()),
        ..AuditFilter::default()
    }
}

fn ids(events: &[AuditEvent]) -> Vec<i64> {
    events.iter().map(|e| e.id).collect()
}

/// Appended events come back whole, oldest first, with strictly increasing ids; text is kept
/// byte for byte, the limits themselves are accepted.
pub async fn append_and_list(storage: &Storage) -> Result<(), String> {
    let subject = unique_domain("audit-append");
    let sent = vec![
        NewAuditEvent {
            at: 1_700_000_000,
            actor: "causeriectl:root".to_owned(),
            action: "federation.deny".to_owned(),
            subject: subject.clone(),
            outcome: "ok".to_owned(),
            detail: "note: spam «wave»\nticket #7".to_owned(),
            remote_addr: None,
        },
        NewAuditEvent {
            at: 1_700_000_005,
            actor: "s2s".to_owned(),
            action: "s2s.inbound.refused".to_owned(),
            subject: subject.clone(),
            outcome: "refused".to_owned(),
            detail: "é".repeat(MAX_DETAIL_BYTES / 2),
            remote_addr: Some("[2001:db8::1]:5269".to_owned()),
        },
        NewAuditEvent {
            // Out of time order: the id, not the time, orders the log.
            at: 1_600_000_000,
            actor: "a".repeat(MAX_FIELD_BYTES),
            action: "x".repeat(MAX_FIELD_BYTES),
            subject: subject.clone(),
            outcome: "error".to_owned(),
            detail: String::new(),
            remote_addr: Some("r".repeat(MAX_FIELD_BYTES)),
        },
    ];
    let mut got_ids = Vec::new();
    for ev in &sent {
        got_ids.push(append(storage, ev).await?);
    }
    ensure!(
        got_ids.windows(2).all(|w| w[0] < w[1]),
        "ids {got_ids:?} do not increase in append order"
    );
    let listed = list(storage, by_subject(&subject)).await?;
    let expected: Vec<AuditEvent> = got_ids
        .iter()
        .zip(&sent)
        .map(|(id, ev)| AuditEvent::new(*id, ev))
        .collect();
    ensure!(
        listed == expected,
        "listed {listed:?}, expected {expected:?}"
    );

    // An empty subject is allowed (events about the server itself).
    let id = append(storage, &event(5, "server.start", "")).await?;
    ensure!(id > got_ids[2], "id {id} after {}", got_ids[2]);
    Ok(())
}

/// Each condition of the filter narrows the listing: time range (both ends included), action
/// prefix (byte-wise: case counts, `%` and `_` are plain characters), exact subject, `after_id`
/// and the limit.
pub async fn filters(storage: &Storage) -> Result<(), String> {
    let tag = unique_domain("audit-filter");
    let subject = format!("peer.{tag}");
    let other = format!("other.{tag}");
    let specs: [(i64, String, &str); 8] = [
        (100, format!("{tag}.s2s.inbound.accepted"), &subject),
        (200, format!("{tag}.s2s.inbound.refused"), &subject),
        (300, format!("{tag}.s2s.outbound.accepted"), &other),
        (400, format!("{tag}.S2S.upper"), &subject),
        (500, format!("{tag}.s2sx.near"), &subject),
        (600, format!("{tag}.a_b.literal"), &subject),
        (700, format!("{tag}.axb.wildcard"), &subject),
        (800, format!("{tag}.federation.allow"), &subject),
    ];
    let mut id = Vec::new();
    for (at, action, subj) in &specs {
        id.push(append(storage, &event(*at, action, subj)).await?);
    }
    let prefix = |p: &str| AuditFilter {
        action_prefix: Some(format!("{tag}.{p}")),
        ..AuditFilter::default()
    };
    let cases: Vec<(&str, AuditFilter, Vec<i64>)> = vec![
        ("prefix s2s.", prefix("s2s."), vec![id[0], id[1], id[2]]),
        (
            "prefix s2s",
            prefix("s2s"),
            vec![id[0], id[1], id[2], id[4]],
        ),
        (
            "prefix s2s.inbound.",
            prefix("s2s.inbound."),
            vec![id[0], id[1]],
        ),
        ("prefix a_b.", prefix("a_b."), vec![id[5]]),
        ("prefix a%", prefix("a%"), vec![]),
        (
            "prefix s2s. and subject",
            AuditFilter {
                subject: Some(subject.clone()),
                ..prefix("s2s.")
            },
            vec![id[0], id[1]],
        ),
        ("subject other", by_subject(&other), vec![id[2]]),
        (
            "subject in another case",
            by_subject(&subject.to_uppercase()),
            vec![],
        ),
        (
            "since 200 until 400",
            AuditFilter {
                since: Some(200),
                until: Some(400),
                ..prefix("")
            },
            vec![id[1], id[2], id[3]],
        ),
        (
            "since 750",
            AuditFilter {
                since: Some(750),
                ..prefix("")
            },
            vec![id[7]],
        ),
        (
            "until 100",
            AuditFilter {
                until: Some(100),
                ..prefix("")
            },
            vec![id[0]],
        ),
        (
            "after_id and limit",
            AuditFilter {
                after_id: Some(id[2]),
                limit: Some(3),
                ..prefix("")
            },
            vec![id[3], id[4], id[5]],
        ),
        (
            "limit 0",
            AuditFilter {
                limit: Some(0),
                ..prefix("")
            },
            vec![],
        ),
        (
            "U+0000 in the subject",
            by_subject(&format!("{subject}\0")),
            vec![],
        ),
        ("U+0000 in the prefix", prefix("s2s\0"), vec![]),
    ];
    for (what, filter, expected) in cases {
        let got = ids(&list(storage, filter).await?);
        ensure!(
            got == expected,
            "{what}: ids {got:?}, expected {expected:?}"
        );
    }
    Ok(())
}

/// Without a limit at most [`DEFAULT_LIST_LIMIT`] events come back; events appended at the same
/// moment get distinct ids, and paging with `after_id` returns each exactly once.
pub async fn default_limit_and_concurrent_appends(storage: &Storage) -> Result<(), String> {
    const TASKS: usize = 4;
    let per_task = usize::try_from(DEFAULT_LIST_LIMIT).unwrap_or(1000) / TASKS + 10;
    let subject = unique_domain("audit-many");
    let ready = std::sync::Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let storage = storage.clone();
        let subject = subject.clone();
        let ready = ready.clone();
        tasks.spawn(async move {
            ready.wait().await;
            let mut ids = Vec::with_capacity(per_task);
            for i in 0..per_task {
                let ev = event(i as i64, &format!("test.task{t}"), &subject);
                ids.push(storage.audit.append(&ev).await?);
            }
            Ok::<_, crate::StoreError>(ids)
        });
    }
    let mut appended = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let task_ids = ok("append", joined.map_err(|e| format!("append task: {e}"))?)?;
        ensure!(
            task_ids.windows(2).all(|w| w[0] < w[1]),
            "one task's ids do not increase"
        );
        appended.extend(task_ids);
    }
    let total = TASKS * per_task;
    ensure!(
        appended.len() == total,
        "{} distinct ids for {total} appends",
        appended.len()
    );
    let first = list(storage, by_subject(&subject)).await?;
    ensure!(
        first.len() as u64 == DEFAULT_LIST_LIMIT,
        "{} events listed without a limit, expected {DEFAULT_LIST_LIMIT}",
        first.len()
    );
    let mut seen = ids(&first);
    let Some(&last) = seen.last() else {
        return Err("nothing listed".to_owned());
    };
    let rest = list(
        storage,
        AuditFilter {
            after_id: Some(last),
            limit: Some(u64::MAX),
            ..by_subject(&subject)
        },
    )
    .await?;
    seen.extend(ids(&rest));
    ensure!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "listing is not in increasing id order"
    );
    let seen: BTreeSet<i64> = seen.into_iter().collect();
    ensure!(
        seen == appended,
        "paging listed {} events, {} appended",
        seen.len(),
        appended.len()
    );
    Ok(())
}

/// A reader paging with `after_id` while writers append sees every event: none becomes
/// visible after an event with a larger id was already readable.
pub async fn tailing_misses_nothing(storage: &Storage) -> Result<(), String> {
    const WRITERS: usize = 4;
    const EACH: usize = 40;
    let subject = unique_domain("audit-tail");
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let storage = storage.clone();
        let subject = subject.clone();
        writers.spawn(async move {
            let mut ids = Vec::with_capacity(EACH);
            for i in 0..EACH {
                let ev = event(i as i64, &format!("test.writer{w}"), &subject);
                ids.push(storage.audit.append(&ev).await?);
                tokio::task::yield_now().await;
            }
            Ok::<_, crate::StoreError>(ids)
        });
    }
    let mut seen = Vec::new();
    let mut after = None;
    let page = |after: Option<i64>| {
        list(
            storage,
            AuditFilter {
                after_id: after,
                limit: Some(50),
                ..by_subject(&subject)
            },
        )
    };
    let mut appended = BTreeSet::new();
    let mut writers_done = false;
    loop {
        let events = page(after).await?;
        if let Some(last) = events.last() {
            after = Some(last.id);
        }
        let empty = events.is_empty();
        seen.extend(ids(&events));
        if writers_done && empty {
            break;
        }
        if !writers_done && writers.is_empty() {
            writers_done = true;
        }
        while let Some(joined) = writers.try_join_next() {
            let w = ok("append", joined.map_err(|e| format!("writer: {e}"))?)?;
            appended.extend(w);
        }
        tokio::task::yield_now().await;
    }
    let seen_set: BTreeSet<i64> = seen.iter().copied().collect();
    ensure!(
        seen_set.len() == seen.len(),
        "an event was listed twice while tailing"
    );
    let missed: Vec<i64> = appended.difference(&seen_set).copied().collect();
    ensure!(
        missed.is_empty() && appended.len() == WRITERS * EACH,
        "tailing with after_id missed {} of {} events (ids {missed:?})",
        missed.len(),
        appended.len()
    );
    Ok(())
}

/// An event the store cannot hold is refused with `InvalidInput` and nothing is written.
pub async fn invalid_input_refused(storage: &Storage) -> Result<(), String> {
    let subject = unique_domain("audit-invalid");
    let good = event(1, "test.invalid", &subject);
    let long = "x".repeat(MAX_FIELD_BYTES + 1);
    let long_detail = "d".repeat(MAX_DETAIL_BYTES + 1);
    let cases: Vec<(&str, NewAuditEvent)> = vec![
        (
            "an empty actor",
            NewAuditEvent {
                actor: String::new(),
                ..good.clone()
            },
        ),
        (
            "an empty action",
            NewAuditEvent {
                action: String::new(),
                ..good.clone()
            },
        ),
        (
            "an empty outcome",
            NewAuditEvent {
                outcome: String::new(),
                ..good.clone()
            },
        ),
        (
            "an oversized actor",
            NewAuditEvent {
                actor: long.clone(),
                ..good.clone()
            },
        ),
        (
            "an oversized action",
            NewAuditEvent {
                action: long.clone(),
                ..good.clone()
            },
        ),
        (
            "an oversized outcome",
            NewAuditEvent {
                outcome: long.clone(),
                ..good.clone()
            },
        ),
        (
            "an oversized detail",
            NewAuditEvent {
                detail: long_detail,
                ..good.clone()
            },
        ),
        (
            "an oversized remote address",
            NewAuditEvent {
                remote_addr: Some(long.clone()),
                ..good.clone()
            },
        ),
        (
            "U+0000 in the detail",
            NewAuditEvent {
                detail: "a\0b".to_owned(),
                ..good.clone()
            },
        ),
        (
            "U+0000 in the actor",
            NewAuditEvent {
                actor: "a\0b".to_owned(),
                ..good.clone()
            },
        ),
        (
            "U+0000 in the remote address",
            NewAuditEvent {
                remote_addr: Some("a\0b".to_owned()),
                ..good.clone()
            },
        ),
    ];
    for (what, ev) in cases {
        invalid_input(
            &format!("append with {what}"),
            storage.audit.append(&ev).await,
        )?;
    }
    let long_subject = NewAuditEvent {
        subject: long,
        ..good.clone()
    };
    invalid_input(
        "append with an oversized subject",
        storage.audit.append(&long_subject).await,
    )?;
    let listed = list(storage, by_subject(&subject)).await?;
    ensure!(listed.is_empty(), "a refused append wrote {listed:?}");
    Ok(())
}

/// Runs every check above and returns one line per failure (empty when all pass).
pub async fn run_all(storage: &Storage) -> Vec<String> {
    let mut failures = Vec::new();
    macro_rules! run {
        ($($check:ident),+ $(,)?) => {
            $(
                if let Err(reason) = $check(storage).await {
                    failures.push(format!("audit::{}: {reason}", stringify!($check)));
                }
            )+
        };
    }
    run!(
        append_and_list,
        filters,
        default_limit_and_concurrent_appends,
        tailing_misses_nothing,
        invalid_input_refused,
    );
    failures
}
