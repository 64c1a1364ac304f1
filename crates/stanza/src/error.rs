//! RFC 6120 stream errors (§4.9) and stanza errors (§8.3), and their XML forms.

use crate::ns;
use causerie_xml::Element;

macro_rules! conditions {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            /// The defined-condition element name.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }
    };
}

conditions! {
    /// RFC 6120 §4.9.3 stream error conditions.
    StreamErrorCondition {
        BadFormat => "bad-format",
        BadNamespacePrefix => "bad-namespace-prefix",
        Conflict => "conflict",
        ConnectionTimeout => "connection-timeout",
        HostGone => "host-gone",
        HostUnknown => "host-unknown",
        ImproperAddressing => "improper-addressing",
        InternalServerError => "internal-server-error",
        InvalidFrom => "invalid-from",
        InvalidNamespace => "invalid-namespace",
        InvalidXml => "invalid-xml",
        NotAuthorized => "not-authorized",
        NotWellFormed => "not-well-formed",
        PolicyViolation => "policy-violation",
        RemoteConnectionFailed => "remote-connection-failed",
        Reset => "reset",
        ResourceConstraint => "resource-constraint",
        RestrictedXml => "restricted-xml",
        SeeOtherHost => "see-other-host",
        SystemShutdown => "system-shutdown",
        UndefinedCondition => "undefined-condition",
        UnsupportedEncoding => "unsupported-encoding",
        UnsupportedFeature => "unsupported-feature",
        UnsupportedStanzaType => "unsupported-stanza-type",
        UnsupportedVersion => "unsupported-version",
    }
}

conditions! {
    /// RFC 6120 §8.3.3 stanza error conditions.
    StanzaErrorCondition {
        BadRequest => "bad-request",
        Conflict => "conflict",
        FeatureNotImplemented => "feature-not-implemented",
        Forbidden => "forbidden",
        Gone => "gone",
        InternalServerError => "internal-server-error",
        ItemNotFound => "item-not-found",
        JidMalformed => "jid-malformed",
        NotAcceptable => "not-acceptable",
        NotAllowed => "not-allowed",
        NotAuthorized => "not-authorized",
        PolicyViolation => "policy-violation",
        RecipientUnavailable => "recipient-unavailable",
        Redirect => "redirect",
        RegistrationRequired => "registration-required",
        RemoteServerNotFound => "remote-server-not-found",
        RemoteServerTimeout => "remote-server-timeout",
        ResourceConstraint => "resource-constraint",
        ServiceUnavailable => "service-unavailable",
        SubscriptionRequired => "subscription-required",
        UndefinedCondition => "undefined-condition",
        UnexpectedRequest => "unexpected-request",
    }
}

/// The error `type` attribute (RFC 6120 §8.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    Auth,
    Cancel,
    Continue,
    Modify,
    Wait,
}

impl ErrorType {
    pub fn name(self) -> &'static str {
        match self {
            ErrorType::Auth => "auth",
            ErrorType::Cancel => "cancel",
            ErrorType::Continue => "continue",
            ErrorType::Modify => "modify",
            ErrorType::Wait => "wait",
        }
    }
}

impl StanzaErrorCondition {
    /// The error type RFC 6120 §8.3.3 gives with each condition's examples.
    pub fn default_type(self) -> ErrorType {
        use StanzaErrorCondition::*;
        match self {
            BadRequest | JidMalformed | NotAcceptable | Redirect | PolicyViolation => {
                ErrorType::Modify
            }
            Forbidden | NotAuthorized | RegistrationRequired | SubscriptionRequired => {
                ErrorType::Auth
            }
            InternalServerError | RecipientUnavailable | RemoteServerTimeout
            | ResourceConstraint | UnexpectedRequest => ErrorType::Wait,
            Conflict
            | FeatureNotImplemented
            | Gone
            | ItemNotFound
            | NotAllowed
            | RemoteServerNotFound
            | ServiceUnavailable
            | UndefinedCondition => ErrorType::Cancel,
        }
    }
}

/// A stanza error to send back to the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StanzaError {
    pub condition: StanzaErrorCondition,
    pub kind: ErrorType,
    pub text: Option<String>,
    /// The entity that generated the error (RFC 6120 §8.3.2 `by`).
    pub by: Option<String>,
    /// An application-specific condition element (boxed: rare, and errors travel in `Result`s).
    pub app: Option<Box<Element>>,
}

impl StanzaError {
    pub fn new(condition: StanzaErrorCondition) -> Self {
        StanzaError {
            condition,
            kind: condition.default_type(),
            text: None,
            by: None,
            app: None,
        }
    }

    pub fn with_type(mut self, kind: ErrorType) -> Self {
        self.kind = kind;
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn with_by(mut self, by: impl Into<String>) -> Self {
        self.by = Some(by.into());
        self
    }

    pub fn with_app(mut self, app: Element) -> Self {
        self.app = Some(Box::new(app));
        self
    }

    /// The `<error/>` child, in `jabber:client` (it is rewritten with the stanza on other streams).
    pub fn to_element(&self) -> Element {
        let mut e = Element::new("error", ns::CLIENT).with_attr("type", self.kind.name());
        if let Some(by) = &self.by {
            e.set_attr("by", by.as_str());
        }
        e.push_child(Element::new(self.condition.name(), ns::STANZAS));
        if let Some(text) = &self.text {
            e.push_child(
                Element::new("text", ns::STANZAS)
                    .with_attr("xml:lang", "en")
                    .with_text(text.as_str()),
            );
        }
        if let Some(app) = &self.app {
            e.push_child(app.as_ref().clone());
        }
        e
    }

    /// Reads the `<error/>` child of an error stanza.
    pub fn from_stanza(stanza: &Element) -> Option<StanzaError> {
        let err = stanza.children().find(|c| c.name() == "error")?;
        let condition = err
            .children()
            .filter(|c| c.ns() == ns::STANZAS && c.name() != "text")
            .find_map(|c| StanzaErrorCondition::parse(c.name()))?;
        let kind = match err.attr("type") {
            Some("auth") => ErrorType::Auth,
            Some("continue") => ErrorType::Continue,
            Some("modify") => ErrorType::Modify,
            Some("wait") => ErrorType::Wait,
            _ => ErrorType::Cancel,
        };
        let text = err.get_child("text", ns::STANZAS).map(|t| t.text());
        Some(StanzaError {
            condition,
            kind,
            text,
            by: err.attr("by").map(str::to_owned),
            app: None,
        })
    }
}

impl std::fmt::Display for StanzaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.text {
            Some(t) => write!(f, "{} ({})", self.condition.name(), t),
            None => f.write_str(self.condition.name()),
        }
    }
}

impl std::error::Error for StanzaError {}

/// A stream error: the last thing sent before `</stream:stream>` (RFC 6120 §4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamError {
    pub condition: StreamErrorCondition,
    pub text: Option<String>,
}

impl StreamError {
    pub fn new(condition: StreamErrorCondition) -> Self {
        StreamError {
            condition,
            text: None,
        }
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    pub fn to_element(&self) -> Element {
        let mut e = Element::new("error", ns::STREAMS);
        e.push_child(Element::new(self.condition.name(), ns::STREAM_ERRORS));
        if let Some(text) = &self.text {
            e.push_child(
                Element::new("text", ns::STREAM_ERRORS)
                    .with_attr("xml:lang", "en")
                    .with_text(text.as_str()),
            );
        }
        e
    }

    /// Reads a received `<stream:error/>`.
    pub fn from_element(el: &Element) -> Option<StreamError> {
        if !el.is("error", ns::STREAMS) {
            return None;
        }
        let condition = el
            .children()
            .filter(|c| c.ns() == ns::STREAM_ERRORS && c.name() != "text")
            .find_map(|c| StreamErrorCondition::parse(c.name()))
            .unwrap_or(StreamErrorCondition::UndefinedCondition);
        let text = el.get_child("text", ns::STREAM_ERRORS).map(|t| t.text());
        Some(StreamError { condition, text })
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.text {
            Some(t) => write!(f, "{} ({})", self.condition.name(), t),
            None => f.write_str(self.condition.name()),
        }
    }
}

impl std::error::Error for StreamError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_round_trip_by_name() {
        for c in [
            StreamErrorCondition::NotWellFormed,
            StreamErrorCondition::PolicyViolation,
        ] {
            assert_eq!(StreamErrorCondition::parse(c.name()), Some(c));
        }
        assert_eq!(
            StanzaErrorCondition::parse("item-not-found"),
            Some(StanzaErrorCondition::ItemNotFound)
        );
        assert_eq!(StanzaErrorCondition::parse("nope"), None);
    }

    #[test]
    fn stanza_error_round_trip() {
        let err = StanzaError::new(StanzaErrorCondition::PolicyViolation)
            .with_text("accept the policy first");
        let msg = Element::new("message", ns::CLIENT)
            .with_attr("type", "error")
            .with_child(err.to_element());
        let back = StanzaError::from_stanza(&msg).expect("parsed");
        assert_eq!(back.condition, StanzaErrorCondition::PolicyViolation);
        assert_eq!(back.kind, ErrorType::Modify);
        assert_eq!(back.text.as_deref(), Some("accept the policy first"));
    }

    #[test]
    fn stream_error_round_trip() {
        let e = StreamError::new(StreamErrorCondition::Conflict).with_text("replaced");
        let back = StreamError::from_element(&e.to_element()).expect("parsed");
        assert_eq!(back, e);
    }
}
