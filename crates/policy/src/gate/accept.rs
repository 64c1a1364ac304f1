//! Accepting and declining, whichever way the answer came (§5.2, §7): the checks in the order
//! the extension gives, the receipt written at the end of the chain, and the release of the
//! account's restricted sessions (§5.5).

use std::sync::Arc;

use causerie_core::{Core, Event, Origin, SessionHandle, flags};
use causerie_stanza::{
    ErrorType, StanzaError, StanzaErrorCondition as Cond, StreamError, StreamErrorCondition as SE,
};
use causerie_storage::policy::is_hash;
use causerie_storage::{PolicyVersion, StoreError};
use causerie_xml::Element;

use super::{Inner, Mode, address, wire};
use crate::receipt::{ReceiptFields, SignedReceipt, next_link, sign};

/// How an acceptance was given (§5.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Extension,
    Chat,
    Adhoc,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Extension => "extension",
            Method::Chat => "chat",
            Method::Adhoc => "adhoc",
        }
    }
}

/// Why a version cannot be accepted or declined.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The version is missing or not 64 lowercase hex digits.
    BadVersion,
    /// No version in force, or nothing pending (the text says which).
    NothingToAccept(String),
    /// Never published for the account's domain or for every domain.
    NotPublished,
    /// Published, but not the version in force (carried here).
    NotCurrent(PolicyVersion),
    /// The store failed.
    Store,
}

impl Refusal {
    /// The stanza error of §7. `not_current_text` is the text of the `<conflict/>`.
    pub fn to_error(&self, not_current_text: &str) -> StanzaError {
        match self {
            Refusal::BadVersion => StanzaError::new(Cond::BadRequest)
                .with_text("The version must be given as 64 lowercase hexadecimal digits."),
            Refusal::NothingToAccept(text) => {
                StanzaError::new(Cond::UnexpectedRequest).with_text(text.as_str())
            }
            Refusal::NotPublished => StanzaError::new(Cond::ItemNotFound)
                .with_text("No usage policy with that version was published for your domain."),
            Refusal::NotCurrent(current) => wire::not_current(&current.hash, not_current_text),
            Refusal::Store => StanzaError::new(Cond::InternalServerError)
                .with_type(ErrorType::Wait)
                .with_text("The acceptance could not be recorded; nothing changed. Try again."),
        }
    }
}

pub(crate) const NOT_CURRENT: &str = "That version of the usage policy is not the one in force.";

/// §7's checks for `<accept/>` and `<decline/>`: the version named is the one in force and it is
/// pending for this session. Returns that version.
pub(crate) async fn check(
    inner: &Inner,
    session: &SessionHandle,
    named: Option<&str>,
) -> Result<PolicyVersion, Refusal> {
    let named = named.filter(|v| is_hash(v)).ok_or(Refusal::BadVersion)?;
    let account = session.jid().to_bare();
    let domain = account.domain();
    let user = account.node().unwrap_or_default();
    let store = |e: StoreError| {
        tracing::warn!(error = %e, jid = %account, "cannot read the usage policy");
        Refusal::Store
    };
    let current = inner
        .store
        .current(domain, Inner::now())
        .await
        .map_err(store)?
        .ok_or_else(|| Refusal::NothingToAccept("No usage policy is in force.".to_owned()))?;
    if current.hash != named {
        let published = inner
            .store
            .versions()
            .await
            .map_err(store)?
            .iter()
            .any(|v| v.hash == named && v.domain.as_deref().is_none_or(|d| d == domain));
        return Err(if published {
            Refusal::NotCurrent(current)
        } else {
            Refusal::NotPublished
        });
    }
    let pending = match inner.opts.mode {
        Mode::EverySession => session.info.flag(flags::RESTRICTED),
        Mode::Once => inner
            .store
            .acceptance(user, domain, &current.hash)
            .await
            .map_err(store)?
            .is_none(),
    };
    if !pending {
        return Err(Refusal::NothingToAccept(format!(
            "Nothing to accept: {} (version {}) was already accepted.",
            current.title,
            wire::short(&current.hash)
        )));
    }
    Ok(current)
}

/// Writes the receipt of `session` accepting `v` (one database write, §5.2.3–4). The caller
/// checked the version.
pub(crate) async fn write_receipt(
    inner: &Inner,
    session: &SessionHandle,
    v: &PolicyVersion,
    method: Method,
) -> Result<SignedReceipt, Refusal> {
    let jid = session.jid();
    let client = inner.with_state(session.id(), |st| st.client_name());
    let _one_at_a_time = inner.append.lock().await;
    // Another process (the admin tool, another node) may take a position between the read and
    // the write; the store refuses the stale one and the next attempt reads again.
    for _ in 0..8 {
        let last = inner.store.last_receipt().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot read the end of the receipt chain");
            Refusal::Store
        })?;
        let last = last.map(SignedReceipt::from);
        let (seq, prev_hash) = next_link(last.as_ref());
        let signed = sign(
            ReceiptFields {
                seq,
                username: jid.node().unwrap_or_default().to_owned(),
                domain: jid.domain().to_owned(),
                resource: jid.resource().to_owned(),
                policy_hash: v.hash.clone(),
                method: method.as_str().to_owned(),
                accepted_at: Inner::now(),
                remote_addr: address(session.info.peer),
                client: client.clone(),
                prev_hash,
            },
            &inner.key,
        );
        let f = &signed.fields;
        let row = crate::rows::new_receipt(&signed);
        match inner.store.append_receipt(&row).await {
            Ok(_) => {
                crate::metrics::gate(crate::metrics::GateEvent::Accepted);
                tracing::info!(jid = %jid, version = wire::short(&v.hash), method = method.as_str(), seq = f.seq, "usage policy accepted");
                return Ok(signed);
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => {
                tracing::warn!(error = %e, jid = %jid, "cannot store a policy receipt");
                return Err(Refusal::Store);
            }
        }
    }
    tracing::warn!(jid = %jid, "the receipt chain kept moving; acceptance not recorded");
    Err(Refusal::Store)
}

/// After a receipt: the account's other restricted sessions are released and told (§5.5); in
/// every-session mode only the accepting session is. The accepting session itself is released
/// by the caller once its answer is queued ([`release`]).
pub(crate) async fn release_others(
    inner: &Arc<Inner>,
    core: &Arc<Core>,
    accepter: &SessionHandle,
    v: &PolicyVersion,
    receipt: &SignedReceipt,
) {
    if inner.opts.mode == Mode::EverySession {
        return;
    }
    let others: Vec<SessionHandle> = core
        .registry
        .resources(&accepter.jid().to_bare())
        .into_iter()
        .filter(|s| s.id() != accepter.id() && s.info.flag(flags::RESTRICTED))
        .collect();
    for s in others {
        inner.tell(
            core,
            &s,
            &format!(
                "The usage policy ({}, version {}) was accepted from another session ({}). You can now use the service.",
                v.title,
                wire::short(&v.hash),
                accepter.jid().resource()
            ),
            vec![wire::receipt(receipt, &inner.fingerprint)],
        );
        release(inner, core, &s).await;
    }
}

/// Lifts the restriction of one session at once, so that nothing it sends from now on is
/// refused: the time limit is disarmed. Returns the presence it sent meanwhile, for
/// [`after_release`]; `None` when the session was not restricted.
pub(crate) fn lift(inner: &Inner, session: &SessionHandle) -> Option<Option<Element>> {
    if !session.info.set_flag(flags::RESTRICTED, false) {
        return None;
    }
    let (held, timer) = inner.with_state(session.id(), |st| {
        st.prompted = None;
        (st.held.take(), st.timer.take())
    });
    if let Some(t) = timer {
        t.abort();
    }
    Some(held)
}

/// What follows a [`lift`]: the held presence is processed now, and the messages kept for the
/// account are delivered (§5.4).
pub(crate) async fn after_release(
    core: &Arc<Core>,
    session: &SessionHandle,
    held: Option<Element>,
) {
    if let Some(presence) = held
        && let Err(e) = core
            .process(&Origin::Session(session.clone()), presence)
            .await
    {
        session.close(e);
        return;
    }
    core.emit(Event::SessionReleased(session));
}

/// [`lift`] then [`after_release`].
pub(crate) async fn release(inner: &Arc<Inner>, core: &Arc<Core>, session: &SessionHandle) {
    if let Some(held) = lift(inner, session) {
        after_release(core, session, held).await;
    }
}

/// The stream error that ends a session that declined (§4.6).
pub(crate) fn declined() -> StreamError {
    StreamError::new(SE::PolicyViolation).with_text("The usage policy was declined.")
}

/// Logs a decline; the caller closes the session after its answer.
pub(crate) fn log_decline(session: &SessionHandle, v: &PolicyVersion, via: Method) {
    crate::metrics::gate(crate::metrics::GateEvent::Declined);
    tracing::info!(jid = %session.jid(), version = wire::short(&v.hash), method = via.as_str(), "usage policy declined");
}
