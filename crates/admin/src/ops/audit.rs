//! The audit log: `audit.list`. An export reads it page after page with `after_id`.

use async_trait::async_trait;
use causerie_storage::AuditFilter;
use serde::{Deserialize, Serialize};

use super::time;
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(AuditList);
}

/// Most events one call returns.
pub const MAX_LIMIT: u64 = 100_000;

/// Arguments of `audit.list`; every condition set must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListArgs {
    /// Events at or after this time (Unix seconds).
    pub since: Option<i64>,
    /// Events at or before this time (Unix seconds).
    pub until: Option<i64>,
    /// Events whose action starts with this text.
    pub action: Option<String>,
    /// Events about exactly this subject.
    pub subject: Option<String>,
    /// At most this many (1000 when unset, at most [`MAX_LIMIT`]).
    pub limit: Option<u64>,
    /// Events after this id: the last id of the previous page.
    pub after_id: Option<i64>,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix seconds, and the same in RFC 3339 (UTC).
    pub at: i64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
    pub remote_addr: Option<String>,
}

/// `audit.list`: events oldest first.
pub struct AuditList;

#[async_trait]
impl Operation for AuditList {
    type Args = ListArgs;
    type Output = Vec<AuditEntry>;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "audit.list",
            "read the audit log, oldest first, a page at a time",
            false,
            false,
            Permission::Admin,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: ListArgs,
    ) -> Result<Done<Vec<AuditEntry>>, AdminError> {
        if args.limit.is_some_and(|l| l > MAX_LIMIT) {
            return Err(AdminError::bad_input(format!(
                "the limit is at most {MAX_LIMIT}; read further pages with after_id"
            )));
        }
        let filter = AuditFilter {
            since: args.since,
            until: args.until,
            action_prefix: args.action,
            subject: args.subject,
            limit: args.limit,
            after_id: args.after_id,
        };
        let events = ctx.storage.audit.list(&filter).await?;
        Ok(Done::new(
            events
                .into_iter()
                .map(|e| AuditEntry {
                    id: e.id,
                    at: e.at,
                    time: time(e.at),
                    actor: e.actor,
                    action: e.action,
                    subject: e.subject,
                    outcome: e.outcome,
                    detail: e.detail,
                    remote_addr: e.remote_addr,
                })
                .collect(),
            "",
        ))
    }
}
