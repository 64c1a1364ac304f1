//! The review of quarantined messages, carried out by the running server.
//!
//! A quarantined message is held in its evidence record (pending review), apart from the
//! payload, which may be sealed to the compliance officer's key. A reviewer decides in the
//! store (`causeriectl review release|reject`), whether the server runs or not. The server
//! polls for decisions not carried out yet, claims each one (which marks it handled and
//! empties the held copy in one step, so that no restart and no second server delivers it
//! twice) and then:
//!
//! - released: routes the message, as it was held, to its original recipient (a local account
//!   or a remote one through federation), like any message of its sender, with a XEP-0203
//!   delay stamp of when it was sent. It does not pass the inbound stages again, so no rule
//!   holds it a second time; the sender is told it was delivered.
//! - rejected: tells the sender that the message was not delivered: a local sender gets a
//!   message from the policy address, a remote one the `policy-violation` error a blocked
//!   message gets.
//!
//! Either way an audit record says what was done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use causerie_core::{Core, Origin};
use causerie_jid::Jid;
use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::evidence::{REVIEW_REJECTED, REVIEW_RELEASED};
use causerie_storage::{AuditStore, EvidenceStore, NewAuditEvent, Storage, StoredEvidence};
use causerie_xml::Element;

use crate::gate::wire::{date_time_words, from_policy_address};

/// Decisions read per query.
const BATCH: u64 = 100;
/// XEP-0203 Delayed Delivery.
pub const NS_DELAY: &str = "urn:xmpp:delay";

/// The decisions to carry out, and what shutdown waits for.
pub(super) struct Reviews {
    evidence: Arc<dyn EvidenceStore>,
    audit: Arc<dyn AuditStore>,
    /// Localpart of the policy address, which writes to senders.
    localpart: String,
    /// Held while decisions are carried out: shutdown takes it to wait for them.
    busy: tokio::sync::Mutex<()>,
    stopping: AtomicBool,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Who sent the held message and to whom: from the message itself, else from the record
/// (whose account is the sender of an outgoing message and the recipient of an incoming one).
fn parties(r: &StoredEvidence, held: Option<&Element>) -> (String, String) {
    let account = format!("{}@{}", r.username, r.domain);
    let attr = |name: &str| {
        held.and_then(|m| m.attr(name))
            .and_then(|a| Jid::parse(a).ok())
            .map(|j| j.to_bare().to_string())
    };
    let (from, to) = if r.direction == "incoming" {
        (r.peer.clone(), account)
    } else {
        (account, r.peer.clone())
    };
    (attr("from").unwrap_or(from), attr("to").unwrap_or(to))
}

impl Reviews {
    pub(super) fn new(storage: &Storage, localpart: String) -> Reviews {
        Reviews {
            evidence: storage.evidence.clone(),
            audit: storage.audit.clone(),
            localpart,
            busy: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
        }
    }

    /// Carries out every decision not carried out yet; returns how many it carried out. A
    /// store error ends the round (the next one tries again).
    pub(super) async fn carry_out(&self, core: &Arc<Core>) -> usize {
        let _busy = self.busy.lock().await;
        let mut done = 0;
        while !self.stopping.load(Ordering::Acquire) {
            let batch = match self.evidence.unhandled_decisions(BATCH).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the review decisions; trying again later");
                    return done;
                }
            };
            let full = batch.len() as u64 == BATCH;
            let mut claimed_any = false;
            for r in batch {
                match self.evidence.claim_decision(r.seq, now_secs()).await {
                    Ok(Some(claimed)) => {
                        claimed_any = true;
                        self.carry_out_one(core, &claimed).await;
                        done += 1;
                    }
                    // Carried out meanwhile by another server on the same database.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(seq = r.seq, error = %e, "cannot claim a review decision; trying again later");
                        return done;
                    }
                }
            }
            if !full || !claimed_any {
                break;
            }
        }
        done
    }

    /// Stops carrying out decisions, after the ones in progress (at most until `deadline`).
    pub(super) async fn stop(&self, deadline: tokio::time::Instant) {
        self.stopping.store(true, Ordering::Release);
        if tokio::time::timeout_at(deadline, self.busy.lock())
            .await
            .is_err()
        {
            tracing::warn!("review decisions still being carried out at shutdown");
        }
    }

    async fn carry_out_one(&self, core: &Arc<Core>, r: &StoredEvidence) {
        let held = r.held.as_deref().and_then(|xml| {
            let limits = causerie_xml::Limits {
                max_stanza_bytes: xml.len().saturating_add(1),
                max_depth: 512,
                max_attributes: 2048,
                ..causerie_xml::Limits::default()
            };
            match Element::parse_with_limits(xml.as_bytes(), "", &limits) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(seq = r.seq, error = %e, "the held copy of a quarantined message does not parse");
                    None
                }
            }
        });
        let (sender, recipient) = parties(r, held.as_ref());
        let sent = date_time_words(r.created_at);
        let by = r.reviewed_by.as_deref().unwrap_or("a reviewer");
        match (r.review.as_deref(), held) {
            (Some(REVIEW_RELEASED), Some(mut message)) => {
                // XEP-0203 §3: who held it, and since when.
                message.push_child(
                    Element::new("delay", NS_DELAY)
                        .with_attr("from", r.domain.as_str())
                        .with_attr("stamp", crate::rfc3339::format(r.created_at))
                        .with_text("Held for compliance review"),
                );
                core.route(&Origin::Server, message).await;
                self.tell_local(
                    core,
                    &sender,
                    &format!(
                        "Your message to {recipient} of {sent}, held for review under the company rule {} ({}), was released by a reviewer and delivered.",
                        r.rule_id, r.category
                    ),
                )
                .await;
                tracing::info!(seq = r.seq, rule = %r.rule_id, "quarantined message released and delivered");
                self.audit(
                    "compliance.review.deliver",
                    r,
                    "ok",
                    format!(
                        "record {} released by {by}: delivered to {recipient}",
                        r.seq
                    ),
                )
                .await;
            }
            (Some(REVIEW_RELEASED), None) => {
                tracing::error!(
                    seq = r.seq,
                    "a released message has no held copy to deliver"
                );
                self.audit(
                    "compliance.review.deliver",
                    r,
                    "failed",
                    format!(
                        "record {} released by {by}: no held copy of the message, nothing delivered",
                        r.seq
                    ),
                )
                .await;
            }
            (Some(REVIEW_REJECTED), message) => {
                let text = format!(
                    "Your message to {recipient} of {sent} was not delivered: a reviewer rejected it under the company rule {} ({}).",
                    r.rule_id, r.category
                );
                let told = if self.is_local(core, &sender) {
                    self.tell_local(core, &sender, &text).await
                } else if let Some(m) = &message {
                    // A remote sender gets what a blocked message gets.
                    core.bounce(
                        m,
                        StanzaError::new(Cond::PolicyViolation).with_text(format!(
                            "Not delivered: rejected by a reviewer under the company rule {} ({}).",
                            r.rule_id, r.category
                        )),
                    );
                    true
                } else {
                    false
                };
                tracing::info!(seq = r.seq, rule = %r.rule_id, "quarantined message rejected");
                self.audit(
                    "compliance.review.notify",
                    r,
                    "ok",
                    format!(
                        "record {} rejected by {by}: not delivered to {recipient}; {}",
                        r.seq,
                        if told {
                            format!("{sender} told")
                        } else {
                            format!("{sender} could not be told")
                        }
                    ),
                )
                .await;
            }
            (state, _) => {
                // `claim_decision` hands out decided records only.
                tracing::error!(seq = r.seq, review = ?state, "a claimed record is not decided");
            }
        }
    }

    fn is_local(&self, core: &Core, bare: &str) -> bool {
        Jid::parse(bare).is_ok_and(|j| j.node().is_some() && core.is_local_domain(j.domain()))
    }

    /// A message from the policy address of the sender's domain, when the sender is a local
    /// account; kept offline when they are not connected. Whether it was sent.
    async fn tell_local(&self, core: &Arc<Core>, bare: &str, text: &str) -> bool {
        if !self.is_local(core, bare) {
            return false;
        }
        let Some((_, domain)) = bare.rsplit_once('@') else {
            return false;
        };
        let msg = from_policy_address(&self.localpart, domain, bare, text);
        core.route(&Origin::Server, msg).await;
        true
    }

    async fn audit(&self, action: &str, r: &StoredEvidence, outcome: &str, detail: String) {
        let event = NewAuditEvent {
            at: now_secs(),
            actor: "compliance".to_owned(),
            action: action.to_owned(),
            subject: r.seq.to_string(),
            outcome: outcome.to_owned(),
            detail,
            remote_addr: None,
        };
        if let Err(e) = self.audit.append(&event).await {
            tracing::warn!(error = %e, "cannot write an audit record");
        }
    }
}

/// Carries out the review decisions every `interval` until the core or the module is gone.
pub(super) async fn poll(
    reviews: std::sync::Weak<Reviews>,
    core: std::sync::Weak<Core>,
    interval: std::time::Duration,
) {
    loop {
        {
            let (Some(reviews), Some(core)) = (reviews.upgrade(), core.upgrade()) else {
                return;
            };
            if reviews.stopping.load(Ordering::Acquire) {
                return;
            }
            reviews.carry_out(&core).await;
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(direction: &str) -> StoredEvidence {
        StoredEvidence {
            seq: 1,
            created_at: 0,
            rule_id: "r".into(),
            category: "c".into(),
            actions: "quarantine".into(),
            username: "alice".into(),
            domain: "corp.example".into(),
            resource: "laptop".into(),
            peer: "bob@partner.example/phone".into(),
            direction: direction.into(),
            remote_addr: None,
            client: None,
            sealed: false,
            payload: None,
            payload_hash: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            signature: String::new(),
            purged_at: None,
            legal_hold: false,
            review: Some(REVIEW_RELEASED.into()),
            reviewed_by: None,
            reviewed_at: None,
            review_reason: None,
            held: None,
            handled_at: None,
        }
    }

    #[test]
    fn parties_come_from_the_message_else_from_the_record() {
        assert_eq!(
            parties(&record("outgoing"), None),
            (
                "alice@corp.example".into(),
                "bob@partner.example/phone".into()
            )
        );
        assert_eq!(
            parties(&record("incoming"), None).0,
            "bob@partner.example/phone"
        );
        let m = Element::new("message", "jabber:client")
            .with_attr("from", "Eve@Partner.Example/x")
            .with_attr("to", "alice@corp.example/laptop");
        assert_eq!(
            parties(&record("incoming"), Some(&m)),
            ("eve@partner.example".into(), "alice@corp.example".into())
        );
    }
}
