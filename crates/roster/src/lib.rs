//! causerie-roster owns rosters, presence subscriptions and presence distribution, as a module of
//! the core: RFC 6121 §2 (roster management: get, set, remove, pushes to interested resources,
//! versioning §2.6), §3 (subscriptions: request, approval, cancellation, unsubscription, every
//! state and transition of Appendix A, pre-approval §3.4, requests kept for the next login) and
//! §4 (presence: initial presence and probes §4.2–4.3, later broadcasts §4.4, unavailable
//! presence §4.5, directed presence and its cleanup §4.6, priority §4.7.2.3, presence to a full
//! JID §8.5.3).
//!
//! It takes over every presence stanza that a local session sends and every one addressed to a
//! local account, in one pipeline stage. It knows nothing of transports: a contact is a bare JID
//! that is either a local account or lives on another server, and the same rules apply to both;
//! stanzas for other servers go through the core's remote route, and stanzas from them arrive
//! through the core's pipeline with `Origin::Remote`. Storage is reached through
//! `causerie_storage::roster::RosterStore`, and `GroupStore` for the shared roster groups
//! ([`shared`]: administrator-managed groups whose members see each other, merged into their
//! rosters and presence).

mod engine;
pub mod error;
pub mod items;
pub mod shared;
pub mod state;

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{
    Core, Event, EventListener, IqHandler, IqRequest, IqTarget, Module, ModuleRegistry, Origin,
    Reload, Stage, StageContext, Verdict, flags,
};
use causerie_stanza::{
    IqType, PresenceType, StanzaError, StanzaErrorCondition as Cond, StanzaKind, ns,
};
use causerie_storage::Storage;
use causerie_xml::Element;
use tokio::sync::oneshot;

use crate::engine::{Inner, Job};
pub use crate::error::RosterError;
pub use crate::items::{NS_PRE_APPROVAL, NS_ROSTER, NS_ROSTERVER};

/// Default most items in one roster.
pub const DEFAULT_MAX_ITEMS: usize = 2000;
/// Default most entities one session may have sent directed available presence to without them
/// being subscribed to the account (each is told when the session goes away, RFC 6121 §4.6.3).
pub const DEFAULT_MAX_DIRECTED_PER_SESSION: usize = 256;
/// Where the presence stage sits in the inbound pipeline: after the stages that may refuse a
/// stanza (policy, rate limits, compliance), which use lower numbers.
pub const STAGE_PRIORITY: i32 = 1000;

/// Limits of the module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RosterConfig {
    /// Most items in one roster (a roster set or a subscription that would add one more gets
    /// `resource-constraint`). Also bounds the subscription requests kept for one account.
    pub max_items: usize,
    /// Most entities one session may have sent directed presence to (see
    /// [`DEFAULT_MAX_DIRECTED_PER_SESSION`]); past it, directed presence gets
    /// `resource-constraint`.
    pub max_directed_per_session: usize,
}

impl Default for RosterConfig {
    fn default() -> Self {
        RosterConfig {
            max_items: DEFAULT_MAX_ITEMS,
            max_directed_per_session: DEFAULT_MAX_DIRECTED_PER_SESSION,
        }
    }
}

/// The roster and presence module. Register it with
/// `ModuleRegistry::add_module(Roster::new(storage, max_items))`.
pub struct Roster {
    inner: Arc<Inner>,
}

impl Roster {
    /// A module with at most `max_items` items per roster (at least 1) and the default limit on
    /// directed presence.
    pub fn new(storage: Storage, max_items: usize) -> Arc<Roster> {
        Roster::with_config(
            storage,
            RosterConfig {
                max_items,
                ..RosterConfig::default()
            },
        )
    }

    pub fn with_config(storage: Storage, config: RosterConfig) -> Arc<Roster> {
        Arc::new(Roster {
            inner: Arc::new(Inner::new(
                storage,
                config.max_items.max(1),
                config.max_directed_per_session.max(1),
            )),
        })
    }

    /// Waits until every roster and presence job queued so far, and everything they queued in
    /// turn, is done. For tests and for an orderly shutdown.
    pub async fn settle(&self) {
        self.inner.settle().await;
    }
}

impl Module for Roster {
    fn name(&self) -> &'static str {
        "roster"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(
            IqType::Get,
            NS_ROSTER,
            "query",
            IqTarget::Account,
            self.clone(),
        );
        reg.iq(
            IqType::Set,
            NS_ROSTER,
            "query",
            IqTarget::Account,
            self.clone(),
        );
        reg.stage(STAGE_PRIORITY, self.clone());
        reg.listener(self.clone());
        reg.drain(self.clone());
        reg.reload(self.clone());
        // RFC 6121 §2.6.1 and §3.4.1: versioning and pre-approval are announced as stream features.
        reg.stream_feature(Arc::new(|_| Some(Element::new("ver", NS_ROSTERVER))));
        reg.stream_feature(Arc::new(|_| Some(Element::new("sub", NS_PRE_APPROVAL))));
    }
}

/// The shared roster groups ([`shared`]) are read again from the store when the admin
/// operations change them, at start and on SIGHUP.
#[async_trait]
impl Reload for Roster {
    fn topic(&self) -> &'static str {
        shared::TOPIC
    }

    async fn reload(&self, core: &Arc<Core>) -> Result<(), String> {
        self.inner
            .reload_shared(core)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait::async_trait]
impl causerie_core::Drain for Roster {
    async fn drain(&self) {
        self.settle().await;
    }
}

fn bad_presence_type() -> StanzaError {
    StanzaError::new(Cond::BadRequest).with_text("unknown presence type")
}

impl Stage for Roster {
    fn name(&self) -> &'static str {
        "roster-presence"
    }

    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        if StanzaKind::of(stanza) != Some(StanzaKind::Presence) {
            return Verdict::Pass;
        }
        let to = match causerie_stanza::to_jid(stanza) {
            Ok(to) => to,
            Err(e) => return Verdict::Reject(e),
        };
        let job = match ctx.origin {
            Origin::Session(session) => {
                let Some(ptype) = PresenceType::of(stanza) else {
                    return Verdict::Reject(bad_presence_type());
                };
                let stanza = std::mem::replace(stanza, Element::new("presence", ns::CLIENT));
                Job::FromSession {
                    session: session.clone(),
                    stanza,
                    ptype,
                    to,
                }
            }
            Origin::Remote { .. } | Origin::Server => {
                // Only presence for a local account is ours; the router handles the rest.
                let Some(to) =
                    to.filter(|t| t.node().is_some() && ctx.core.is_local_domain(t.domain()))
                else {
                    return Verdict::Pass;
                };
                let Some(ptype) = PresenceType::of(stanza) else {
                    return Verdict::Reject(bad_presence_type());
                };
                let Ok(Some(from)) = causerie_stanza::from_jid(stanza) else {
                    // Nobody to answer or to attribute it to.
                    return Verdict::Handled;
                };
                let stanza = std::mem::replace(stanza, Element::new("presence", ns::CLIENT));
                Job::Inbound {
                    to,
                    from,
                    ptype,
                    stanza,
                }
            }
        };
        match self.inner.enqueue_checked(ctx.core, job) {
            Ok(()) => Verdict::Handled,
            Err(refused) => {
                // Put the stanza back so that the core can answer it with the error.
                if let Job::FromSession { stanza: s, .. } | Job::Inbound { stanza: s, .. } =
                    *refused.job
                {
                    *stanza = s;
                }
                Verdict::Reject(refused.error.to_stanza_error())
            }
        }
    }
}

impl EventListener for Roster {
    fn on_event(&self, core: &Arc<Core>, event: &Event<'_>) {
        if let Event::SessionEnded(session) = event {
            // Session ends are always taken: each session ends once, so they are bounded by the
            // number of sessions, and skipping one would leave contacts seeing a ghost.
            if let Err(e) = self.inner.enqueue(
                core,
                Job::Ended {
                    session: (*session).clone(),
                },
                false,
            ) {
                tracing::warn!(jid = %session.jid(), error = %e, "could not queue presence cleanup");
            }
        }
    }
}

#[async_trait]
impl IqHandler for Roster {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let owner = req.to.to_bare();
        // RFC 6121 §2.1.3, §2.1.5: a roster is its owner's business only.
        if req.from.to_bare() != owner {
            return Err(StanzaError::new(Cond::Forbidden));
        }
        let (reply, answer) = oneshot::channel();
        let job = match req.iq_type {
            IqType::Get => {
                // §2.1.6: asking for the roster makes the session an interested resource.
                if let Some(session) = req.origin.session() {
                    session.info.set_flag(flags::ROSTER_REQUESTED, true);
                }
                Job::RosterGet {
                    owner,
                    ver: req.payload.attr("ver").map(str::to_owned),
                    reply,
                }
            }
            IqType::Set => {
                let change =
                    items::parse_set(&owner, req.payload).map_err(|e| e.to_stanza_error())?;
                Job::RosterSet {
                    owner,
                    change,
                    reply,
                }
            }
            IqType::Result | IqType::Error => return Err(StanzaError::new(Cond::BadRequest)),
        };
        self.inner
            .enqueue(req.core, job, true)
            .map_err(|e| e.to_stanza_error())?;
        answer
            .await
            .map_err(|_| StanzaError::new(Cond::InternalServerError))?
    }
}
