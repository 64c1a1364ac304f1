//! Account locks set by `terminate` with `lock_minutes`: the account is locked in the user
//! store (never shortening a lock already in force), every session it still has is ended, and
//! the lock goes to the audit log. Logins are refused while the lock holds (the client
//! listener checks it).

use std::sync::Arc;

use causerie_core::Core;
use causerie_jid::BareJid;
use causerie_stanza::{StreamError, StreamErrorCondition as SE};
use causerie_storage::{AccountLock, AuditStore, LockChange, NewAuditEvent, UserStore};

/// Who the store records as having set the lock.
pub const LOCKED_BY: &str = "compliance";

/// `30 minutes`, `2 hours`, `1 day`.
pub fn duration_words(minutes: u32) -> String {
    let (n, unit) = match minutes {
        m if m > 0 && m % 1440 == 0 => (m / 1440, "day"),
        m if m > 0 && m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// What the rule that ended a session says about the lock.
pub(super) struct Cause {
    pub rule_id: String,
    pub category: String,
    pub description: String,
}

/// Locks `account` for `minutes` from `now` (Unix seconds), ends its sessions and writes the
/// audit record; a failure is logged and audited.
pub(super) async fn lock_account(
    core: Arc<Core>,
    users: Arc<dyn UserStore>,
    audit: Arc<dyn AuditStore>,
    account: BareJid,
    minutes: u32,
    now: i64,
    cause: Cause,
) {
    let lock = AccountLock {
        locked_at: now,
        until: Some(now.saturating_add(i64::from(minutes) * 60)),
        reason: format!(
            "compliance rule {} ({}) ended a session",
            cause.rule_id, cause.category
        ),
        locked_by: LOCKED_BY.to_owned(),
    };
    let node = account.node().unwrap_or_default();
    let (outcome, detail) = match users
        .lock_user(node, account.domain(), &lock, LockChange::KeepLonger)
        .await
    {
        Ok(in_force) => {
            let text = if in_force == lock {
                format!(
                    "Your account is locked for {} by the company rule \"{}\" ({}).",
                    duration_words(minutes),
                    cause.description,
                    cause.category
                )
            } else {
                "Your account is locked.".to_owned()
            };
            // Sessions opened before the lock was stored, and the account's other resources.
            let err = StreamError::new(SE::PolicyViolation).with_text(text);
            core.registry.close_account(&account, &err);
            tracing::info!(account = %account, minutes, rule = %cause.rule_id, "account locked");
            let until = match in_force.until {
                Some(t) => crate::rfc3339::format(t),
                None => "it is unlocked".to_owned(),
            };
            let detail = if in_force == lock {
                format!(
                    "locked for {} until {until} by rule {} ({}); its sessions ended",
                    duration_words(minutes),
                    cause.rule_id,
                    cause.category
                )
            } else {
                format!(
                    "rule {} ({}) asked for a lock of {}; the lock already in force (until \
                     {until}, by {}) lasts longer and stays; its sessions ended",
                    cause.rule_id,
                    cause.category,
                    duration_words(minutes),
                    in_force.locked_by
                )
            };
            ("ok", detail)
        }
        Err(e) => {
            tracing::error!(account = %account, error = %e, "cannot lock an account");
            (
                "failed",
                format!(
                    "rule {} ({}) asked for a lock of {}: {e}",
                    cause.rule_id,
                    cause.category,
                    duration_words(minutes)
                ),
            )
        }
    };
    let event = NewAuditEvent {
        at: now,
        actor: LOCKED_BY.to_owned(),
        action: "compliance.lock".to_owned(),
        subject: account.to_string(),
        outcome: outcome.to_owned(),
        detail,
        remote_addr: None,
    };
    if let Err(e) = audit.append(&event).await {
        tracing::warn!(error = %e, "cannot write an audit record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(1), "1 minute");
        assert_eq!(duration_words(45), "45 minutes");
        assert_eq!(duration_words(60), "1 hour");
        assert_eq!(duration_words(90), "90 minutes");
        assert_eq!(duration_words(180), "3 hours");
        assert_eq!(duration_words(1440), "1 day");
        assert_eq!(duration_words(3 * 1440), "3 days");
    }
}
