//! SASL for XMPP: the server side of SCRAM-SHA-1/-256/-512 and their -PLUS variants
//! (RFC 5802, RFC 7677), PLAIN (RFC 4616) and EXTERNAL (RFC 4422 Appendix A), credential
//! derivation and verification, channel binding with the types announced through
//! XEP-0440 (`tls-exporter`, RFC 9266; `tls-server-end-point`, RFC 5929), and XEP-0474
//! SASL SCRAM Downgrade Protection; plus the small client side the project's test client
//! and load tool use.
//!
//! Everything here is sans-IO: no sockets, no async, no storage. The caller feeds the
//! client's messages (already base64-decoded) to a [`ServerSession`] and sends back what
//! it returns; when a mechanism needs the stored credentials of the account it returns
//! [`Step::NeedCredentials`] and the caller answers with
//! [`ServerSession::provide_credentials`]. The caller also decides which mechanisms are
//! offered on a connection (PLAIN only over TLS, -PLUS only with channel-binding data),
//! maps the authenticated username to an account (JID normalization happens there),
//! checks the authorization identity, and turns a [`Failure`] into the `<failure/>`
//! element of RFC 6120 §6.5.
//!
//! XEP-0474 is implemented as of version 0.5.0 (2025-10-25): the server adds the optional
//! attribute `h` to its server-first-message, the base64 hash (with the hash function of
//! the SCRAM mechanism in use) of the advertised mechanism names sorted by octet and
//! joined by U+001E, followed, when channel-binding types were advertised with XEP-0440,
//! by U+001F and the sorted type names joined by U+001E. Being part of the SCRAM
//! AuthMessage, the attribute is signed by the client proof. The client checks it when
//! [`client::ScramClient::with_downgrade_protection`] was used.

mod attr;
mod credentials;
mod crypto;
mod server;
mod ssdp;

pub mod client;

pub use crate::credentials::{
    DEFAULT_ITERATIONS, MIN_ITERATIONS, SALT_LEN, ScramCredentials, derive_all, saslprep,
};
pub use crate::server::{Failure, ServerContext, ServerSession, Step};
pub use crate::ssdp::downgrade_protection_hash;

/// Largest client or server message, in octets, that either side accepts. Real SCRAM and
/// PLAIN messages are a few hundred octets; the limit keeps hostile input cheap.
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;

/// A hash function of the SCRAM family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hash {
    /// SHA-1 (SCRAM-SHA-1, RFC 5802).
    Sha1,
    /// SHA-256 (SCRAM-SHA-256, RFC 7677).
    Sha256,
    /// SHA-512 (SCRAM-SHA-512).
    Sha512,
}

impl Hash {
    /// All hash functions, weakest first.
    pub const ALL: [Hash; 3] = [Hash::Sha1, Hash::Sha256, Hash::Sha512];

    /// The IANA hash name used in mechanism names: "SHA-1", "SHA-256", "SHA-512".
    pub fn name(&self) -> &'static str {
        match self {
            Hash::Sha1 => "SHA-1",
            Hash::Sha256 => "SHA-256",
            Hash::Sha512 => "SHA-512",
        }
    }

    /// The inverse of [`Hash::name`].
    pub fn from_name(name: &str) -> Option<Hash> {
        Hash::ALL.into_iter().find(|h| h.name() == name)
    }

    /// The output length in octets (also the length of every SCRAM key).
    pub fn output_len(&self) -> usize {
        match self {
            Hash::Sha1 => 20,
            Hash::Sha256 => 32,
            Hash::Sha512 => 64,
        }
    }
}

/// A SASL mechanism this crate implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    /// SCRAM with `hash`; `plus` for the channel-binding variant.
    Scram {
        /// The hash function.
        hash: Hash,
        /// Whether this is the -PLUS (channel binding) variant.
        plus: bool,
    },
    /// PLAIN (RFC 4616).
    Plain,
    /// EXTERNAL (RFC 4422 Appendix A).
    External,
}

impl Mechanism {
    /// Every mechanism, for parsing.
    const ALL: [Mechanism; 8] = [
        Mechanism::Scram {
            hash: Hash::Sha1,
            plus: false,
        },
        Mechanism::Scram {
            hash: Hash::Sha1,
            plus: true,
        },
        Mechanism::Scram {
            hash: Hash::Sha256,
            plus: false,
        },
        Mechanism::Scram {
            hash: Hash::Sha256,
            plus: true,
        },
        Mechanism::Scram {
            hash: Hash::Sha512,
            plus: false,
        },
        Mechanism::Scram {
            hash: Hash::Sha512,
            plus: true,
        },
        Mechanism::Plain,
        Mechanism::External,
    ];

    /// The registered mechanism name ("SCRAM-SHA-256-PLUS", "PLAIN"…).
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Scram {
                hash: Hash::Sha1,
                plus: false,
            } => "SCRAM-SHA-1",
            Mechanism::Scram {
                hash: Hash::Sha1,
                plus: true,
            } => "SCRAM-SHA-1-PLUS",
            Mechanism::Scram {
                hash: Hash::Sha256,
                plus: false,
            } => "SCRAM-SHA-256",
            Mechanism::Scram {
                hash: Hash::Sha256,
                plus: true,
            } => "SCRAM-SHA-256-PLUS",
            Mechanism::Scram {
                hash: Hash::Sha512,
                plus: false,
            } => "SCRAM-SHA-512",
            Mechanism::Scram {
                hash: Hash::Sha512,
                plus: true,
            } => "SCRAM-SHA-512-PLUS",
            Mechanism::Plain => "PLAIN",
            Mechanism::External => "EXTERNAL",
        }
    }

    /// The mechanism with this exact name (SASL mechanism names are upper case, RFC 4422
    /// §3.1).
    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether this is a SCRAM -PLUS mechanism.
    pub fn is_plus(&self) -> bool {
        matches!(self, Mechanism::Scram { plus: true, .. })
    }
}

/// A channel-binding type (RFC 5056) announced with XEP-0440.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelBindingType {
    /// `tls-exporter` (RFC 9266), for TLS 1.3 (and TLS 1.2 with extended master secret).
    TlsExporter,
    /// `tls-server-end-point` (RFC 5929 §4): the hash of the server certificate.
    TlsServerEndPoint,
}

impl ChannelBindingType {
    /// The registered name.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelBindingType::TlsExporter => "tls-exporter",
            ChannelBindingType::TlsServerEndPoint => "tls-server-end-point",
        }
    }

    /// The type with this exact name.
    pub fn parse(name: &str) -> Option<ChannelBindingType> {
        [
            ChannelBindingType::TlsExporter,
            ChannelBindingType::TlsServerEndPoint,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

/// The channel-binding data the TLS layer computed for one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChannelBindings {
    /// RFC 9266 exporter output, when available.
    pub tls_exporter: Option<Vec<u8>>,
    /// RFC 5929 §4 certificate hash, when available.
    pub tls_server_end_point: Option<Vec<u8>>,
}

impl ChannelBindings {
    /// The data for one type, if the TLS layer provided it.
    pub fn get(&self, cb_type: ChannelBindingType) -> Option<&[u8]> {
        match cb_type {
            ChannelBindingType::TlsExporter => self.tls_exporter.as_deref(),
            ChannelBindingType::TlsServerEndPoint => self.tls_server_end_point.as_deref(),
        }
    }
}

/// Errors of credential derivation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// RFC 7677 §4: SCRAM iteration counts below 4096 are not created.
    #[error("iteration count {0} is below the minimum of {MIN_ITERATIONS}")]
    IterationsTooLow(u32),
    /// The salt is empty.
    #[error("the salt is empty")]
    EmptySalt,
    /// The password is empty (before or after SASLprep).
    #[error("the password is empty")]
    EmptyPassword,
    /// SASLprep (RFC 4013) refuses the string.
    #[error("SASLprep refuses the string: {0}")]
    Saslprep(String),
    /// The operating system's random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(String),
    /// A cryptographic primitive refused its input (cannot happen with HMAC, which takes
    /// keys of any length; reported rather than panicking).
    #[error("internal cryptographic error")]
    Crypto,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod names_tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip() {
        for m in Mechanism::ALL {
            assert_eq!(Mechanism::parse(m.name()), Some(m));
        }
        assert_eq!(
            Mechanism::parse("SCRAM-SHA-256-PLUS"),
            Some(Mechanism::Scram {
                hash: Hash::Sha256,
                plus: true
            })
        );
        assert_eq!(Mechanism::parse("scram-sha-1"), None);
        assert_eq!(Mechanism::parse("DIGEST-MD5"), None);
        for h in Hash::ALL {
            assert_eq!(Hash::from_name(h.name()), Some(h));
        }
        assert_eq!(Hash::from_name("SHA-384"), None);
        assert_eq!(
            ChannelBindingType::parse("tls-exporter"),
            Some(ChannelBindingType::TlsExporter)
        );
        assert_eq!(
            ChannelBindingType::parse("tls-server-end-point"),
            Some(ChannelBindingType::TlsServerEndPoint)
        );
        assert_eq!(ChannelBindingType::parse("tls-unique"), None);
    }
}
