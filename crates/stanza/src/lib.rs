//! Typed views of XMPP stanzas, the namespaces the server speaks, and every RFC 6120 error in one place.
//!
//! Owns: stanza kinds and types (RFC 6120 §8.2), stanza errors (§8.3) and stream errors (§4.9), and the
//! helpers that turn a stanza into its error reply. Knows nothing of sockets, sessions or storage.
//! Payload codecs for XEPs live with the modules that use them; only what every layer needs is here.

pub mod error;
pub mod ns;

pub use error::{ErrorType, StanzaError, StanzaErrorCondition, StreamError, StreamErrorCondition};

use causerie_jid::Jid;
use causerie_xml::Element;

/// The three stanza kinds of RFC 6120 §8.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    Message,
    Presence,
    Iq,
}

impl StanzaKind {
    /// The kind of a top-level element, if it is a stanza in a content namespace.
    pub fn of(el: &Element) -> Option<StanzaKind> {
        if el.ns() != ns::CLIENT && el.ns() != ns::SERVER {
            return None;
        }
        match el.name() {
            "message" => Some(StanzaKind::Message),
            "presence" => Some(StanzaKind::Presence),
            "iq" => Some(StanzaKind::Iq),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }
}

/// IQ types (RFC 6120 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqType {
    Get,
    Set,
    Result,
    Error,
}

impl IqType {
    pub fn parse(s: &str) -> Option<IqType> {
        match s {
            "get" => Some(IqType::Get),
            "set" => Some(IqType::Set),
            "result" => Some(IqType::Result),
            "error" => Some(IqType::Error),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }

    /// Requests expect an answer; responses must never be answered (RFC 6120 §8.2.3).
    pub fn is_request(self) -> bool {
        matches!(self, IqType::Get | IqType::Set)
    }
}

/// Message types (RFC 6121 §5.2.2). An absent or unknown type is `normal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Chat,
    Error,
    Groupchat,
    Headline,
    Normal,
}

impl MessageType {
    pub fn of(el: &Element) -> MessageType {
        match el.attr("type") {
            Some("chat") => MessageType::Chat,
            Some("error") => MessageType::Error,
            Some("groupchat") => MessageType::Groupchat,
            Some("headline") => MessageType::Headline,
            _ => MessageType::Normal,
        }
    }
}

/// Presence types (RFC 6121 §4.7.1); `Available` is the absent type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceType {
    Available,
    Unavailable,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    Probe,
    Error,
}

impl PresenceType {
    pub fn of(el: &Element) -> Option<PresenceType> {
        Some(match el.attr("type") {
            None => PresenceType::Available,
            Some("unavailable") => PresenceType::Unavailable,
            Some("subscribe") => PresenceType::Subscribe,
            Some("subscribed") => PresenceType::Subscribed,
            Some("unsubscribe") => PresenceType::Unsubscribe,
            Some("unsubscribed") => PresenceType::Unsubscribed,
            Some("probe") => PresenceType::Probe,
            Some("error") => PresenceType::Error,
            Some(_) => return None,
        })
    }
}

/// Whether a stanza is itself an error; errors are never answered with errors (RFC 6120 §8.3.1).
pub fn is_error(el: &Element) -> bool {
    el.attr("type") == Some("error")
}

/// Parses the `to` attribute. `Ok(None)` when absent.
pub fn to_jid(el: &Element) -> Result<Option<Jid>, StanzaError> {
    parse_addr(el.attr("to"))
}

/// Parses the `from` attribute. `Ok(None)` when absent.
pub fn from_jid(el: &Element) -> Result<Option<Jid>, StanzaError> {
    parse_addr(el.attr("from"))
}

fn parse_addr(v: Option<&str>) -> Result<Option<Jid>, StanzaError> {
    match v {
        None => Ok(None),
        Some(s) => Jid::parse(s).map(Some).map_err(|e| {
            StanzaError::new(StanzaErrorCondition::JidMalformed).with_text(e.to_string())
        }),
    }
}

/// Builds the error reply to `stanza` (RFC 6120 §8.3.1): addresses swapped, `type='error'`, the original
/// payload kept for IQs only when small, and the `<error/>` child. `from` is the entity answering.
pub fn error_reply(stanza: &Element, err: &StanzaError) -> Element {
    let mut reply = Element::new(stanza.name(), stanza.ns());
    if let Some(id) = stanza.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        reply.set_attr("to", from);
    }
    if let Some(to) = stanza.attr("to") {
        reply.set_attr("from", to);
    }
    reply.set_attr("type", "error");
    // Keeping the request's payload lets the sender match the error to what it sent; bodies are
    // included too, as most clients show them next to the error.
    for child in stanza.children() {
        reply.push_child(child.clone());
    }
    reply.push_child(err.to_element());
    reply
}

/// Builds an empty IQ result for a request.
pub fn iq_result(iq: &Element) -> Element {
    let mut reply = Element::new("iq", iq.ns());
    if let Some(id) = iq.attr("id") {
        reply.set_attr("id", id);
    }
    if let Some(from) = iq.attr("from") {
        reply.set_attr("to", from);
    }
    if let Some(to) = iq.attr("to") {
        reply.set_attr("from", to);
    }
    reply.set_attr("type", "result");
    reply
}

/// The single payload child of an IQ request (RFC 6120 §8.2.3: exactly one for get/set).
pub fn iq_payload(iq: &Element) -> Result<&Element, StanzaError> {
    let mut it = iq.children();
    match (it.next(), it.next()) {
        (Some(p), None) => Ok(p),
        _ => Err(StanzaError::new(StanzaErrorCondition::BadRequest)
            .with_text("an IQ request carries exactly one payload element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reply_swaps_addresses_and_keeps_id() {
        let iq = Element::new("iq", ns::CLIENT)
            .with_attr("id", "x1")
            .with_attr("type", "get")
            .with_attr("from", "a@example.com/r")
            .with_attr("to", "example.com")
            .with_child(Element::new("query", "urn:x"));
        let e = error_reply(
            &iq,
            &StanzaError::new(StanzaErrorCondition::ServiceUnavailable),
        );
        assert_eq!(e.attr("to"), Some("a@example.com/r"));
        assert_eq!(e.attr("from"), Some("example.com"));
        assert_eq!(e.attr("type"), Some("error"));
        assert_eq!(e.attr("id"), Some("x1"));
        let err = e.get_child("error", ns::CLIENT).expect("error child");
        assert_eq!(err.attr("type"), Some("cancel"));
        assert!(err.has_child("service-unavailable", ns::STANZAS));
    }

    #[test]
    fn iq_payload_requires_exactly_one_child() {
        let iq = Element::new("iq", ns::CLIENT);
        assert!(iq_payload(&iq).is_err());
        let iq = iq
            .with_child(Element::new("a", "x"))
            .with_child(Element::new("b", "x"));
        assert!(iq_payload(&iq).is_err());
    }

    #[test]
    fn kinds_and_types() {
        assert_eq!(
            StanzaKind::of(&Element::new("iq", ns::CLIENT)),
            Some(StanzaKind::Iq)
        );
        assert_eq!(StanzaKind::of(&Element::new("iq", "urn:other")), None);
        let m = Element::new("message", ns::CLIENT).with_attr("type", "bogus");
        assert_eq!(MessageType::of(&m), MessageType::Normal);
        assert_eq!(
            PresenceType::of(&Element::new("presence", ns::CLIENT).with_attr("type", "x")),
            None
        );
    }
}
