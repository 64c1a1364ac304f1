//! XEP-0012 Last Activity: to the server, its uptime (§5); to an account's bare JID, 0 while the
//! account has an available resource, else the seconds since its last session ended (§3). The
//! logout time is kept under the account data key `last` when the account's last session ends.
//!
//! §3 allows the answer only to entities entitled to the account's presence: the owner, and the
//! contacts whose subscription in the account's stored roster is `from` or `both` (RFC 6121 §3).
//! Everyone else gets `forbidden`.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use causerie_core::{
    Core, Event, EventListener, IqHandler, IqRequest, IqTarget, Module, ModuleRegistry,
};
use causerie_jid::BareJid;
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::{AccountDataStore, Storage};
use causerie_xml::Element;

use crate::common::{datetime, store_error};

pub const NS: &str = "jabber:iq:last";
/// Account data key holding the Unix time (decimal seconds) of the last logout.
pub const KEY: &str = "last";

pub struct LastActivity {
    store: Arc<dyn AccountDataStore>,
    roster: Arc<dyn causerie_storage::RosterStore>,
    started: Instant,
}

impl LastActivity {
    pub fn new(storage: &Storage) -> Self {
        LastActivity {
            store: storage.account_data.clone(),
            roster: storage.roster.clone(),
            started: Instant::now(),
        }
    }

    /// XEP-0012 §4: the account's last activity is for those allowed to see its presence, that
    /// is, contacts with a `from` or `both` subscription in the account's roster (RFC 6121 §3).
    async fn may_see_presence(
        &self,
        account: &BareJid,
        requester: &BareJid,
    ) -> Result<bool, StanzaError> {
        let Some(user) = account.node() else {
            return Ok(false);
        };
        let item = self
            .roster
            .item(user, account.domain(), requester.as_str())
            .await
            .map_err(|e| store_error("reading the roster", &e))?;
        Ok(item.is_some_and(|i| {
            matches!(
                i.subscription,
                causerie_storage::Subscription::From | causerie_storage::Subscription::Both
            )
        }))
    }

    fn answer(seconds: u64) -> Element {
        Element::new("query", NS).with_attr("seconds", seconds.to_string())
    }
}

impl Module for LastActivity {
    fn name(&self) -> &'static str {
        "last"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Get, NS, "query", IqTarget::Both, self.clone());
        reg.feature(IqTarget::Server, NS);
        reg.listener(self);
    }
}

#[async_trait]
impl IqHandler for LastActivity {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let Some(user) = req.to.node() else {
            // §5: the server's uptime.
            return Ok(Some(Self::answer(self.started.elapsed().as_secs())));
        };
        let account = req.to.to_bare();
        if req.from.to_bare() != account
            && !self.may_see_presence(&account, &req.from.to_bare()).await?
        {
            return Err(StanzaError::new(Cond::Forbidden));
        }
        let online = req
            .core
            .registry
            .with_resources(&account, |list| list.iter().any(|s| s.info.is_available()));
        if online {
            return Ok(Some(Self::answer(0)));
        }
        let stored = self
            .store
            .get(user, account.domain(), KEY)
            .await
            .map_err(|e| store_error("reading last activity", &e))?;
        let Some(logout) = stored.and_then(|v| v.trim().parse::<i64>().ok()) else {
            return Err(StanzaError::new(Cond::ItemNotFound)
                .with_text("no logout has been recorded for this account"));
        };
        let seconds = datetime::unix_now().saturating_sub(logout).max(0);
        Ok(Some(Self::answer(u64::try_from(seconds).unwrap_or(0))))
    }
}

impl EventListener for LastActivity {
    fn on_event(&self, core: &Arc<Core>, event: &Event<'_>) {
        let Event::SessionEnded(session) = event else {
            return;
        };
        let account = session.jid().to_bare();
        // The session is already unbound: the account is offline once no other session remains.
        if !core.registry.with_resources(&account, <[_]>::is_empty) {
            return;
        }
        let Some(user) = account.node().map(str::to_owned) else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(jid = %account, "no runtime to record the logout time on");
            return;
        };
        let store = self.store.clone();
        let domain = account.domain().to_owned();
        rt.spawn(async move {
            let now = datetime::unix_now().to_string();
            if let Err(e) = store.put(&user, &domain, KEY, &now).await {
                tracing::warn!(error = %e, user = %user, domain = %domain, "cannot record the logout time");
            }
        });
    }
}
