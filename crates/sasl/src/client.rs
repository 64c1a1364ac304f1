//! The client side of SCRAM (RFC 5802 §5) and PLAIN (RFC 4616), for the project's test
//! client and load tool.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use subtle::ConstantTimeEq;

use crate::attr;
use crate::credentials::{MIN_ITERATIONS, saslprep};
use crate::crypto;
use crate::ssdp::downgrade_protection_hash;
use crate::{ChannelBindingType, Hash, MAX_MESSAGE_LEN, Mechanism};

/// Octets of randomness in the client nonce.
const CLIENT_NONCE_LEN: usize = 24;

/// The highest iteration count the client accepts: a hostile server could otherwise make
/// it spin for minutes.
pub const MAX_CLIENT_ITERATIONS: u32 = 1_000_000;

/// The channel-binding choice of a SCRAM client (RFC 5802 §6, `gs2-cbind-flag`).
#[derive(Clone, PartialEq, Eq)]
pub enum ClientChannelBinding {
    /// "n": the client does not support channel binding.
    None,
    /// "y": the client supports channel binding but believes the server does not.
    SupportedNotUsed,
    /// "p=type": bind to `data` of type `cb_type` (used with a -PLUS mechanism).
    Use {
        /// The channel-binding type.
        cb_type: ChannelBindingType,
        /// The channel-binding data of this connection.
        data: Vec<u8>,
    },
}

impl fmt::Debug for ClientChannelBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientChannelBinding::None => f.write_str("None"),
            ClientChannelBinding::SupportedNotUsed => f.write_str("SupportedNotUsed"),
            ClientChannelBinding::Use { cb_type, data } => f
                .debug_struct("Use")
                .field("cb_type", cb_type)
                .field("data_len", &data.len())
                .finish(),
        }
    }
}

/// Why the client side of an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A server message does not follow the SCRAM syntax.
    #[error("malformed server message: {0}")]
    Malformed(&'static str),
    /// The server nonce does not extend the client nonce.
    #[error("the server nonce does not start with the client nonce")]
    NonceMismatch,
    /// The iteration count is below [`MIN_ITERATIONS`] or above [`MAX_CLIENT_ITERATIONS`].
    #[error("unacceptable iteration count {0}")]
    Iterations(u32),
    /// The server-first-message requires an extension this client does not support.
    #[error("the server requires an unsupported mandatory extension")]
    MandatoryExtension,
    /// XEP-0474: the server's hash of its advertised lists differs from the lists this
    /// client saw, so the lists were tampered with.
    #[error("the advertised mechanisms or channel-binding types were tampered with")]
    DowngradeDetected,
    /// XEP-0474 protection was requested but the server sent no hash.
    #[error("the server did not send the XEP-0474 downgrade protection hash")]
    DowngradeProtectionMissing,
    /// The server sent `e=` in its final message.
    #[error("the server reported an error: {0}")]
    ServerError(String),
    /// The server signature does not verify: the server does not know the credentials.
    #[error("the server signature is wrong")]
    BadServerSignature,
    /// A method was called out of order.
    #[error("SCRAM messages handled out of order")]
    OutOfOrder,
    /// The operating system's random number generator failed.
    #[error("the random number generator failed")]
    Random,
    /// A cryptographic primitive refused its input.
    #[error("internal cryptographic error")]
    Crypto,
}

impl From<crypto::CryptoError> for ClientError {
    fn from(_: crypto::CryptoError) -> ClientError {
        ClientError::Crypto
    }
}

/// The client side of one SCRAM exchange.
pub struct ScramClient {
    hash: Hash,
    /// SASLprep'd and saslname-escaped username.
    username: String,
    /// SASLprep'd password (or the password as given when SASLprep refuses it).
    password: String,
    cb: ClientChannelBinding,
    authzid: Option<String>,
    nonce: Result<String, ClientError>,
    expected_lists: Option<(Vec<Mechanism>, Vec<ChannelBindingType>)>,
    gs2_header: Option<String>,
    client_first_bare: Option<String>,
    server_signature: Option<Vec<u8>>,
}

impl fmt::Debug for ScramClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramClient")
            .field("hash", &self.hash)
            .field("username", &self.username)
            .field("cb", &self.cb)
            .finish_non_exhaustive()
    }
}

impl ScramClient {
    /// Prepares an exchange. The username and password are prepared with SASLprep; a
    /// string SASLprep refuses is used as given (the server will then refuse it).
    pub fn new(hash: Hash, username: &str, password: &str, cb: ClientChannelBinding) -> Self {
        let username = saslprep(username).map_or_else(|_| username.to_owned(), |u| u.into_owned());
        let password = saslprep(password).map_or_else(|_| password.to_owned(), |p| p.into_owned());
        let mut raw = [0u8; CLIENT_NONCE_LEN];
        let nonce = crypto::random(&mut raw)
            .map(|()| B64.encode(raw))
            .map_err(|_| ClientError::Random);
        ScramClient {
            hash,
            username: attr::escape_saslname(&username),
            password,
            cb,
            authzid: None,
            nonce,
            expected_lists: None,
            gs2_header: None,
            client_first_bare: None,
            server_signature: None,
        }
    }

    /// Asks for an authorization identity (the `a=` attribute of the GS2 header).
    #[must_use]
    pub fn with_authzid(mut self, authzid: &str) -> Self {
        self.authzid = Some(authzid.to_owned());
        self
    }

    /// XEP-0474: checks the server's `h` attribute against the mechanisms and
    /// channel-binding types this client saw advertised (`cb_types` empty when the server
    /// did not use XEP-0440). A missing or different hash fails the exchange.
    #[must_use]
    pub fn with_downgrade_protection(
        mut self,
        offered: Vec<Mechanism>,
        cb_types: Vec<ChannelBindingType>,
    ) -> Self {
        self.expected_lists = Some((offered, cb_types));
        self
    }

    /// The mechanism this exchange uses (-PLUS when binding to a channel).
    pub fn mechanism(&self) -> Mechanism {
        Mechanism::Scram {
            hash: self.hash,
            plus: matches!(self.cb, ClientChannelBinding::Use { .. }),
        }
    }

    /// The client-first-message (the initial response).
    pub fn client_first(&mut self) -> Vec<u8> {
        let flag = match &self.cb {
            ClientChannelBinding::None => "n".to_owned(),
            ClientChannelBinding::SupportedNotUsed => "y".to_owned(),
            ClientChannelBinding::Use { cb_type, .. } => format!("p={}", cb_type.name()),
        };
        let authzid = self
            .authzid
            .as_deref()
            .map(|a| format!("a={}", attr::escape_saslname(a)))
            .unwrap_or_default();
        let gs2_header = format!("{flag},{authzid},");
        let nonce = self.nonce.as_deref().unwrap_or_default();
        let bare = format!("n={},r={nonce}", self.username);
        let message = format!("{gs2_header}{bare}");
        self.gs2_header = Some(gs2_header);
        self.client_first_bare = Some(bare);
        message.into_bytes()
    }

    /// Reads the server-first-message and returns the client-final-message.
    pub fn handle_server_first(&mut self, msg: &[u8]) -> Result<Vec<u8>, ClientError> {
        let client_nonce = self.nonce.clone()?;
        let (Some(gs2_header), Some(bare)) = (&self.gs2_header, &self.client_first_bare) else {
            return Err(ClientError::OutOfOrder);
        };
        let server_first = server_text(msg)?;

        // server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count
        //                        ["," extensions]
        let mut segments = server_first.split(',');
        let nonce_segment = segments.next().unwrap_or_default();
        if attr::value_of(nonce_segment, b'm').is_some() {
            return Err(ClientError::MandatoryExtension);
        }
        let nonce = attr::value_of(nonce_segment, b'r')
            .filter(|n| attr::is_nonce(n))
            .ok_or(ClientError::Malformed("nonce"))?;
        if !nonce.starts_with(&client_nonce) || nonce.len() == client_nonce.len() {
            return Err(ClientError::NonceMismatch);
        }
        let salt = segments
            .next()
            .and_then(|s| attr::value_of(s, b's'))
            .and_then(|s| B64.decode(s).ok())
            .filter(|s| !s.is_empty())
            .ok_or(ClientError::Malformed("salt"))?;
        let iterations: u32 = segments
            .next()
            .and_then(|s| attr::value_of(s, b'i'))
            .and_then(|i| i.parse().ok())
            .ok_or(ClientError::Malformed("iteration count"))?;
        if !(MIN_ITERATIONS..=MAX_CLIENT_ITERATIONS).contains(&iterations) {
            return Err(ClientError::Iterations(iterations));
        }
        let mut ssdp = None;
        for ext in segments {
            if !attr::is_extension(ext) {
                return Err(ClientError::Malformed("extension"));
            }
            if let Some(h) = attr::value_of(ext, b'h') {
                ssdp = Some(h);
            }
        }
        if let Some((offered, cb_types)) = &self.expected_lists {
            let expected = downgrade_protection_hash(self.hash, offered, cb_types);
            match ssdp {
                None => return Err(ClientError::DowngradeProtectionMissing),
                Some(h) if h != expected => return Err(ClientError::DowngradeDetected),
                Some(_) => {}
            }
        }

        let mut binding = gs2_header.clone().into_bytes();
        if let ClientChannelBinding::Use { data, .. } = &self.cb {
            binding.extend_from_slice(data);
        }
        let without_proof = format!("c={},r={nonce}", B64.encode(&binding));

        let salted = crypto::hi(self.hash, self.password.as_bytes(), &salt, iterations);
        let keys = crypto::keys(self.hash, &salted)?;
        let auth_message: [&[u8]; 5] = [
            bare.as_bytes(),
            b",",
            server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = crypto::hmac(self.hash, &keys.stored_key, &auth_message)?;
        let proof = crypto::xor(&keys.client_key, &client_signature);
        self.server_signature = Some(crypto::hmac(self.hash, &keys.server_key, &auth_message)?);
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message (the additional data of `<success/>`).
    pub fn handle_server_final(&self, msg: &[u8]) -> Result<(), ClientError> {
        let Some(expected) = &self.server_signature else {
            return Err(ClientError::OutOfOrder);
        };
        let text = server_text(msg)?;
        // server-final-message = (server-error / verifier) ["," extensions]
        let first = text.split(',').next().unwrap_or_default();
        if let Some(e) = attr::value_of(first, b'e') {
            return Err(ClientError::ServerError(e.to_owned()));
        }
        let verifier = attr::value_of(first, b'v')
            .and_then(|v| B64.decode(v).ok())
            .ok_or(ClientError::Malformed("verifier"))?;
        if bool::from(verifier.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ClientError::BadServerSignature)
        }
    }

    /// Test-only: a fixed client nonce.
    #[cfg(test)]
    pub(crate) fn with_nonce(mut self, nonce: &str) -> Self {
        self.nonce = Ok(nonce.to_owned());
        self
    }
}

/// The PLAIN initial response: `[authzid] NUL authcid NUL passwd` (RFC 4616 §2).
pub fn plain_initial_response(authzid: Option<&str>, username: &str, password: &str) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(authzid.map_or(0, str::len) + username.len() + password.len() + 2);
    out.extend_from_slice(authzid.unwrap_or_default().as_bytes());
    out.push(0);
    out.extend_from_slice(username.as_bytes());
    out.push(0);
    out.extend_from_slice(password.as_bytes());
    out
}

fn server_text(msg: &[u8]) -> Result<&str, ClientError> {
    if msg.len() > MAX_MESSAGE_LEN {
        return Err(ClientError::Malformed("too long"));
    }
    let s = std::str::from_utf8(msg).map_err(|_| ClientError::Malformed("not UTF-8"))?;
    if s.contains('\0') {
        return Err(ClientError::Malformed("NUL character"));
    }
    Ok(s)
}
