//! The table of operations and the one way to run them: look the name up, check the caller's
//! permission and whether the operation needs the running server, decode the arguments, run,
//! and record every attempt at a change in the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use causerie_storage::NewAuditEvent;
use causerie_storage::audit::{MAX_DETAIL_BYTES, MAX_FIELD_BYTES};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Actor, AdminError, Context, ErrorKind, Permission};

/// What the registry and its callers know of an operation before running it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpInfo {
    /// Dotted, from general to specific: `user.add`, `session.kick`. Also the audit action.
    pub name: String,
    /// One line for listings and help.
    pub summary: String,
    /// Whether it changes something; every call of such an operation is audited.
    pub mutates: bool,
    /// Whether it needs the running server (sessions, statistics). Operations that do not can
    /// run against the database alone, as `causeriectl` does when the server is down.
    pub needs_server: bool,
    /// The level the caller needs.
    pub permission: Permission,
}

impl OpInfo {
    pub fn new(
        name: &str,
        summary: &str,
        mutates: bool,
        needs_server: bool,
        permission: Permission,
    ) -> Self {
        OpInfo {
            name: name.to_owned(),
            summary: summary.to_owned(),
            mutates,
            needs_server,
            permission,
        }
    }
}

/// What a successful operation returns: its result, and the detail the audit log keeps when
/// it changed something (never a secret).
#[derive(Debug)]
pub struct Done<T> {
    pub output: T,
    pub detail: String,
}

impl<T> Done<T> {
    pub fn new(output: T, detail: impl Into<String>) -> Self {
        Done {
            output,
            detail: detail.into(),
        }
    }
}

/// One administrative operation, with typed arguments and result.
#[async_trait]
pub trait Operation: Send + Sync + 'static {
    /// Decoded from a JSON object; unknown fields are refused.
    type Args: DeserializeOwned + Send + 'static;
    type Output: Serialize + Send + 'static;

    fn info(&self) -> OpInfo;

    /// What the call is about, for the audit log (an account, a session); empty when nothing
    /// in particular.
    fn subject(&self, _args: &Self::Args) -> String {
        String::new()
    }

    async fn run(
        &self,
        ctx: &Context,
        actor: &Actor,
        args: Self::Args,
    ) -> Result<Done<Self::Output>, AdminError>;
}

/// The outcome of a call as the registry hands it over: the result serialized as JSON, in
/// the field order of the result type.
pub type Reply = Result<String, AdminError>;

/// An operation with its types erased, so that all of them live in one table.
#[async_trait]
trait Erased: Send + Sync {
    fn info(&self) -> OpInfo;
    async fn call(
        &self,
        ctx: &Context,
        actor: &Actor,
        args: serde_json::Value,
        audit: bool,
    ) -> Reply;
}

struct Typed<O>(O);

#[async_trait]
impl<O: Operation> Erased for Typed<O> {
    fn info(&self) -> OpInfo {
        self.0.info()
    }

    async fn call(
        &self,
        ctx: &Context,
        actor: &Actor,
        args: serde_json::Value,
        audit: bool,
    ) -> Reply {
        let name = self.0.info().name;
        let args: O::Args = match serde_json::from_value(args) {
            Ok(a) => a,
            Err(e) => {
                let err = AdminError::bad_input(format!("arguments of {name}: {e}"));
                if audit {
                    let _ = record(ctx, actor, &name, String::new(), Err(&err)).await;
                }
                return Err(err);
            }
        };
        let subject = self.0.subject(&args);
        let result = self.0.run(ctx, actor, args).await;
        let result = result.and_then(|done| {
            serde_json::to_string(&done.output)
                .map(|json| (json, done.detail))
                .map_err(|e| AdminError::internal(format!("encoding the result of {name}: {e}")))
        });
        if !audit {
            return result.map(|(json, _)| json);
        }
        match result {
            Ok((json, detail)) => {
                if let Err(e) = record(ctx, actor, &name, subject, Ok(detail)).await {
                    return Err(AdminError::internal(format!(
                        "the change was made, but recording it in the audit log failed: {e}"
                    )));
                }
                Ok(json)
            }
            Err(err) => {
                let _ = record(ctx, actor, &name, subject, Err(&err)).await;
                Err(err)
            }
        }
    }
}

/// Cuts `s` to at most `max` bytes, at a character boundary.
pub(crate) fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Appends one audit event for a call: `ok` with the operation's detail, or `refused` /
/// `error` with the error's message. A failure to write is logged and returned.
async fn record(
    ctx: &Context,
    actor: &Actor,
    action: &str,
    subject: String,
    outcome: Result<String, &AdminError>,
) -> Result<(), causerie_storage::StoreError> {
    let (outcome, detail) = match outcome {
        Ok(detail) => ("ok", detail),
        Err(e) if e.kind.is_refusal() => ("refused", e.message.clone()),
        Err(e) => ("error", e.message.clone()),
    };
    let event = NewAuditEvent {
        at: unix_now(),
        actor: truncate(actor.name.clone(), MAX_FIELD_BYTES),
        action: truncate(action.to_owned(), MAX_FIELD_BYTES),
        subject: truncate(subject, MAX_FIELD_BYTES),
        outcome: outcome.to_owned(),
        detail: truncate(detail, MAX_DETAIL_BYTES),
        remote_addr: actor.origin.clone().map(|o| truncate(o, MAX_FIELD_BYTES)),
    };
    let written = ctx.storage.audit.append(&event).await;
    if let Err(e) = &written {
        tracing::error!(error = %e, action, actor = %actor.name, "cannot write an audit record");
    }
    written.map(|_| ())
}

/// Every operation by name.
#[derive(Clone, Default)]
pub struct Registry {
    ops: BTreeMap<String, Arc<dyn Erased>>,
}

impl Registry {
    /// An empty table; [`Registry::standard`] has every operation of this crate.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds an operation; one added under a name already taken replaces it.
    pub fn add<O: Operation>(&mut self, op: O) -> &mut Self {
        let name = op.info().name;
        self.ops.insert(name, Arc::new(Typed(op)));
        self
    }

    /// The operations, by name.
    pub fn list(&self) -> Vec<OpInfo> {
        self.ops.values().map(|op| op.info()).collect()
    }

    pub fn info(&self, name: &str) -> Option<OpInfo> {
        self.ops.get(name).map(|op| op.info())
    }

    /// Runs `name` with `args` (a JSON object; `null` counts as `{}`) for `actor`.
    ///
    /// In order: an unknown name is `NotFound`; a caller below the operation's permission is
    /// `Forbidden`; an operation that needs the server is `Unavailable` without it; arguments
    /// that do not decode are `BadInput`. Every call of a mutating operation that got past the
    /// name, refused or not, leaves one audit event: action = the operation's name, actor and
    /// remote address from `actor`, outcome `ok`, `refused` or `error`.
    pub async fn execute(
        &self,
        ctx: &Context,
        actor: &Actor,
        name: &str,
        args: serde_json::Value,
    ) -> Reply {
        let Some(op) = self.ops.get(name) else {
            return Err(AdminError::not_found(format!(
                "no operation named {name:?}"
            )));
        };
        let info = op.info();
        let args = if args.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            args
        };
        if actor.granted < info.permission {
            let err = AdminError::new(
                ErrorKind::Forbidden,
                format!(
                    "{name} needs the {} permission; {} has {}",
                    info.permission, actor.name, actor.granted
                ),
            );
            if info.mutates {
                let _ = record(ctx, actor, name, String::new(), Err(&err)).await;
            }
            return Err(err);
        }
        if info.needs_server && ctx.live.is_none() {
            return Err(AdminError::unavailable(format!(
                "{name} needs the running server"
            )));
        }
        op.call(ctx, actor, args, info.mutates).await
    }
}
