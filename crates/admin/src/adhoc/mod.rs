//! XEP-0133 Service Administration: the operations of this crate as ad-hoc commands
//! (XEP-0050) on the server's JID, for the accounts named in `admin.admins`.
//!
//! Each command ([`Node`]) is a profile of operations of the [`Registry`]: a data form to fill
//! in (XEP-0004, `FORM_TYPE` `http://jabber.org/protocol/admin`), then the same call the admin
//! API makes, as [`Actor::xmpp`] with the `admin` permission. Permissions, argument checks and
//! the audit log are therefore those of every other door into the registry: a change made here
//! is recorded with the actor `xmpp:BARE-JID` and the session's full JID as its origin.
//!
//! Only administrators' own sessions see the commands (XEP-0050 §2.2) and may run them
//! (XEP-0133 §6); the commands module answers `forbidden` to anybody else. A started command
//! waits for its form at most [`SESSION_TIMEOUT`], and an administrator account has at most
//! [`MAX_PENDING_PER_ADMIN`] waiting at once (a new one pushes out the oldest). A session id is
//! good for the session that started it and for that command only; anything else is
//! `bad-request` with `<bad-sessionid/>` (XEP-0050 §4.6).
//!
//! The module joins the core before the running server's [`Context`] exists, since that
//! context holds the core: [`ServiceAdmin::attach`] hands it over once built, and the module
//! keeps it weakly, so that the two do not keep each other alive.

mod form;
mod nodes;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use causerie_core::{COMMANDS_NS, Command, Core, IqRequest, Module, ModuleRegistry};
use causerie_jid::{BareJid, Jid};
use causerie_stanza::{ErrorType, StanzaError, StanzaErrorCondition as Cond};
use causerie_xml::Element;
use tokio::time::Instant;

use crate::{Actor, AdminError, Context, ErrorKind, Permission, Registry};
use form::Submission;
use nodes::{Answer, Caller, Failure};
pub use nodes::{DISABLE_REASON, MAX_LISTED, MAX_TARGETS, Node};

/// The namespace of XEP-0133: the `FORM_TYPE` of its forms and the prefix of its nodes.
pub const NS_ADMIN: &str = "http://jabber.org/protocol/admin";
/// How long a started command waits for its form.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Started commands one administrator account may have waiting for their form at once.
pub const MAX_PENDING_PER_ADMIN: usize = 16;

/// The registry and the context of the running server, once they exist.
struct Backend {
    registry: Arc<Registry>,
    ctx: Weak<Context>,
}

/// A command that sent its form and waits for it (XEP-0050 §3.4).
#[derive(Debug)]
struct Pending {
    id: String,
    node: Node,
    /// The full JID of the session that started it: only that one may go on with it.
    requester: String,
    started: Instant,
}

/// The service administration commands, as one module.
pub struct ServiceAdmin {
    admins: HashSet<BareJid>,
    backend: OnceLock<Backend>,
    /// Waiting commands by administrator account, oldest first.
    pending: Mutex<HashMap<BareJid, VecDeque<Pending>>>,
    /// Makes session ids of this run differ from those of earlier runs.
    run: String,
    next_id: AtomicU64,
}

impl ServiceAdmin {
    /// The commands for these administrator accounts (`admin.admins`).
    pub fn new(admins: impl IntoIterator<Item = BareJid>) -> ServiceAdmin {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        ServiceAdmin {
            admins: admins.into_iter().collect(),
            backend: OnceLock::new(),
            pending: Mutex::new(HashMap::new()),
            run: format!("{started:x}"),
            next_id: AtomicU64::new(1),
        }
    }

    /// Hands over the registry and the context of the running server, the same ones the admin
    /// API serves. Until then the commands answer that the server is not ready.
    pub fn attach(&self, registry: Arc<Registry>, ctx: &Arc<Context>) {
        let backend = Backend {
            registry,
            ctx: Arc::downgrade(ctx),
        };
        if self.backend.set(backend).is_err() {
            tracing::warn!("service administration commands attached twice; the first stays");
        }
    }

    /// Whether `requester` is a session of an administrator account of this server.
    pub fn is_admin(&self, core: &Core, requester: &Jid) -> bool {
        requester.node().is_some()
            && requester.resource().is_some()
            && core.is_local_domain(requester.domain())
            && self.admins.contains(&requester.to_bare())
    }

    fn new_id(&self, node: Node) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{}:{}-{n}", node.short(), self.run)
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<BareJid, VecDeque<Pending>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `p` for `account`, after dropping what has expired, and the oldest when the
    /// account already has as many as it may.
    fn keep(&self, account: &BareJid, p: Pending) {
        let now = Instant::now();
        let mut all = self.pending();
        all.retain(|_, list| {
            list.retain(|p| now.duration_since(p.started) < SESSION_TIMEOUT);
            !list.is_empty()
        });
        let list = all.entry(account.clone()).or_default();
        while list.len() >= MAX_PENDING_PER_ADMIN {
            list.pop_front();
        }
        list.push_back(p);
    }

    /// Takes out the waiting command `id` of `node` started by `requester`, unless it expired.
    fn take(&self, account: &BareJid, requester: &str, id: &str, node: Node) -> Option<Pending> {
        let mut all = self.pending();
        let list = all.get_mut(account)?;
        let at = list
            .iter()
            .position(|p| p.id == id && p.node == node && p.requester == requester)?;
        let p = list.remove(at)?;
        if list.is_empty() {
            all.remove(account);
        }
        (p.started.elapsed() < SESSION_TIMEOUT).then_some(p)
    }

    /// Puts back a command whose submission can be corrected and sent again.
    fn put_back(&self, account: &BareJid, p: Pending) {
        let mut all = self.pending();
        let list = all.entry(account.clone()).or_default();
        if list.len() < MAX_PENDING_PER_ADMIN {
            list.push_back(p);
        }
    }

    /// One request for `node` (XEP-0050 §3.4): a new command is answered with its form (or at
    /// once when it has none); a waiting one is cancelled or completed with the form.
    async fn execute(&self, node: Node, req: IqRequest<'_>) -> Result<Element, StanzaError> {
        // XEP-0133 §6: administrators only, from their own session. The commands module has
        // checked the requester; a stanza that did not come from a local session is refused.
        let Some(session) = req.origin.session() else {
            return Err(StanzaError::new(Cond::Forbidden).with_type(ErrorType::Cancel));
        };
        let requester = session.jid().to_string();
        let account = session.jid().to_bare();
        let cmd = req.payload;
        let action = cmd.attr("action").unwrap_or("execute");
        let Some(id) = cmd.attr("sessionid") else {
            if action != "execute" {
                return Err(bad("bad-action", "start the command with execute"));
            }
            return self.start(node, &account, &requester, cmd).await;
        };
        let Some(pending) = self.take(&account, &requester, id, node) else {
            return Err(bad(
                "bad-sessionid",
                "this command is not running (unknown, finished or expired); start it again",
            ));
        };
        match action {
            "cancel" => return Ok(command(node, id, "canceled")),
            "prev" | "next" => {
                self.put_back(&account, pending);
                return Err(bad(
                    "bad-action",
                    "this command has one stage: complete it or cancel it",
                ));
            }
            _ => {}
        }
        let values = match form::submission(cmd) {
            Ok(Some(Submission::Values(v))) => v,
            Ok(Some(Submission::Cancel)) => return Ok(command(node, id, "canceled")),
            Ok(None) => {
                self.put_back(&account, pending);
                return Err(bad(
                    "bad-payload",
                    "submit the form to complete the command",
                ));
            }
            Err(why) => {
                self.put_back(&account, pending);
                return Err(bad("bad-payload", &why));
            }
        };
        match self.finish(node, id, &account, &requester, &values).await {
            Ok(done) => Ok(done),
            Err((e, retry)) => {
                if retry {
                    self.put_back(&account, pending);
                }
                Err(e)
            }
        }
    }

    /// A new command: its form, kept waiting for the answer; or, for a command without a form
    /// or a request that already carries the filled-in form, the result at once.
    async fn start(
        &self,
        node: Node,
        account: &BareJid,
        requester: &str,
        cmd: &Element,
    ) -> Result<Element, StanzaError> {
        let id = self.new_id(node);
        let Some(form) = node.form() else {
            let none = form::Values::default();
            return self
                .finish(node, &id, account, requester, &none)
                .await
                .map_err(|(e, _)| e);
        };
        match form::submission(cmd) {
            Ok(Some(Submission::Values(v))) => {
                return self
                    .finish(node, &id, account, requester, &v)
                    .await
                    .map_err(|(e, _)| e);
            }
            Ok(Some(Submission::Cancel)) => return Ok(command(node, &id, "canceled")),
            Ok(None) => {}
            Err(why) => return Err(bad("bad-payload", &why)),
        }
        self.keep(
            account,
            Pending {
                id: id.clone(),
                node,
                requester: requester.to_owned(),
                started: Instant::now(),
            },
        );
        Ok(command(node, &id, "executing")
            .with_child(
                Element::new("actions", COMMANDS_NS)
                    .with_attr("execute", "complete")
                    .with_child(Element::new("complete", COMMANDS_NS)),
            )
            .with_child(form))
    }

    /// Runs the command on `values`. On failure, the stanza error and whether the
    /// administrator may correct the form and submit it again.
    async fn finish(
        &self,
        node: Node,
        id: &str,
        account: &BareJid,
        requester: &str,
        values: &form::Values,
    ) -> Result<Element, (StanzaError, bool)> {
        let not_ready = || {
            (
                StanzaError::new(Cond::ServiceUnavailable)
                    .with_type(ErrorType::Wait)
                    .with_text("the server is starting or stopping; try again"),
                false,
            )
        };
        let backend = self.backend.get().ok_or_else(not_ready)?;
        let ctx = backend.ctx.upgrade().ok_or_else(not_ready)?;
        let caller = Caller {
            registry: &backend.registry,
            ctx: &ctx,
            actor: Actor::xmpp(account.as_str(), requester, Permission::Admin),
        };
        match node.run(&caller, values).await {
            Ok(answer) => {
                tracing::debug!(node = node.short(), admin = %requester, "service administration command completed");
                Ok(completed(node, id, answer))
            }
            Err(Failure::Form(why)) => Err((bad("bad-payload", &why), true)),
            Err(Failure::Op(e)) => {
                let retry = e.kind == ErrorKind::BadInput;
                Err((stanza_error(&e), retry))
            }
        }
    }
}

/// The `<command/>` of an answer.
fn command(node: Node, sessionid: &str, status: &str) -> Element {
    Element::new("command", COMMANDS_NS)
        .with_attr("node", node.uri())
        .with_attr("sessionid", sessionid)
        .with_attr("status", status)
}

/// A completed command: its note, then its result form (XEP-0050 §3.4).
fn completed(node: Node, id: &str, answer: Answer) -> Element {
    let mut c = command(node, id, "completed");
    if let Some((kind, text)) = answer.note {
        c.push_child(
            Element::new("note", COMMANDS_NS)
                .with_attr("type", kind.as_str())
                .with_text(text),
        );
    }
    if let Some(form) = answer.form {
        c.push_child(form);
    }
    c
}

/// `bad-request` with one of the conditions of XEP-0050 §4.6.
fn bad(app: &str, text: &str) -> StanzaError {
    StanzaError::new(Cond::BadRequest)
        .with_text(text)
        .with_app(Element::new(app, COMMANDS_NS))
}

/// The stanza error of an operation's error (XEP-0133 §5), with its message as the text.
pub fn stanza_error(e: &AdminError) -> StanzaError {
    let condition = match e.kind {
        ErrorKind::NotFound => Cond::ItemNotFound,
        ErrorKind::Exists | ErrorKind::Conflict => Cond::Conflict,
        ErrorKind::BadInput => Cond::BadRequest,
        ErrorKind::Unavailable => Cond::ServiceUnavailable,
        ErrorKind::Forbidden => Cond::Forbidden,
        ErrorKind::Unauthorized => Cond::NotAuthorized,
        ErrorKind::Internal => Cond::InternalServerError,
    };
    StanzaError::new(condition).with_text(e.message.as_str())
}

/// One command of the profile, registered under its node.
struct AdminCommand {
    node: Node,
    admin: Arc<ServiceAdmin>,
}

#[async_trait]
impl Command for AdminCommand {
    fn allowed(&self, core: &Core, requester: &Jid) -> bool {
        self.admin.is_admin(core, requester)
    }

    async fn execute(&self, req: IqRequest<'_>) -> Result<Element, StanzaError> {
        self.admin.execute(self.node, req).await
    }
}

impl Module for ServiceAdmin {
    fn name(&self) -> &'static str {
        "service-admin"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        for node in Node::ALL {
            let cmd = AdminCommand {
                node,
                admin: self.clone(),
            };
            reg.command(&node.uri(), node.label(), Arc::new(cmd));
        }
    }
}

#[cfg(test)]
mod tests;
