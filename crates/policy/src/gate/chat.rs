//! The policy address (§5.6, §5.7, §6.1): a conversation that works in every client. Users
//! reply `ACCEPT code`, `DECLINE` or `MY POLICY`, or submit the form of the prompt.

use std::sync::Arc;

use causerie_core::{Core, SessionHandle, Verdict, flags};
use causerie_stanza::{MessageType, StanzaError, StanzaErrorCondition as Cond};
use causerie_storage::PolicyVersion;
use causerie_xml::Element;
use tokio::time::Instant;

use super::accept::{self, Method, Refusal};
use super::{Inner, wire};

const UNDERSTOOD: &str = "This address only understands ACCEPT followed by the code of the policy, DECLINE, and MY POLICY.";

/// A message a local session sent to a policy address: answered here, never routed.
pub(super) fn inbound(
    inner: &Arc<Inner>,
    core: &Arc<Core>,
    session: &SessionHandle,
    domain: &str,
    stanza: &Element,
) -> Verdict {
    let mtype = MessageType::of(stanza);
    if mtype == MessageType::Error {
        return Verdict::Handled;
    }
    if session.jid().domain() != domain
        || matches!(mtype, MessageType::Groupchat | MessageType::Headline)
    {
        return Verdict::Reject(StanzaError::new(Cond::ServiceUnavailable));
    }
    // §5.6.3: chat states and receipts alone get no answer.
    let has_form = stanza.get_child("x", wire::NS_DATA).is_some();
    if !has_form && stanza.get_child("body", stanza.ns()).is_none() {
        return Verdict::Handled;
    }
    if !take_allowance(inner, session) {
        tracing::debug!(jid = %session.jid(), "messages to the policy address over the limit, dropped");
        return Verdict::Handled;
    }
    // `REPORT …` is the compliance engine's (a user reporting a contact or a message), once the
    // session may talk at all.
    if !session.info.flag(flags::RESTRICTED)
        && !has_form
        && stanza
            .get_child("body", stanza.ns())
            .map(Element::text)
            .and_then(|b| b.split_whitespace().next().map(str::to_owned))
            .is_some_and(|w| w.eq_ignore_ascii_case("REPORT"))
    {
        return Verdict::Pass;
    }
    let inner = inner.clone();
    let core = core.clone();
    let session = session.clone();
    let stanza = stanza.clone();
    tokio::spawn(async move { answer(&inner, &core, &session, &stanza).await });
    Verdict::Handled
}

/// §5.6.7: a token bucket of `messages_per_minute` per session.
fn take_allowance(inner: &Inner, session: &SessionHandle) -> bool {
    let per_minute = f64::from(inner.opts.messages_per_minute.max(1));
    let now = Instant::now();
    inner.with_state(session.id(), |st| {
        let (tokens, last) = st.allowance.unwrap_or((per_minute, now));
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * per_minute / 60.0).min(per_minute);
        if refilled < 1.0 {
            st.allowance = Some((refilled, now));
            false
        } else {
            st.allowance = Some((refilled - 1.0, now));
            true
        }
    })
}

/// What a typed reply says (§5.7.1–5).
#[derive(Debug, PartialEq, Eq)]
enum Reply<'a> {
    Accept(&'a str),
    Decline,
    MyPolicy,
    Other,
}

fn parse(body: &str) -> Reply<'_> {
    let words: Vec<&str> = body.split_whitespace().collect();
    match words.as_slice() {
        [w] if w.eq_ignore_ascii_case("DECLINE") => Reply::Decline,
        [a, b] if a.eq_ignore_ascii_case("MY") && b.eq_ignore_ascii_case("POLICY") => {
            Reply::MyPolicy
        }
        [a, code] if a.eq_ignore_ascii_case("ACCEPT") => Reply::Accept(code),
        _ => Reply::Other,
    }
}

async fn answer(inner: &Arc<Inner>, core: &Arc<Core>, session: &SessionHandle, stanza: &Element) {
    let form = stanza
        .children()
        .filter(|c| c.is("x", wire::NS_DATA))
        .find_map(|x| match wire::submission(x) {
            Err(wire::FormError::NotOurs) => None,
            other => Some(other),
        });
    let Ok(pending) = inner.pending_for(session).await else {
        inner.tell(
            core,
            session,
            "The usage policy cannot be read right now; try again in a moment.",
            Vec::new(),
        );
        return;
    };
    // §5.7.6: a submitted form wins over the body.
    if let Some(form) = form {
        return match form {
            Ok(wire::Submission::Cancel) => {}
            Err(_) => match &pending {
                Some(v) => inner.tell(
                    core,
                    session,
                    &format!(
                        "The form did not say whether you accept the usage policy.\n{}",
                        wire::instruction(&v.hash)
                    ),
                    Vec::new(),
                ),
                None => nothing_pending(inner, core, session).await,
            },
            Ok(wire::Submission::Answer { version, accept }) => match &pending {
                None => nothing_pending(inner, core, session).await,
                // §5.8.2: only the version in force; any other gets the current prompt.
                Some(v) if version.as_deref() != Some(v.hash.as_str()) => {
                    inner.prompt(core, session, v)
                }
                Some(v) if accept => accept_version(inner, core, session, v).await,
                Some(v) => decline_version(inner, core, session, v).await,
            },
        };
    }
    let body = stanza
        .get_child("body", stanza.ns())
        .map(|b| b.text())
        .unwrap_or_default();
    match (parse(body.trim()), &pending) {
        (Reply::MyPolicy, _) => my_policy(inner, core, session, pending.as_ref()).await,
        (Reply::Accept(_) | Reply::Decline, None) => nothing_pending(inner, core, session).await,
        (Reply::Accept(code), Some(v)) => {
            let prompted = inner.with_state(session.id(), |st| st.prompted.clone());
            if prompted.as_deref() != Some(v.hash.as_str()) {
                // §5.7.2: the version changed since the last prompt; a code typed for another
                // text accepts nothing, even if the codes are equal.
                inner.prompt(core, session, v);
            } else if code.eq_ignore_ascii_case(wire::short(&v.hash)) {
                accept_version(inner, core, session, v).await;
            } else {
                inner.tell(
                    core,
                    session,
                    &format!(
                        "{code} is not the code of the usage policy in force.\n{}",
                        wire::instruction(&v.hash)
                    ),
                    Vec::new(),
                );
            }
        }
        (Reply::Decline, Some(v)) => decline_version(inner, core, session, v).await,
        (Reply::Other, Some(v)) => {
            let prompted = inner.with_state(session.id(), |st| st.prompted.clone());
            if prompted.as_deref() == Some(v.hash.as_str()) {
                inner.tell(
                    core,
                    session,
                    &format!("{UNDERSTOOD}\n{}", wire::instruction(&v.hash)),
                    Vec::new(),
                );
            } else {
                inner.prompt(core, session, v);
            }
        }
        (Reply::Other, None) => inner.tell(
            core,
            session,
            &format!("{UNDERSTOOD}\nNothing is waiting for your acceptance."),
            Vec::new(),
        ),
    }
}

async fn accept_version(
    inner: &Arc<Inner>,
    core: &Arc<Core>,
    session: &SessionHandle,
    v: &PolicyVersion,
) {
    let result = match accept::check(inner, session, Some(&v.hash)).await {
        Ok(v) => accept::write_receipt(inner, session, &v, Method::Chat)
            .await
            .map(|r| (v, r)),
        Err(e) => Err(e),
    };
    match result {
        Ok((v, receipt)) => {
            // Lifted before the confirmation leaves, so that the user's next message passes.
            let held = accept::lift(inner, session);
            inner.tell(
                core,
                session,
                &wire::accepted_text(&v.title, &receipt.fields),
                vec![wire::receipt(&receipt, &inner.fingerprint)],
            );
            if let Some(held) = held {
                accept::after_release(core, session, held).await;
            }
            accept::release_others(inner, core, session, &v, &receipt).await;
        }
        Err(refusal) => refused(inner, core, session, refusal),
    }
}

async fn decline_version(
    inner: &Arc<Inner>,
    core: &Arc<Core>,
    session: &SessionHandle,
    v: &PolicyVersion,
) {
    match accept::check(inner, session, Some(&v.hash)).await {
        Ok(v) => {
            accept::log_decline(session, &v, Method::Chat);
            inner.tell(
                core,
                session,
                "You declined the usage policy. This session is being closed.",
                Vec::new(),
            );
            session.close(accept::declined());
        }
        Err(refusal) => refused(inner, core, session, refusal),
    }
}

fn refused(inner: &Inner, core: &Core, session: &SessionHandle, refusal: Refusal) {
    let text = match refusal {
        Refusal::NothingToAccept(text) => text,
        Refusal::NotCurrent(v) => {
            inner.prompt(core, session, &v);
            return;
        }
        Refusal::Store => {
            "Your answer could not be recorded; nothing changed. Try again in a moment.".to_owned()
        }
        Refusal::BadVersion | Refusal::NotPublished => {
            "That is not a version of the usage policy.".to_owned()
        }
    };
    inner.tell(core, session, &text, Vec::new());
}

async fn nothing_pending(inner: &Inner, core: &Core, session: &SessionHandle) {
    let mut text = "Nothing is waiting for your acceptance; withdrawing an acceptance is done by \
                    the administrators."
        .to_owned();
    if let Some(summary) = summary(inner, session, None).await {
        text = format!("{summary}\n{text}");
    }
    inner.tell(core, session, &text, Vec::new());
}

/// §5.7.4.
async fn my_policy(
    inner: &Arc<Inner>,
    core: &Arc<Core>,
    session: &SessionHandle,
    pending: Option<&PolicyVersion>,
) {
    let text = summary(inner, session, pending).await.unwrap_or_else(|| {
        "Your acceptances cannot be read right now; try again in a moment.".to_owned()
    });
    inner.tell(core, session, &text, Vec::new());
    // A session held while the policy could not be read gets its prompt now.
    if let Some(v) = pending
        && session.info.flag(flags::RESTRICTED)
        && inner.with_state(session.id(), |st| st.prompted.is_none())
    {
        inner.prompt(core, session, v);
    }
}

/// What the account accepted, and what waits.
pub(super) async fn summary(
    inner: &Inner,
    session: &SessionHandle,
    pending: Option<&PolicyVersion>,
) -> Option<String> {
    let account = session.jid().to_bare();
    let receipts = inner.account_receipts(&account).await.ok()?;
    let versions = inner.store.versions().await.ok()?;
    Some(wire::my_policy(&receipts, &versions, pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_without_regard_to_case_or_spaces() {
        assert_eq!(parse("accept 92CC"), Reply::Accept("92CC"));
        assert_eq!(parse("ACCEPT\t92cc"), Reply::Accept("92cc"));
        assert_eq!(parse("Decline"), Reply::Decline);
        assert_eq!(parse("my   policy"), Reply::MyPolicy);
        assert_eq!(parse("accept"), Reply::Other);
        assert_eq!(parse("accept 92cc now"), Reply::Other);
        assert_eq!(parse("ok"), Reply::Other);
        assert_eq!(parse(""), Reply::Other);
    }
}
