//! The IQs of the extension (§4.4–4.7): read a version, accept, decline, list one's receipts.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{IqHandler, IqRequest, IqTarget, ModuleRegistry, Origin, SessionHandle, flags};
use causerie_stanza::{IqType, StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::policy::is_hash;
use causerie_xml::Element;

use super::accept::{self, Method, NOT_CURRENT};
use super::{AfterAnswer, Inner, wire};
use crate::receipt::SignedReceipt;

#[derive(Clone, Copy)]
enum Request {
    Policy,
    Receipts,
    Accept,
    Decline,
}

struct PolicyIq {
    inner: Arc<Inner>,
    request: Request,
}

pub(super) fn register(inner: &Arc<Inner>, reg: &mut ModuleRegistry) {
    for (iq_type, name, request) in [
        (IqType::Get, "policy", Request::Policy),
        (IqType::Get, "receipts", Request::Receipts),
        (IqType::Set, "accept", Request::Accept),
        (IqType::Set, "decline", Request::Decline),
    ] {
        reg.iq(
            iq_type,
            wire::NS,
            name,
            IqTarget::Both,
            Arc::new(PolicyIq {
                inner: inner.clone(),
                request,
            }),
        );
    }
}

#[async_trait]
impl IqHandler for PolicyIq {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        let inner = &self.inner;
        // §5.2.5: only accounts of the addressed domain, through their own sessions; an IQ
        // without `to` is addressed to the sender's own account, which is the same here.
        let session = match req.origin {
            Origin::Session(s) if s.jid().domain() == req.to.domain() => s,
            _ => {
                return Err(StanzaError::new(Cond::Forbidden)
                    .with_text("Only accounts of this domain can use its usage policy."));
            }
        };
        if req.to.node().is_some() && req.to.to_bare() != session.jid().to_bare() {
            return Err(StanzaError::new(Cond::ServiceUnavailable));
        }
        let _ = inner.core.set(Arc::downgrade(req.core));
        let version = req.payload.attr("version");
        match self.request {
            Request::Policy => self.policy(session, version).await.map(Some),
            Request::Receipts => self.receipts(session).await.map(Some),
            Request::Accept => {
                let v = accept::check(inner, session, version)
                    .await
                    .map_err(|r| r.to_error(NOT_CURRENT))?;
                let receipt = accept::write_receipt(inner, session, &v, Method::Extension)
                    .await
                    .map_err(|r| r.to_error(NOT_CURRENT))?;
                accept::release_others(inner, req.core, session, &v, &receipt).await;
                self.after_answer(req.stanza, session, AfterAnswer::Release);
                Ok(Some(wire::receipt(&receipt, &inner.fingerprint)))
            }
            Request::Decline => {
                let v = accept::check(inner, session, version)
                    .await
                    .map_err(|r| r.to_error(NOT_CURRENT))?;
                accept::log_decline(session, &v, Method::Extension);
                self.after_answer(req.stanza, session, AfterAnswer::Close(accept::declined()));
                Ok(None)
            }
        }
    }
}

impl PolicyIq {
    /// Arranges for `due` once the answer to `iq` is queued. The delivery filter acts only on
    /// restricted sessions, so a declining session that was not restricted becomes so.
    fn after_answer(&self, iq: &Element, session: &SessionHandle, due: AfterAnswer) {
        let id = iq.attr("id").unwrap_or_default().to_owned();
        if matches!(due, AfterAnswer::Close(_)) {
            session.info.set_flag(flags::RESTRICTED, true);
        }
        if !session.info.flag(flags::RESTRICTED) {
            // Not restricted and accepting: nothing to release.
            return;
        }
        self.inner
            .with_state(session.id(), |st| st.after_answer = Some((id, due)));
    }

    /// §4.4: the version named, or the one in force.
    async fn policy(
        &self,
        session: &SessionHandle,
        version: Option<&str>,
    ) -> Result<Element, StanzaError> {
        let domain = session.jid().domain();
        let store_err = |e| {
            tracing::warn!(error = %e, "cannot read usage policy versions");
            StanzaError::new(Cond::InternalServerError)
        };
        let found = match version {
            Some(v) if !is_hash(v) => {
                return Err(StanzaError::new(Cond::BadRequest)
                    .with_text("The version must be given as 64 lowercase hexadecimal digits."));
            }
            Some(v) => {
                let all = self.inner.store.versions().await.map_err(store_err)?;
                // The domain's own publication first, then one for every domain.
                let mine = all
                    .iter()
                    .find(|p| p.hash == v && p.domain.as_deref() == Some(domain))
                    .or_else(|| all.iter().find(|p| p.hash == v && p.domain.is_none()));
                mine.cloned()
            }
            None => self
                .inner
                .store
                .current(domain, Inner::now())
                .await
                .map_err(store_err)?,
        };
        found.map(|v| wire::policy(&v)).ok_or_else(|| {
            StanzaError::new(Cond::ItemNotFound).with_text(if version.is_some() {
                "No usage policy with that version was published for your domain."
            } else {
                "No usage policy is in force."
            })
        })
    }

    /// §4.7: the account's receipts, oldest first.
    async fn receipts(&self, session: &SessionHandle) -> Result<Element, StanzaError> {
        let account = session.jid().to_bare();
        let receipts = self.inner.account_receipts(&account).await.map_err(|e| {
            tracing::warn!(error = %e, jid = %account, "cannot list policy receipts");
            StanzaError::new(Cond::InternalServerError)
        })?;
        let mut list = Element::new("receipts", wire::NS);
        for r in receipts {
            list.push_child(wire::receipt(
                &SignedReceipt::from(r),
                &self.inner.fingerprint,
            ));
        }
        Ok(list)
    }
}
