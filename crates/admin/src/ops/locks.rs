//! Account locks: `user.lock`, `user.unlock`.
//!
//! A locked account cannot log in (SASL `<account-disabled/>`, RFC 6120 §6.5.2) until the lock
//! ends or is lifted. On the running server a new lock also ends the account's sessions with
//! `<policy-violation/>`; without it, sessions still open elsewhere go on until they end.

use async_trait::async_trait;
use causerie_stanza::{StreamError, StreamErrorCondition};
use causerie_storage::users::MAX_LOCK_REASON_BYTES;
use causerie_storage::{AccountLock, LockChange};
use serde::{Deserialize, Serialize};

use super::users::AccountArgs;
use super::{check_text, time};
use crate::accounts;
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(UserLock).add(UserUnlock);
}

/// The longest lock `minutes` may ask for: ten years (a longer one is a lock until lifted).
pub const MAX_LOCK_MINUTES: u32 = 10 * 366 * 24 * 60;

/// A lock as shown: the stored lock, its times in RFC 3339, and whether it holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Unix seconds.
    pub locked_at: i64,
    /// `locked_at` in RFC 3339, UTC.
    pub locked: String,
    /// Unix seconds; `None` for a lock until lifted.
    pub until: Option<i64>,
    /// `until` in RFC 3339, UTC.
    pub until_time: Option<String>,
    pub reason: String,
    /// `compliance` for a lock a rule set, else the administrator's name.
    pub locked_by: String,
    /// Whether the lock holds now (an expired lock stays shown until lifted or replaced).
    pub holds: bool,
}

impl LockInfo {
    pub fn new(lock: &AccountLock, now: i64) -> LockInfo {
        LockInfo {
            locked_at: lock.locked_at,
            locked: time(lock.locked_at),
            until: lock.until,
            until_time: lock.until.map(time),
            reason: lock.reason.clone(),
            locked_by: lock.locked_by.clone(),
            holds: lock.holds_at(now),
        }
    }

    /// `locked until 2026-01-01T10:00:00Z by compliance: reason`, or `lock expired at …`.
    pub fn describe(&self) -> String {
        let when = match &self.until_time {
            Some(t) if self.holds => format!("locked until {t}"),
            Some(t) => format!("lock expired at {t}"),
            None => "locked until unlocked".to_owned(),
        };
        let why = if self.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", self.reason)
        };
        format!("{when} (set {} by {}){why}", self.locked, self.locked_by)
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Arguments of `user.lock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockArgs {
    pub jid: String,
    /// For how long; `None` until lifted with `user.unlock`.
    #[serde(default)]
    pub minutes: Option<u32>,
    /// Why, kept with the lock and in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The result of `user.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    pub jid: String,
    pub lock: LockInfo,
    /// Sessions of the account that the running server closed.
    pub sessions_closed: usize,
}

/// `user.lock`: locks an account, replacing any lock it had.
pub struct UserLock;

#[async_trait]
impl Operation for UserLock {
    type Args = LockArgs;
    type Output = Locked;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.lock",
            "lock an account for a time or until unlocked: logins are refused",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &LockArgs) -> String {
        args.jid.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        actor: &Actor,
        args: LockArgs,
    ) -> Result<Done<Locked>, AdminError> {
        let jid = accounts::account_jid(&ctx.config, &args.jid)?;
        if let Some(m) = args.minutes
            && !(1..=MAX_LOCK_MINUTES).contains(&m)
        {
            return Err(AdminError::bad_input(format!(
                "minutes must be between 1 and {MAX_LOCK_MINUTES}; leave it out for a lock until unlocked"
            )));
        }
        let reason = args.reason.unwrap_or_default().trim().to_owned();
        check_text("reason", &reason, MAX_LOCK_REASON_BYTES)?;
        let at = now();
        let lock = AccountLock {
            locked_at: at,
            until: args.minutes.map(|m| at + i64::from(m) * 60),
            reason,
            locked_by: actor.name.clone(),
        };
        let node = jid.node().unwrap_or_default();
        ctx.storage
            .users
            .lock_user(node, jid.domain(), &lock, LockChange::Replace)
            .await?;
        let closed = ctx.live.as_ref().map_or(0, |live| {
            let err = StreamError::new(StreamErrorCondition::PolicyViolation)
                .with_text("the account was locked by an administrator");
            live.core.registry.close_account(&jid, &err).len()
        });
        let info = LockInfo::new(&lock, at);
        let mut detail = info.describe();
        if closed > 0 {
            detail.push_str(&format!("; {closed} session(s) closed"));
        }
        Ok(Done::new(
            Locked {
                jid: jid.to_string(),
                lock: info,
                sessions_closed: closed,
            },
            detail,
        ))
    }
}

/// The result of `user.unlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlocked {
    pub jid: String,
    /// Whether the account had a lock (holding or expired).
    pub was_locked: bool,
}

/// `user.unlock`: lifts an account's lock.
pub struct UserUnlock;

#[async_trait]
impl Operation for UserUnlock {
    type Args = AccountArgs;
    type Output = Unlocked;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "user.unlock",
            "lift an account's lock",
            true,
            false,
            Permission::Admin,
        )
    }

    fn subject(&self, args: &AccountArgs) -> String {
        args.jid.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: AccountArgs,
    ) -> Result<Done<Unlocked>, AdminError> {
        let jid = accounts::account_jid(&ctx.config, &args.jid)?;
        let node = jid.node().unwrap_or_default();
        let before = ctx.storage.users.user_lock(node, jid.domain()).await?;
        let was_locked = ctx.storage.users.unlock_user(node, jid.domain()).await?;
        let detail = match (&before, was_locked) {
            (Some(l), true) => format!("lock lifted (was {})", LockInfo::new(l, now()).describe()),
            _ => "the account was not locked".to_owned(),
        };
        Ok(Done::new(
            Unlocked {
                jid: jid.to_string(),
                was_locked,
            },
            detail,
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use causerie_config::Config;
    use causerie_core::{CoreBuilder, Outbound, SessionHandle};
    use causerie_jid::FullJid;
    use causerie_storage::{AuditFilter, Storage};
    use serde_json::json;

    use super::*;
    use crate::ops::users::{UserDetails, UserEntry};
    use crate::{ErrorKind, Live};

    fn config() -> Config {
        let mut c = Config::default();
        c.server.domains = vec!["localhost".into()];
        c.auth.scram_iterations = 4096;
        c
    }

    fn admin() -> Actor {
        Actor::new("unix:ops", None, Permission::Admin)
    }

    async fn add(reg: &Registry, ctx: &Context, jid: &str) {
        reg.execute(
            ctx,
            &admin(),
            "user.add",
            json!({"jid": jid, "password": "pw"}),
        )
        .await
        .expect("add");
    }

    #[tokio::test]
    async fn a_lock_is_set_shown_lifted_and_audited() {
        let reg = Registry::standard();
        let storage = Storage::memory();
        let ctx = Context::offline(storage.clone(), config());
        add(&reg, &ctx, "alice@localhost").await;
        add(&reg, &ctx, "bob@localhost").await;
        let before = now();
        let done: Locked = serde_json::from_str(
            &reg.execute(
                &ctx,
                &admin(),
                "user.lock",
                json!({"jid": "Alice@localhost", "minutes": 90, "reason": " phishing "}),
            )
            .await
            .expect("lock"),
        )
        .expect("decode");
        assert_eq!(done.jid, "alice@localhost");
        assert_eq!(done.sessions_closed, 0, "no server, no session");
        let until = done.lock.until.expect("timed");
        assert!((before + 5400..=now() + 5400).contains(&until));
        assert_eq!(
            (done.lock.reason.as_str(), done.lock.locked_by.as_str()),
            ("phishing", "unix:ops")
        );
        assert!(done.lock.holds);
        let stored = storage
            .users
            .user_lock("alice", "localhost")
            .await
            .unwrap()
            .expect("stored");
        assert_eq!(stored.until, Some(until));

        let list: Vec<UserEntry> = serde_json::from_str(
            &reg.execute(&ctx, &admin(), "user.list", json!(null))
                .await
                .expect("list"),
        )
        .expect("decode");
        let locks: Vec<(&str, bool)> = list
            .iter()
            .map(|u| (u.jid.as_str(), u.lock.as_ref().is_some_and(|l| l.holds)))
            .collect();
        assert_eq!(locks, [("alice@localhost", true), ("bob@localhost", false)]);
        let raw = reg
            .execute(&ctx, &admin(), "user.show", json!({"jid": "bob@localhost"}))
            .await
            .expect("show");
        assert!(!raw.contains("lock"), "no lock, no field: {raw}");
        let shown: UserDetails = serde_json::from_str(
            &reg.execute(
                &ctx,
                &admin(),
                "user.show",
                json!({"jid": "alice@localhost"}),
            )
            .await
            .expect("show"),
        )
        .expect("decode");
        assert!(
            shown
                .lock
                .as_ref()
                .is_some_and(|l| l.describe().contains("phishing")),
            "{shown:?}"
        );

        // Until unlocked, replacing the timed lock.
        let done: Locked = serde_json::from_str(
            &reg.execute(
                &ctx,
                &admin(),
                "user.lock",
                json!({"jid": "alice@localhost"}),
            )
            .await
            .expect("lock"),
        )
        .expect("decode");
        assert_eq!(done.lock.until, None);
        assert!(done.lock.describe().starts_with("locked until unlocked"));

        for bad in [
            json!({"jid": "alice@localhost", "minutes": 0}),
            json!({"jid": "alice@localhost", "minutes": MAX_LOCK_MINUTES + 1}),
            json!({"jid": "alice@localhost", "reason": "a\u{0}b"}),
            json!({"jid": "alice@localhost", "reason": "r".repeat(MAX_LOCK_REASON_BYTES + 1)}),
            json!({"jid": "alice@elsewhere.example"}),
        ] {
            let e = reg
                .execute(&ctx, &admin(), "user.lock", bad.clone())
                .await
                .expect_err("refused");
            assert_eq!(e.kind, ErrorKind::BadInput, "{bad}: {e:?}");
        }
        let e = reg
            .execute(
                &ctx,
                &admin(),
                "user.lock",
                json!({"jid": "nobody@localhost"}),
            )
            .await
            .expect_err("no account");
        assert_eq!(e.kind, ErrorKind::NotFound);

        let done: Unlocked = serde_json::from_str(
            &reg.execute(
                &ctx,
                &admin(),
                "user.unlock",
                json!({"jid": "alice@localhost"}),
            )
            .await
            .expect("unlock"),
        )
        .expect("decode");
        assert!(done.was_locked);
        assert_eq!(
            storage.users.user_lock("alice", "localhost").await.unwrap(),
            None
        );
        let done: Unlocked = serde_json::from_str(
            &reg.execute(
                &ctx,
                &admin(),
                "user.unlock",
                json!({"jid": "alice@localhost"}),
            )
            .await
            .expect("unlock"),
        )
        .expect("decode");
        assert!(!done.was_locked);

        let events = storage
            .audit
            .list(&AuditFilter {
                action_prefix: Some("user.".into()),
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        let summary: Vec<(&str, &str)> = events
            .iter()
            .filter(|e| e.action.contains("lock"))
            .map(|e| (e.action.as_str(), e.outcome.as_str()))
            .collect();
        assert_eq!(&summary[..2], [("user.lock", "ok"), ("user.lock", "ok")]);
        assert_eq!(
            &summary[summary.len() - 2..],
            [("user.unlock", "ok"), ("user.unlock", "ok")]
        );
        let first = events.iter().find(|e| e.action == "user.lock").unwrap();
        assert!(first.detail.contains("phishing"), "{first:?}");
        assert!(
            events
                .iter()
                .any(|e| e.action == "user.unlock" && e.detail.starts_with("lock lifted")),
            "{events:?}"
        );
    }

    #[tokio::test]
    async fn on_the_running_server_a_lock_ends_the_sessions() {
        let reg = Registry::standard();
        let core = CoreBuilder::new(["localhost".to_owned()]).build();
        let mut inboxes = Vec::new();
        for (i, jid) in ["alice@localhost/a", "alice@localhost/b", "bob@localhost/c"]
            .iter()
            .enumerate()
        {
            let (h, rx) = SessionHandle::new(i as u64 + 1, FullJid::parse(jid).unwrap(), None, 8);
            assert!(matches!(
                core.registry.bind(h.clone(), 8),
                causerie_core::BindOutcome::Bound
            ));
            inboxes.push((h, rx));
        }
        let storage = Storage::memory();
        let ctx = Context::live(storage.clone(), config(), Arc::new(Live::new(core, None)));
        add(&reg, &ctx, "alice@localhost").await;
        let done: Locked = serde_json::from_str(
            &reg.execute(
                &ctx,
                &admin(),
                "user.lock",
                json!({"jid": "alice@localhost", "minutes": 5}),
            )
            .await
            .expect("lock"),
        )
        .expect("decode");
        assert_eq!(done.sessions_closed, 2);
        for (h, rx) in &mut inboxes {
            let closed = matches!(
                rx.try_recv(),
                Ok(Outbound::Close(e)) if e.condition == StreamErrorCondition::PolicyViolation
            );
            assert_eq!(closed, h.jid().node() == Some("alice"), "{}", h.jid());
        }
    }
}
