//! The ad-hoc command `urn:causerie:policy:0#accept` (§6.2, XEP-0050): one stage, the form of
//! the prompt, completed with the box checked or not.

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{Command, Core, IqRequest, Origin};
use causerie_jid::Jid;
use causerie_stanza::{StanzaError, StanzaErrorCondition as Cond};
use causerie_xml::Element;

use super::accept::{self, Method};
use super::{AfterAnswer, Inner, random_hex, wire};

pub(super) struct AcceptCommand {
    inner: Arc<Inner>,
}

impl AcceptCommand {
    pub fn new(inner: Arc<Inner>) -> AcceptCommand {
        AcceptCommand { inner }
    }
}

fn command(sessionid: &str, status: &str) -> Element {
    Element::new("command", wire::NS_COMMANDS)
        .with_attr("node", wire::COMMAND_NODE)
        .with_attr("sessionid", sessionid)
        .with_attr("status", status)
}

fn note(text: &str) -> Element {
    Element::new("note", wire::NS_COMMANDS)
        .with_attr("type", "info")
        .with_text(text)
}

fn bad(app: &str, text: &str) -> StanzaError {
    StanzaError::new(Cond::BadRequest)
        .with_text(text)
        .with_app(Element::new(app, wire::NS_COMMANDS))
}

#[async_trait]
impl Command for AcceptCommand {
    /// Every account of the domain, restricted or not.
    fn allowed(&self, core: &Core, requester: &Jid) -> bool {
        requester.node().is_some() && core.is_local_domain(requester.domain())
    }

    async fn execute(&self, req: IqRequest<'_>) -> Result<Element, StanzaError> {
        let inner = &self.inner;
        let session = match req.origin {
            Origin::Session(s) if s.jid().domain() == req.to.domain() => s,
            _ => return Err(StanzaError::new(Cond::Forbidden)),
        };
        let _ = inner.core.set(Arc::downgrade(req.core));
        let cmd = req.payload;
        let action = cmd.attr("action").unwrap_or("execute");
        let Some(sessionid) = cmd.attr("sessionid") else {
            if action != "execute" {
                return Err(bad("bad-action", "Start the command with execute."));
            }
            return self.start(session).await;
        };
        let known = inner.with_state(session.id(), |st| st.command.as_deref() == Some(sessionid));
        if !known {
            return Err(bad(
                "bad-sessionid",
                "This command is not running; run it again.",
            ));
        }
        if action == "cancel" {
            inner.with_state(session.id(), |st| st.command = None);
            return Ok(command(sessionid, "canceled"));
        }
        // Rule 1: one stage, so execute (or no action) on a submission completes it.
        if !matches!(action, "execute" | "complete") {
            return Err(bad(
                "bad-action",
                "This command has one stage: complete it.",
            ));
        }
        let submission = cmd
            .children()
            .filter(|c| c.is("x", wire::NS_DATA))
            .find_map(|x| wire::submission(x).ok());
        let Some(wire::Submission::Answer {
            version,
            accept: yes,
        }) = submission
        else {
            return Err(bad(
                "bad-payload",
                "Submit the form with the box checked to accept, or unchecked to decline.",
            ));
        };
        let v = accept::check(inner, session, version.as_deref())
            .await
            .map_err(|r| r.to_error("the usage policy changed; run the command again"))?;
        inner.with_state(session.id(), |st| st.command = None);
        let id = req.stanza.attr("id").unwrap_or_default().to_owned();
        if yes {
            let receipt = accept::write_receipt(inner, session, &v, Method::Adhoc)
                .await
                .map_err(|r| r.to_error(accept::NOT_CURRENT))?;
            accept::release_others(inner, req.core, session, &v, &receipt).await;
            if session.info.flag(causerie_core::flags::RESTRICTED) {
                inner.with_state(session.id(), |st| {
                    st.after_answer = Some((id, AfterAnswer::Release))
                });
            }
            Ok(command(sessionid, "completed")
                .with_child(note(&wire::accepted_text(&v.title, &receipt.fields)))
                .with_child(wire::receipt(&receipt, &inner.fingerprint)))
        } else {
            accept::log_decline(session, &v, Method::Adhoc);
            session
                .info
                .set_flag(causerie_core::flags::RESTRICTED, true);
            inner.with_state(session.id(), |st| {
                st.after_answer = Some((id, AfterAnswer::Close(accept::declined())))
            });
            Ok(command(sessionid, "completed").with_child(note(
                "You declined the usage policy. This session is being closed.",
            )))
        }
    }
}

impl AcceptCommand {
    /// A new instance: the form, or at once a note when nothing is pending (rule 5).
    async fn start(&self, session: &causerie_core::SessionHandle) -> Result<Element, StanzaError> {
        let inner = &self.inner;
        let sessionid = format!("policy-{}", random_hex());
        let pending = inner.pending_for(session).await;
        match pending {
            Err(()) => Err(StanzaError::new(Cond::InternalServerError)
                .with_text("The usage policy cannot be read right now.")),
            Ok(None) => {
                let summary = super::chat::summary(inner, session, None)
                    .await
                    .unwrap_or_else(|| "Nothing is waiting for your acceptance.".to_owned());
                Ok(command(&sessionid, "completed").with_child(note(&summary)))
            }
            Ok(Some(v)) => {
                inner.with_state(session.id(), |st| st.command = Some(sessionid.clone()));
                Ok(command(&sessionid, "executing")
                    .with_child(
                        Element::new("actions", wire::NS_COMMANDS)
                            .with_attr("execute", "complete")
                            .with_child(Element::new("complete", wire::NS_COMMANDS)),
                    )
                    .with_child(wire::form(&v, wire::FormUse::Command)))
            }
        }
    }
}
