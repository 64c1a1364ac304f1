use std::fmt;

/// The three parts of a JID (RFC 7622 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JidPart {
    /// The part before the `@` (RFC 7622 §3.3).
    Localpart,
    /// The mandatory middle part (RFC 7622 §3.2).
    Domainpart,
    /// The part after the first `/` (RFC 7622 §3.4).
    Resourcepart,
}

impl JidPart {
    /// The name used in RFC 7622 ("localpart", "domainpart", "resourcepart").
    pub fn name(self) -> &'static str {
        match self {
            JidPart::Localpart => "localpart",
            JidPart::Domainpart => "domainpart",
            JidPart::Resourcepart => "resourcepart",
        }
    }
}

impl fmt::Display for JidPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a valid JID, naming the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JidError {
    /// A part is present (its separator is there) but empty, or the domainpart is missing.
    #[error("the {0} is empty")]
    Empty(JidPart),
    /// A part is longer than 1023 octets once prepared (RFC 7622 §3.2, §3.3, §3.4), or the
    /// raw input is too long to be worth preparing.
    #[error("the {0} is longer than 1023 octets")]
    TooLong(JidPart),
    /// The localpart contains one of the characters RFC 7622 §3.3.1 forbids on top of the
    /// PRECIS profile: `"` `&` `'` `/` `:` `<` `>` `@`.
    #[error("the localpart contains {0:?}, which RFC 7622 §3.3.1 forbids")]
    ForbiddenLocalpartChar(char),
    /// The PRECIS profile of the part (UsernameCaseMapped for the localpart, OpaqueString for
    /// the resourcepart) refuses the string.
    #[error("the {part} is refused by its PRECIS profile: {detail}")]
    Precis {
        /// Which part.
        part: JidPart,
        /// What the PRECIS implementation reported (code point and property).
        detail: String,
    },
    /// The domainpart is neither an IP literal nor a valid IDNA2008 domain name.
    #[error("the domainpart is not a valid domain name ({0})")]
    InvalidDomain(&'static str),
    /// The domainpart is bracketed like an IPv6 literal but is not one.
    #[error("the domainpart is not a valid IPv6 address literal")]
    InvalidIpLiteral,
    /// A full JID was required but the string has no resourcepart.
    #[error("a full JID needs a resourcepart")]
    MissingResource,
    /// A bare JID was required but the string has a resourcepart.
    #[error("a bare JID cannot have a resourcepart")]
    UnexpectedResource,
}
