//! Client sessions on the running server: `session.list`, `session.show`, `session.kick`.

use async_trait::async_trait;
use causerie_core::{SessionHandle, flags};
use causerie_jid::Jid;
use causerie_stanza::{StreamError, StreamErrorCondition};
use serde::{Deserialize, Serialize};

use super::{check_text, time};
use crate::{Actor, AdminError, Context, Done, OpInfo, Operation, Permission, Registry};

pub fn register(reg: &mut Registry) {
    reg.add(SessionList).add(SessionShow).add(SessionKick);
}

/// Sessions `session.list` returns when the call sets no limit.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// Most sessions one `session.list` returns.
pub const MAX_LIST_LIMIT: usize = 100_000;
/// Longest reason of a kick, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;
/// The reason a kick gives when the caller gives none.
pub const DEFAULT_REASON: &str = "disconnected by an administrator";

/// A bound session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionEntry {
    /// The server's number for the session, unique while it runs.
    pub id: u64,
    /// The full JID.
    pub jid: String,
    /// The client's address.
    pub peer: Option<String>,
    /// When the session was bound, Unix seconds and RFC 3339.
    pub connected_at: i64,
    pub connected: String,
    /// Whether it sent available presence (RFC 6121 §4.2), and with which priority.
    pub available: bool,
    pub priority: i8,
    /// Stanzas waiting in its outbound queue.
    pub queued: usize,
    /// The features the session turned on and the state it is in: `roster`, `carbons`,
    /// `inactive` (XEP-0352), `restricted` (usage policy not accepted yet), `overloaded`.
    pub flags: Vec<String>,
}

pub(crate) fn entry(s: &SessionHandle) -> SessionEntry {
    let info = &s.info;
    let mut names = Vec::new();
    for (bit, name) in [
        (flags::ROSTER_REQUESTED, "roster"),
        (flags::CARBONS, "carbons"),
        (flags::CSI_INACTIVE, "inactive"),
        (flags::RESTRICTED, "restricted"),
    ] {
        if info.flag(bit) {
            names.push(name.to_owned());
        }
    }
    if info.is_overloaded() {
        names.push("overloaded".to_owned());
    }
    SessionEntry {
        id: info.id,
        jid: info.jid.to_string(),
        peer: info.peer.map(|p| p.to_string()),
        connected_at: info.connected_at,
        connected: time(info.connected_at),
        available: info.is_available(),
        priority: info.priority(),
        queued: s.queued(),
        flags: names,
    }
}

/// Arguments of `session.list`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ListArgs {
    /// Only the sessions of this account (a bare JID) or of this domain.
    pub filter: Option<String>,
    /// At most this many ([`DEFAULT_LIST_LIMIT`] when unset, at most [`MAX_LIST_LIMIT`]).
    pub limit: Option<usize>,
}

/// The result of `session.list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionListing {
    /// Sessions that matched, before the limit.
    pub total: usize,
    /// The first of them by JID, at most the limit.
    pub sessions: Vec<SessionEntry>,
}

/// `session.list`.
pub struct SessionList;

#[async_trait]
impl Operation for SessionList {
    type Args = ListArgs;
    type Output = SessionListing;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "session.list",
            "list client sessions, by JID",
            false,
            true,
            Permission::Read,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: ListArgs,
    ) -> Result<Done<SessionListing>, AdminError> {
        let live = ctx.require_live("session.list")?;
        let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT);
        if limit > MAX_LIST_LIMIT {
            return Err(AdminError::bad_input(format!(
                "the limit is at most {MAX_LIST_LIMIT}"
            )));
        }
        let filter = args
            .filter
            .as_deref()
            .map(|f| Jid::parse(f.trim()).map_err(|e| AdminError::bad_input(format!("{f:?}: {e}"))))
            .transpose()?;
        let mut all: Vec<SessionHandle> = match &filter {
            Some(j) if j.node().is_some() => live.core.registry.resources(&j.to_bare()),
            Some(j) => live
                .core
                .registry
                .all()
                .into_iter()
                .filter(|s| s.jid().domain() == j.domain())
                .collect(),
            None => live.core.registry.all(),
        };
        all.sort_by(|a, b| a.jid().as_str().cmp(b.jid().as_str()));
        let total = all.len();
        let sessions = all.iter().take(limit).map(entry).collect();
        Ok(Done::new(SessionListing { total, sessions }, ""))
    }
}

/// Arguments naming a session by its full JID.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShowArgs {
    pub jid: String,
}

fn find_full(ctx: &Context, jid: &str) -> Result<SessionHandle, AdminError> {
    let live = ctx.require_live("session.show")?;
    let parsed =
        Jid::parse(jid.trim()).map_err(|e| AdminError::bad_input(format!("{jid:?}: {e}")))?;
    let full = parsed.try_into_full().map_err(|_| {
        AdminError::bad_input(format!(
            "{jid:?} is not a full JID (user@domain/resource); `session list` shows them"
        ))
    })?;
    live.core
        .registry
        .get(&full)
        .ok_or_else(|| AdminError::not_found(format!("no session {full}")))
}

/// `session.show`.
pub struct SessionShow;

#[async_trait]
impl Operation for SessionShow {
    type Args = ShowArgs;
    type Output = SessionEntry;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "session.show",
            "show one client session",
            false,
            true,
            Permission::Read,
        )
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: ShowArgs,
    ) -> Result<Done<SessionEntry>, AdminError> {
        Ok(Done::new(entry(&find_full(ctx, &args.jid)?), ""))
    }
}

/// Arguments of `session.kick`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KickArgs {
    /// A full JID (that session) or a bare JID (every session of the account).
    pub jid: String,
    /// Sent to the client in the stream error's `<text/>`; [`DEFAULT_REASON`] when unset.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The result of `session.kick`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kicked {
    /// The full JIDs of the sessions closed.
    pub closed: Vec<String>,
    pub reason: String,
}

/// `session.kick`: closes sessions with `<policy-violation/>` (RFC 6120 §4.9.3.14: the server
/// ends the stream by local policy) and the reason as the error's text; the client sees both
/// before the stream closes.
pub struct SessionKick;

#[async_trait]
impl Operation for SessionKick {
    type Args = KickArgs;
    type Output = Kicked;

    fn info(&self) -> OpInfo {
        OpInfo::new(
            "session.kick",
            "disconnect a session (full JID) or every session of an account (bare JID), with a reason",
            true,
            true,
            Permission::Operate,
        )
    }

    fn subject(&self, args: &KickArgs) -> String {
        args.jid.clone()
    }

    async fn run(
        &self,
        ctx: &Context,
        _actor: &Actor,
        args: KickArgs,
    ) -> Result<Done<Kicked>, AdminError> {
        let live = ctx.require_live("session.kick")?;
        let reason = match args.reason {
            Some(r) if !r.trim().is_empty() => r,
            _ => DEFAULT_REASON.to_owned(),
        };
        check_text("reason", &reason, MAX_REASON_BYTES)?;
        let jid = Jid::parse(args.jid.trim())
            .map_err(|e| AdminError::bad_input(format!("{:?}: {e}", args.jid)))?;
        if jid.node().is_none() {
            return Err(AdminError::bad_input(format!(
                "{jid} is not an account or a session (user@domain or user@domain/resource)"
            )));
        }
        let err = StreamError::new(StreamErrorCondition::PolicyViolation).with_text(&reason);
        let closed: Vec<String> = match jid.clone().try_into_full() {
            Ok(full) => live
                .core
                .registry
                .get(&full)
                .map(|s| {
                    s.close(err);
                    full.to_string()
                })
                .into_iter()
                .collect(),
            Err(bare) => live
                .core
                .registry
                .close_account(&bare.to_bare(), &err)
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        if closed.is_empty() {
            return Err(AdminError::not_found(format!("no session of {jid}")));
        }
        let detail = format!("closed {}; reason: {reason}", closed.join(" "));
        Ok(Done::new(Kicked { closed, reason }, detail))
    }
}
