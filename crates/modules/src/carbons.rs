//! XEP-0280 Message Carbons: a session that enables carbons gets a copy of the messages its
//! account's other resources send (`<sent/>`) and receive (`<received/>`), each wrapped in a
//! XEP-0297 `<forwarded/>`.
//!
//! Eligibility (§6): messages of type `chat`, of type `normal` with a `<body/>`, and messages
//! carrying the payloads instant messaging uses (XEP-0085 chat states, XEP-0184 receipts,
//! XEP-0333 markers). Never copied: `groupchat`, `headline` and `error` messages, messages marked
//! `<private xmlns='urn:xmpp:carbons:2'/>` (§7) or `<no-copy xmlns='urn:xmpp:hints'/>`
//! (XEP-0334), carbons themselves, and received private messages from a multi-user chat room (the
//! other clients are not in the room). The state is one session flag (`flags::CARBONS`).

use std::sync::Arc;

use async_trait::async_trait;
use causerie_core::{
    Core, IqHandler, IqRequest, IqTarget, Module, ModuleRegistry, OutStanza, SessionHandle, Stage,
    StageContext, Verdict, flags,
};
use causerie_jid::{BareJid, FullJid};
use causerie_stanza::{
    IqType, MessageType, StanzaError, StanzaErrorCondition as Cond, StanzaKind, ns,
};
use causerie_xml::{Element, Node};

pub const NS: &str = "urn:xmpp:carbons:2";
pub const NS_FORWARD: &str = "urn:xmpp:forward:0";
pub const NS_HINTS: &str = "urn:xmpp:hints";
const NS_MUC_USER: &str = "http://jabber.org/protocol/muc#user";
/// Payloads that make a message part of a conversation even without a body (§6).
const IM_PAYLOADS: [&str; 3] = [
    "http://jabber.org/protocol/chatstates",
    "urn:xmpp:receipts",
    "urn:xmpp:chat-markers:0",
];

/// After blocking (a refused message is not copied), before archiving-like stages.
pub const STAGE_PRIORITY: i32 = 50;

pub struct Carbons;

impl Module for Carbons {
    fn name(&self) -> &'static str {
        "carbons"
    }

    fn register(self: Arc<Self>, reg: &mut ModuleRegistry) {
        reg.iq(IqType::Set, NS, "enable", IqTarget::Both, self.clone());
        reg.iq(IqType::Set, NS, "disable", IqTarget::Both, self.clone());
        reg.feature(IqTarget::Server, NS);
        reg.stage(STAGE_PRIORITY, self);
    }
}

#[async_trait]
impl IqHandler for Carbons {
    async fn handle(&self, req: IqRequest<'_>) -> Result<Option<Element>, StanzaError> {
        // §4: a client switches carbons for its own session, with no `to` (or its own bare JID, or
        // its server's domain, which some clients use).
        let Some(session) = req.origin.session() else {
            return Err(StanzaError::new(Cond::NotAllowed));
        };
        if req.to.node().is_some() && req.to.to_bare() != session.jid().to_bare() {
            return Err(StanzaError::new(Cond::Forbidden));
        }
        session
            .info
            .set_flag(flags::CARBONS, req.payload.name() == "enable");
        Ok(None)
    }
}

/// §6: whether a message is copied at all.
fn eligible(msg: &Element) -> bool {
    if StanzaKind::of(msg) != Some(StanzaKind::Message) {
        return false;
    }
    let cns = msg.ns();
    let conversational = match MessageType::of(msg) {
        MessageType::Chat => true,
        MessageType::Normal => {
            msg.has_child("body", cns) || msg.children().any(|c| IM_PAYLOADS.contains(&c.ns()))
        }
        MessageType::Groupchat | MessageType::Headline | MessageType::Error => false,
    };
    conversational
        && !msg.has_child("private", NS)
        && !msg.has_child("no-copy", NS_HINTS)
        && !msg.has_child("sent", NS)
        && !msg.has_child("received", NS)
}

/// The copy for one resource: `<message from=account to=resource><sent|received><forwarded>…`.
fn carbon(direction: &str, account: &BareJid, to: &FullJid, original: &Element) -> Arc<OutStanza> {
    let mut wrapper = Element::new("message", ns::CLIENT)
        .with_attr("from", account.as_str())
        .with_attr("to", to.as_str());
    if let Some(t) = original.attr("type") {
        wrapper.set_attr("type", t);
    }
    let forwarded = Element::new("forwarded", NS_FORWARD).with_child(in_client_ns(original));
    OutStanza::new(wrapper.with_child(Element::new(direction, NS).with_child(forwarded)))
}

/// XEP-0297 §3: the forwarded stanza is in `jabber:client` whatever stream it arrived on.
fn in_client_ns(el: &Element) -> Element {
    if el.ns() != ns::SERVER {
        return el.clone();
    }
    let mut out = Element::new(el.name(), ns::CLIENT);
    for (name, value) in el.attrs() {
        out.set_attr(name, value);
    }
    for (prefix, uri) in el.prefixes() {
        out.declare_prefix(prefix, uri);
    }
    for node in el.nodes() {
        match node {
            Node::Element(child) => out.push_child(in_client_ns(child)),
            Node::Text(text) => out.push_text(text.as_str()),
        }
    }
    out
}

fn carbon_targets(
    core: &Core,
    account: &BareJid,
    skip: impl Fn(&SessionHandle) -> bool,
) -> Vec<SessionHandle> {
    core.registry.with_resources(account, |list| {
        list.iter()
            .filter(|s| s.info.flag(flags::CARBONS) && !skip(s))
            .cloned()
            .collect()
    })
}

impl Stage for Carbons {
    fn name(&self) -> &'static str {
        "carbons"
    }

    /// Sent carbons (§5): copies of what a session sends, for its account's other sessions.
    fn inbound(&self, ctx: &StageContext<'_>, stanza: &mut Element) -> Verdict {
        let Some(sender) = ctx.origin.session() else {
            return Verdict::Pass;
        };
        if !eligible(stanza) {
            return Verdict::Pass;
        }
        let account = sender.jid().to_bare();
        // A message to the user's own account reaches its resources anyway.
        match causerie_stanza::to_jid(stanza) {
            Ok(Some(to)) if to.to_bare() != account => {}
            _ => return Verdict::Pass,
        }
        for s in carbon_targets(ctx.core, &account, |s| s.id() == sender.id()) {
            ctx.core
                .deliver(&s, &carbon("sent", &account, s.jid(), stanza));
        }
        Verdict::Pass
    }

    /// Received carbons (§5): copies of what reached some of the account's sessions, for the
    /// others.
    fn delivered(
        &self,
        core: &Arc<Core>,
        to: &BareJid,
        recipients: &[SessionHandle],
        stanza: &Arc<OutStanza>,
    ) {
        let msg = &stanza.element;
        if !eligible(msg) || msg.has_child("x", NS_MUC_USER) {
            return;
        }
        // Between the user's own resources the sent carbon already covers it.
        if let Ok(Some(from)) = causerie_stanza::from_jid(msg)
            && from.to_bare() == *to
        {
            return;
        }
        for s in carbon_targets(core, to, |s| recipients.iter().any(|r| r.id() == s.id())) {
            core.deliver(&s, &carbon("received", to, s.jid(), msg));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(kind: Option<&str>) -> Element {
        let m = Element::new("message", ns::CLIENT).with_attr("to", "b@x");
        match kind {
            Some(t) => m.with_attr("type", t),
            None => m,
        }
    }

    #[test]
    fn eligibility_rules() {
        assert!(eligible(&msg(Some("chat"))));
        assert!(!eligible(&msg(None)));
        assert!(eligible(
            &msg(None).with_child(Element::new("body", ns::CLIENT).with_text("hi"))
        ));
        assert!(eligible(
            &msg(None).with_child(Element::new("received", "urn:xmpp:receipts"))
        ));
        assert!(!eligible(
            &msg(Some("groupchat")).with_child(Element::new("body", ns::CLIENT))
        ));
        assert!(!eligible(
            &msg(Some("headline")).with_child(Element::new("body", ns::CLIENT))
        ));
        assert!(!eligible(&msg(Some("error"))));
        assert!(!eligible(
            &msg(Some("chat")).with_child(Element::new("private", NS))
        ));
        assert!(!eligible(
            &msg(Some("chat")).with_child(Element::new("no-copy", NS_HINTS))
        ));
        assert!(!eligible(
            &msg(Some("chat")).with_child(Element::new("sent", NS))
        ));
        assert!(!eligible(&Element::new("presence", ns::CLIENT)));
    }

    #[test]
    fn forwarded_copy_is_in_the_client_namespace() {
        let original = Element::new("message", ns::SERVER)
            .with_attr("from", "a@remote/r")
            .with_attr("type", "chat")
            .with_child(Element::new("body", ns::SERVER).with_text("hi"))
            .with_child(Element::new(
                "active",
                "http://jabber.org/protocol/chatstates",
            ));
        let account = BareJid::parse("b@x").expect("jid");
        let to = FullJid::parse("b@x/r2").expect("jid");
        let c = carbon("received", &account, &to, &original);
        let inner = c
            .element
            .get_child("received", NS)
            .and_then(|r| r.get_child("forwarded", NS_FORWARD))
            .and_then(|f| f.get_child("message", ns::CLIENT))
            .expect("forwarded message");
        assert_eq!(
            inner
                .get_child("body", ns::CLIENT)
                .map(|b| b.text())
                .as_deref(),
            Some("hi")
        );
        assert!(inner.has_child("active", "http://jabber.org/protocol/chatstates"));
        assert_eq!(c.element.attr("type"), Some("chat"));
        assert_eq!(c.element.attr("from"), Some("b@x"));
    }
}
