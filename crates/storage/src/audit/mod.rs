//! The audit log: an append-only record of administrative actions and of server-to-server
//! stream decisions, for the administrator to read back (who changed the partner list, which
//! remote domains were refused and why).

use async_trait::async_trait;

use crate::StoreError;
use crate::validate;

pub mod conformance;
pub(crate) mod memory;
pub(crate) mod sql;

/// Longest `detail` the store accepts.
pub const MAX_DETAIL_BYTES: usize = 4096;
/// Longest value of every other text field of an event.
pub const MAX_FIELD_BYTES: usize = 1023;
/// How many events [`AuditStore::list`] returns when the filter sets no limit.
pub const DEFAULT_LIST_LIMIT: u64 = 1000;

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// Who acted: `"causeriectl:root"`, `"server"`, `"s2s"`.
    pub actor: String,
    /// What happened, dotted from general to specific: `"federation.allow"`,
    /// `"s2s.inbound.accepted"`, `"s2s.inbound.refused"`, `"s2s.outbound.accepted"`, …
    pub action: String,
    /// What it happened to: a domain, a JID; may be empty.
    pub subject: String,
    /// `"ok"`, `"refused"` or `"error"`.
    pub outcome: String,
    /// Free text for the administrator; never a secret. May be empty.
    pub detail: String,
    /// The peer's address, when the event comes from a connection.
    pub remote_addr: Option<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Strictly increasing in append order.
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
    pub remote_addr: Option<String>,
}

impl AuditEvent {
    pub(crate) fn new(id: i64, ev: &NewAuditEvent) -> AuditEvent {
        AuditEvent {
            id,
            at: ev.at,
            actor: ev.actor.clone(),
            action: ev.action.clone(),
            subject: ev.subject.clone(),
            outcome: ev.outcome.clone(),
            detail: ev.detail.clone(),
            remote_addr: ev.remote_addr.clone(),
        }
    }

    /// Whether the event passes every condition of `filter` but the limit.
    pub(crate) fn matches(&self, filter: &AuditFilter) -> bool {
        filter.since.is_none_or(|since| self.at >= since)
            && filter.until.is_none_or(|until| self.at <= until)
            && filter
                .action_prefix
                .as_deref()
                .is_none_or(|prefix| self.action.starts_with(prefix))
            && filter
                .subject
                .as_deref()
                .is_none_or(|subject| self.subject == subject)
            && filter.after_id.is_none_or(|after| self.id > after)
    }
}

/// Which events [`AuditStore::list`] returns; every condition set must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Events at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Events at or before this time (Unix seconds).
    pub until: Option<i64>,
    /// Events whose action starts with this text (byte-wise): `"s2s."`, `"federation."`.
    pub action_prefix: Option<String>,
    /// Events about exactly this subject.
    pub subject: Option<String>,
    /// At most this many events; [`DEFAULT_LIST_LIMIT`] when unset.
    pub limit: Option<u64>,
    /// Events with an id greater than this one: pass the last id seen to read the next page.
    pub after_id: Option<i64>,
}

impl AuditFilter {
    pub(crate) fn effective_limit(&self) -> u64 {
        self.limit.unwrap_or(DEFAULT_LIST_LIMIT)
    }
}

/// The audit log. Every backend implements the same observable behaviour, checked by
/// [`crate::conformance::audit`].
///
/// Append-only: nothing in the trait changes or removes an event. Text is stored as given and
/// compared byte by byte.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event and returns its id. Ids strictly increase in append order, and an
    /// event becomes visible to readers only after every event with a smaller id, so reading
    /// page after page with [`AuditFilter::after_id`] misses nothing.
    ///
    /// `InvalidInput`, and nothing is written, when the actor, action or outcome is empty, when
    /// `detail` is longer than [`MAX_DETAIL_BYTES`] or another field longer than
    /// [`MAX_FIELD_BYTES`], or when a field contains U+0000.
    async fn append(&self, ev: &NewAuditEvent) -> Result<i64, StoreError>;
    /// The events matching `filter`, oldest first (by id), at most its limit.
    async fn list(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>, StoreError>;
}

/// Checks an event before it is written.
pub(crate) fn validate_event(ev: &NewAuditEvent) -> Result<(), StoreError> {
    for (what, value) in [
        ("audit actor", &ev.actor),
        ("audit action", &ev.action),
        ("audit outcome", &ev.outcome),
    ] {
        if value.is_empty() {
            return Err(StoreError::InvalidInput(format!("empty {what}")));
        }
        validate::text(what, value, Some(MAX_FIELD_BYTES))?;
    }
    validate::text("audit subject", &ev.subject, Some(MAX_FIELD_BYTES))?;
    validate::text("audit detail", &ev.detail, Some(MAX_DETAIL_BYTES))?;
    if let Some(addr) = &ev.remote_addr {
        validate::text("audit remote address", addr, Some(MAX_FIELD_BYTES))?;
    }
    Ok(())
}

/// The smallest string greater than every string that starts with `prefix`, in byte order
/// (which for UTF-8 is code point order): `prefix` with its last code point below U+10FFFF
/// moved up by one and what follows it dropped. `None` when there is none (an empty prefix, or
/// one made only of U+10FFFF), i.e. when no upper bound applies.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            // The surrogate range holds no chars.
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_of_a_prefix() {
        assert_eq!(prefix_upper_bound("s2s."), Some("s2s/".to_owned()));
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".to_owned()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(
            prefix_upper_bound("x\u{D7FF}"),
            Some("x\u{E000}".to_owned())
        );
        // Every string that starts with the prefix sorts below the bound, in byte order.
        for (prefix, inside) in [
            ("ab", "ab\u{10FFFF}\u{10FFFF}"),
            ("é", "éz"),
            ("a\u{10FFFF}", "a\u{10FFFF}\u{10FFFF}x"),
        ] {
            let bound = prefix_upper_bound(prefix).expect("bound");
            assert!(inside.as_bytes() < bound.as_bytes(), "{prefix:?}");
            assert!(prefix.as_bytes() < bound.as_bytes(), "{prefix:?}");
        }
    }
}
