//! Errors of the framer and the element parser, each mapped to one RFC 6120 §4.9.3 stream error
//! condition by [`XmlError::stream_condition`]. That method is the only place where this crate
//! decides which condition the peer sees.

use thiserror::Error;

/// Why a stream (or a stored element) was refused.
///
/// Every variant is fatal for the stream it came from: RFC 6120 §4.9.1.1 makes XML errors stream
/// errors, so the framer stays failed and keeps returning the same error until [`reset`].
///
/// [`reset`]: crate::Framer::reset
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum XmlError {
    /// The bytes break the XML 1.0 or Namespaces in XML grammar in a way no other variant names.
    #[error("not well-formed: {0}")]
    NotWellFormed(&'static str),
    /// An end tag does not match the open element (or the stream's own name).
    #[error("end tag </{found}> does not close <{expected}>")]
    MismatchedEndTag { expected: String, found: String },
    /// A name (element, attribute, prefix) that is not an XML `Name`/`NCName`/`QName`.
    #[error("invalid name {0:?}")]
    InvalidName(String),
    /// The same attribute appears twice on one element (by qualified or by expanded name).
    #[error("duplicate attribute {0:?}")]
    DuplicateAttribute(String),
    /// A character outside XML 1.0 `Char` (RFC 6120 §11.5, XML 1.0 §2.2), raw or by reference.
    #[error("character U+{0:04X} is not allowed in XML")]
    InvalidChar(u32),
    /// A character reference that is malformed (`&#;`, `&#xZZ;`, too many digits).
    #[error("malformed character reference")]
    BadCharRef,
    /// Bytes that are not UTF-8 (RFC 6120 §11.6).
    #[error("input is not valid UTF-8")]
    InvalidUtf8,
    /// An XML declaration or byte order mark naming an encoding other than UTF-8.
    #[error("unsupported encoding {0:?}")]
    UnsupportedEncoding(String),
    /// An XML declaration with a version other than 1.0, or `standalone` other than `yes`.
    #[error("unsupported XML declaration: {0}")]
    UnsupportedDeclaration(&'static str),
    /// A comment (RFC 6120 §11.1).
    #[error("comments are not allowed in XMPP streams")]
    Comment,
    /// A processing instruction, or an XML declaration that is not at the very start.
    #[error("processing instructions are not allowed in XMPP streams")]
    ProcessingInstruction,
    /// A document type declaration, internal subset or external reference (RFC 6120 §11.1).
    #[error("DTDs are not allowed in XMPP streams")]
    Doctype,
    /// An entity reference other than the five predefined ones (RFC 6120 §11.1).
    #[error("entity reference &{0}; is not allowed in XMPP streams")]
    UndefinedEntity(String),
    /// Character data (other than whitespace) directly inside the stream element.
    #[error("character data between top-level elements")]
    TextAtStreamLevel,
    /// Bytes after `</stream:stream>`.
    #[error("content after the end of the stream")]
    ContentAfterClose,
    /// A prefix with no declaration in scope.
    #[error("undeclared namespace prefix {0:?}")]
    UndeclaredPrefix(String),
    /// A prefixed declaration with an empty value (`xmlns:p=""`), or a declaration of the
    /// reserved `xmlns` prefix (Namespaces in XML 1.0 §3).
    #[error("invalid declaration of namespace prefix {0:?}")]
    BadPrefixDeclaration(String),
    /// A binding that Namespaces in XML 1.0 §3 reserves: the `xml` namespace to another prefix
    /// (or the `xml` prefix to another namespace), or anything to the `xmlns` namespace.
    #[error("reserved namespace misused: {0:?}")]
    ReservedNamespace(String),
    /// The stream header is not `stream` in `http://etherx.jabber.org/streams` (RFC 6120 §4.8.1).
    #[error("stream header is {{{ns}}}{name}, not the streams namespace's stream element")]
    InvalidStreamHeader { name: String, ns: String },
    /// One top-level element is larger than [`Limits::max_stanza_bytes`](crate::Limits).
    #[error("element larger than {limit} bytes")]
    StanzaTooLarge { limit: usize },
    /// The stream header (with the XML declaration) is larger than
    /// [`Limits::max_header_bytes`](crate::Limits).
    #[error("stream header larger than {limit} bytes")]
    HeaderTooLarge { limit: usize },
    /// Elements nested deeper than [`Limits::max_depth`](crate::Limits).
    #[error("elements nested deeper than {limit}")]
    TooDeep { limit: usize },
    /// More attributes on one element than [`Limits::max_attributes`](crate::Limits).
    #[error("more than {limit} attributes on one element")]
    TooManyAttributes { limit: usize },
    /// More namespace declarations in scope at once inside one top-level element than the
    /// fixed bound that keeps prefix resolution cheap.
    #[error("more than {limit} namespace declarations in scope")]
    TooManyNamespaceDeclarations { limit: usize },
}

impl XmlError {
    /// The RFC 6120 §4.9.3 defined condition to send in the `<stream:error/>` for this error.
    pub fn stream_condition(&self) -> &'static str {
        match self {
            Self::NotWellFormed(_)
            | Self::MismatchedEndTag { .. }
            | Self::InvalidName(_)
            | Self::DuplicateAttribute(_)
            | Self::InvalidChar(_)
            | Self::BadCharRef
            | Self::ContentAfterClose => "not-well-formed",
            // RFC 6120 §4.9.3.22: an improperly encoded stream is unsupported-encoding.
            Self::InvalidUtf8 | Self::UnsupportedEncoding(_) => "unsupported-encoding",
            // RFC 6120 §4.9.3.18 lists exactly these features (§11.1).
            Self::UnsupportedDeclaration(_)
            | Self::Comment
            | Self::ProcessingInstruction
            | Self::Doctype
            | Self::UndefinedEntity(_) => "restricted-xml",
            // The stream's content model has no character data at that level (RFC 6120 §4.7).
            Self::TextAtStreamLevel => "invalid-xml",
            Self::UndeclaredPrefix(_) | Self::BadPrefixDeclaration(_) => "bad-namespace-prefix",
            Self::ReservedNamespace(_) | Self::InvalidStreamHeader { .. } => "invalid-namespace",
            // RFC 6120 §4.9.3.14: a configured size limit is a local policy.
            Self::StanzaTooLarge { .. }
            | Self::HeaderTooLarge { .. }
            | Self::TooDeep { .. }
            | Self::TooManyAttributes { .. }
            | Self::TooManyNamespaceDeclarations { .. } => "policy-violation",
        }
    }

    /// Whether the error comes from a configured limit rather than from the XML itself.
    pub fn is_limit(&self) -> bool {
        matches!(
            self,
            Self::StanzaTooLarge { .. }
                | Self::HeaderTooLarge { .. }
                | Self::TooDeep { .. }
                | Self::TooManyAttributes { .. }
                | Self::TooManyNamespaceDeclarations { .. }
        )
    }
}

/// Names and values quoted in errors come from the peer: keep them short enough for a log line.
pub(crate) fn clip(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}
