//! The server side of the mechanisms, as one sans-IO state machine per exchange.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use subtle::{Choice, ConstantTimeEq};

use crate::attr;
use crate::credentials::{DEFAULT_ITERATIONS, SALT_LEN, ScramCredentials, saslprep};
use crate::crypto::{self, CryptoError};
use crate::ssdp::downgrade_protection_hash;
use crate::{ChannelBindingType, ChannelBindings, Hash, MAX_MESSAGE_LEN, Mechanism};

/// Octets of randomness in the server's part of the SCRAM nonce.
const SERVER_NONCE_LEN: usize = 24;

/// What the server knows about the connection an exchange runs on.
#[derive(Clone)]
pub struct ServerContext {
    /// The mechanism list exactly as advertised on this connection (XEP-0474 hashes it,
    /// and a -PLUS entry here makes a client's "y" flag a detected downgrade).
    pub offered: Vec<Mechanism>,
    /// The channel-binding data the TLS layer computed for this connection.
    pub channel_bindings: ChannelBindings,
    /// The channel-binding types advertised with XEP-0440 (empty when not advertised).
    pub offered_cb_types: Vec<ChannelBindingType>,
    /// A per-server secret from which the fake salts for unknown users are made, so that
    /// the salt offered for a name is stable and does not reveal whether it exists.
    pub secret: [u8; 32],
}

impl fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerContext")
            .field("offered", &self.offered)
            .field("channel_bindings", &self.channel_bindings)
            .field("offered_cb_types", &self.offered_cb_types)
            .finish_non_exhaustive()
    }
}

impl ServerContext {
    fn offers_plus(&self) -> bool {
        self.offered.iter().any(Mechanism::is_plus)
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look up the stored credentials of `username` (SASLprep applied; JID normalization
    /// of the localpart is the caller's job) for `hash` and pass them to
    /// [`ServerSession::provide_credentials`]. For PLAIN, `hash` is only a preference:
    /// credentials of any hash are accepted.
    NeedCredentials {
        /// The authentication identity.
        username: String,
        /// The authorization identity, when the client sent one.
        authzid: Option<String>,
        /// The hash of the credentials wanted.
        hash: Hash,
    },
    /// Send this challenge (the caller base64-encodes it).
    Challenge(Vec<u8>),
    /// Authentication succeeded.
    Success {
        /// The authentication identity (empty for EXTERNAL: the caller derives it from
        /// the peer's certificate).
        username: String,
        /// The authorization identity the client asked for, when it sent a non-empty one;
        /// the caller checks that it may act as that identity.
        authzid: Option<String>,
        /// Data for the `<success/>` element (the SCRAM server-final-message).
        additional_data: Option<Vec<u8>>,
    },
}

/// Why an exchange failed: the SASL failure conditions of RFC 6120 §6.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// §6.5.1 `<aborted/>`.
    Aborted,
    /// §6.5.2 `<account-disabled/>`.
    AccountDisabled,
    /// §6.5.3 `<credentials-expired/>`.
    CredentialsExpired,
    /// §6.5.4 `<encryption-required/>`.
    EncryptionRequired,
    /// §6.5.5 `<incorrect-encoding/>`.
    IncorrectEncoding,
    /// §6.5.6 `<invalid-authzid/>`.
    InvalidAuthzid,
    /// §6.5.7 `<invalid-mechanism/>`.
    InvalidMechanism,
    /// §6.5.8 `<malformed-request/>`.
    MalformedRequest,
    /// §6.5.9 `<mechanism-too-weak/>`.
    MechanismTooWeak,
    /// §6.5.10 `<not-authorized/>`.
    NotAuthorized,
    /// §6.5.11 `<temporary-auth-failure/>`.
    TemporaryAuthFailure,
}

impl Failure {
    /// The RFC 6120 §6.5 element name of the condition.
    pub fn condition(&self) -> &'static str {
        match self {
            Failure::Aborted => "aborted",
            Failure::AccountDisabled => "account-disabled",
            Failure::CredentialsExpired => "credentials-expired",
            Failure::EncryptionRequired => "encryption-required",
            Failure::IncorrectEncoding => "incorrect-encoding",
            Failure::InvalidAuthzid => "invalid-authzid",
            Failure::InvalidMechanism => "invalid-mechanism",
            Failure::MalformedRequest => "malformed-request",
            Failure::MechanismTooWeak => "mechanism-too-weak",
            Failure::NotAuthorized => "not-authorized",
            Failure::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }

    /// A short human-readable text for the `<text/>` child (also the `Display` form).
    pub fn text(&self) -> &'static str {
        match self {
            Failure::Aborted => "the exchange was aborted",
            Failure::AccountDisabled => "the account is disabled",
            Failure::CredentialsExpired => "the credentials have expired",
            Failure::EncryptionRequired => "the mechanism requires an encrypted stream",
            Failure::IncorrectEncoding => "the data is not correctly encoded",
            Failure::InvalidAuthzid => "the authorization identity is not valid for this account",
            Failure::InvalidMechanism => "the mechanism is not offered",
            Failure::MalformedRequest => "the data violates the syntax of the mechanism",
            Failure::MechanismTooWeak => "the mechanism is weaker than the server's policy allows",
            Failure::NotAuthorized => "the credentials are not valid",
            Failure::TemporaryAuthFailure => {
                "authentication failed because of a temporary error on the server"
            }
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for Failure {}

impl From<CryptoError> for Failure {
    fn from(_: CryptoError) -> Failure {
        Failure::TemporaryAuthFailure
    }
}

/// The channel-binding flag of a GS2 header (RFC 5802 §7 `gs2-cbind-flag`).
enum CbFlag<'a> {
    /// "n": the client does not support channel binding.
    None,
    /// "y": the client supports it but thinks the server does not.
    SupportedNotUsed,
    /// "p=name": the client uses this type.
    Use(&'a str),
}

/// What a SCRAM client-first-message established.
struct ScramFirst {
    hash: Hash,
    /// The GS2 header exactly as received, with its final comma.
    gs2_header: String,
    /// The channel-binding data the client must have bound to (empty unless "p").
    cb_data: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    username: String,
    authzid: Option<String>,
}

/// A SCRAM exchange waiting for the client-final-message.
struct ScramPending {
    first: ScramFirst,
    server_first: String,
    nonce: String,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
    /// False for the fake credentials of an unknown user: the exchange runs to its end
    /// and then fails.
    known: bool,
}

enum State {
    Start,
    /// An empty challenge was sent because the client gave no initial response.
    Challenged,
    ScramNeedCredentials(ScramFirst),
    ScramNeedFinal(Box<ScramPending>),
    PlainNeedCredentials {
        username: String,
        authzid: Option<String>,
        password: String,
    },
    /// Finished, successfully or not; any further input is refused.
    Done,
}

/// One SASL exchange on the server side.
///
/// The session owns its [`ServerContext`] (it is small: the mechanism list, the
/// channel-binding data and the secret); make a new context per exchange.
pub struct ServerSession {
    mechanism: Mechanism,
    ctx: ServerContext,
    state: State,
    fake_iterations: u32,
    /// Fixed server nonce, only set by the test-vector constructor.
    fixed_nonce: Option<String>,
    /// Whether to add the XEP-0474 attribute (off only for the RFC test vectors, which
    /// predate it).
    ssdp: bool,
}

impl fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSession")
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// Starts an exchange for `mechanism` on a connection described by `ctx`.
    pub fn new(mechanism: Mechanism, ctx: ServerContext) -> Self {
        ServerSession {
            mechanism,
            ctx,
            state: State::Start,
            fake_iterations: DEFAULT_ITERATIONS,
            fixed_nonce: None,
            ssdp: true,
        }
    }

    /// The iteration count offered with the fake salt of an unknown user. Set it to the
    /// count new credentials are created with, so that unknown users look like the
    /// others. Defaults to [`DEFAULT_ITERATIONS`].
    #[must_use]
    pub fn with_fake_iterations(mut self, iterations: u32) -> Self {
        self.fake_iterations = iterations.max(1);
        self
    }

    /// The mechanism of this exchange.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// For a client that sent no initial response (RFC 6120 §6.4.2): returns the empty
    /// challenge to send; the client's answer then goes to [`ServerSession::step`].
    pub fn start_without_initial_response(&mut self) -> Result<Step, Failure> {
        match self.state {
            State::Start => {
                if !self.ctx.offered.contains(&self.mechanism) {
                    self.state = State::Done;
                    return Err(Failure::InvalidMechanism);
                }
                self.state = State::Challenged;
                Ok(Step::Challenge(Vec::new()))
            }
            _ => {
                self.state = State::Done;
                Err(Failure::MalformedRequest)
            }
        }
    }

    /// Feeds the next client message (the initial response, or a response), already
    /// base64-decoded.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, Failure> {
        let state = std::mem::replace(&mut self.state, State::Done);
        if input.len() > MAX_MESSAGE_LEN {
            return Err(Failure::MalformedRequest);
        }
        match state {
            State::Start | State::Challenged => self.first_message(input),
            State::ScramNeedFinal(pending) => self.scram_final(*pending, input),
            // The caller owes credentials; a client message now is out of order.
            State::ScramNeedCredentials(_) | State::PlainNeedCredentials { .. } => {
                Err(Failure::TemporaryAuthFailure)
            }
            State::Done => Err(Failure::MalformedRequest),
        }
    }

    /// Answers [`Step::NeedCredentials`]. `None` means there is no such user, or no
    /// credentials for the hash: the exchange goes on with a fake salt derived from the
    /// server secret and the username, and fails with `not-authorized` at the end, doing
    /// the same work as for a wrong password.
    pub fn provide_credentials(
        &mut self,
        creds: Option<ScramCredentials>,
    ) -> Result<Step, Failure> {
        let state = std::mem::replace(&mut self.state, State::Done);
        if let Some(c) = &creds
            && !c.is_well_formed()
        {
            // Damaged stored credentials are a server problem, not the client's.
            return Err(Failure::TemporaryAuthFailure);
        }
        match state {
            State::ScramNeedCredentials(first) => self.scram_server_first(first, creds),
            State::PlainNeedCredentials {
                username,
                authzid,
                password,
            } => self.plain_verify(username, authzid, &password, creds),
            _ => Err(Failure::TemporaryAuthFailure),
        }
    }

    fn first_message(&mut self, input: &[u8]) -> Result<Step, Failure> {
        if !self.ctx.offered.contains(&self.mechanism) {
            return Err(Failure::InvalidMechanism);
        }
        match self.mechanism {
            Mechanism::Scram { hash, plus } => self.scram_first(hash, plus, input),
            Mechanism::Plain => self.plain(input),
            Mechanism::External => external(input),
        }
    }

    // ---- SCRAM (RFC 5802 §5, §7) -------------------------------------------------------

    fn scram_first(&mut self, hash: Hash, plus: bool, input: &[u8]) -> Result<Step, Failure> {
        let msg = text(input)?;
        // gs2-header = gs2-cbind-flag "," [ authzid ] ","
        let mut parts = msg.splitn(3, ',');
        let (Some(flag), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Failure::MalformedRequest);
        };
        let gs2_header = msg
            .get(..flag.len() + authz.len() + 2)
            .ok_or(Failure::MalformedRequest)?;

        let flag = match flag {
            "n" => CbFlag::None,
            "y" => CbFlag::SupportedNotUsed,
            _ => match flag.strip_prefix("p=") {
                Some(name) if attr::is_cb_name(name) => CbFlag::Use(name),
                _ => return Err(Failure::MalformedRequest),
            },
        };
        let authzid = if authz.is_empty() {
            None
        } else {
            let value = attr::value_of(authz, b'a').ok_or(Failure::MalformedRequest)?;
            Some(attr::unescape_saslname(value).ok_or(Failure::MalformedRequest)?)
        };

        // RFC 5802 §6: with a -PLUS mechanism the client binds; without -PLUS it must not.
        if plus != matches!(flag, CbFlag::Use(_)) {
            return Err(Failure::MalformedRequest);
        }
        let cb_data = match flag {
            CbFlag::Use(name) => {
                // XEP-0440: only an advertised type is acceptable.
                let cb_type = ChannelBindingType::parse(name)
                    .filter(|t| self.ctx.offered_cb_types.contains(t))
                    .ok_or(Failure::MalformedRequest)?;
                self.ctx
                    .channel_bindings
                    .get(cb_type)
                    .ok_or(Failure::TemporaryAuthFailure)?
                    .to_vec()
            }
            CbFlag::SupportedNotUsed if self.ctx.offers_plus() => {
                // RFC 5802 §6: the client believes the server cannot bind, but this server
                // offered -PLUS: the mechanism list was tampered with.
                return Err(Failure::NotAuthorized);
            }
            CbFlag::SupportedNotUsed | CbFlag::None => Vec::new(),
        };

        // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
        let mut segments = bare.split(',');
        let user_segment = segments.next().ok_or(Failure::MalformedRequest)?;
        if attr::value_of(user_segment, b'm').is_some() {
            // RFC 5802 §5.1: no mandatory extension is supported.
            return Err(Failure::MalformedRequest);
        }
        let username = attr::value_of(user_segment, b'n')
            .and_then(attr::unescape_saslname)
            .ok_or(Failure::MalformedRequest)?;
        let client_nonce = segments
            .next()
            .and_then(|s| attr::value_of(s, b'r'))
            .filter(|n| attr::is_nonce(n))
            .ok_or(Failure::MalformedRequest)?;
        for ext in segments {
            if !attr::is_extension(ext) || attr::value_of(ext, b'm').is_some() {
                return Err(Failure::MalformedRequest);
            }
        }

        // RFC 5802 §5.1: the username is prepared with SASLprep; a name it refuses, or that
        // prepares to nothing, cannot be an account.
        let username = match saslprep(&username) {
            Ok(u) if !u.is_empty() => u.into_owned(),
            _ => return Err(Failure::NotAuthorized),
        };

        self.state = State::ScramNeedCredentials(ScramFirst {
            hash,
            gs2_header: gs2_header.to_owned(),
            cb_data,
            client_first_bare: bare.to_owned(),
            client_nonce: client_nonce.to_owned(),
            username: username.clone(),
            authzid: authzid.clone(),
        });
        Ok(Step::NeedCredentials {
            username,
            authzid,
            hash,
        })
    }

    fn scram_server_first(
        &mut self,
        first: ScramFirst,
        creds: Option<ScramCredentials>,
    ) -> Result<Step, Failure> {
        let hash = first.hash;
        let (salt, iterations, stored_key, server_key, known) = match creds {
            Some(c) if c.hash == hash => (c.salt, c.iterations, c.stored_key, c.server_key, true),
            // Credentials for another hash are a caller error, not a reason to let the
            // exchange leak anything.
            Some(_) => return Err(Failure::TemporaryAuthFailure),
            None => {
                let salt = self.fake_salt(hash, &first.username)?;
                let stored = crypto::hmac(
                    hash,
                    &self.ctx.secret,
                    &[b"fake stored key", first.username.as_bytes()],
                )?;
                let server = crypto::hmac(
                    hash,
                    &self.ctx.secret,
                    &[b"fake server key", first.username.as_bytes()],
                )?;
                (salt, self.fake_iterations, stored, server, false)
            }
        };

        let server_nonce = match &self.fixed_nonce {
            Some(n) => n.clone(),
            None => {
                let mut raw = [0u8; SERVER_NONCE_LEN];
                crypto::random(&mut raw).map_err(|_| Failure::TemporaryAuthFailure)?;
                B64.encode(raw)
            }
        };
        let nonce = format!("{}{}", first.client_nonce, server_nonce);
        let mut server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
        if self.ssdp {
            server_first.push_str(",h=");
            server_first.push_str(&downgrade_protection_hash(
                hash,
                &self.ctx.offered,
                &self.ctx.offered_cb_types,
            ));
        }
        let challenge = server_first.clone().into_bytes();
        self.state = State::ScramNeedFinal(Box::new(ScramPending {
            first,
            server_first,
            nonce,
            stored_key,
            server_key,
            known,
        }));
        Ok(Step::Challenge(challenge))
    }

    fn scram_final(&mut self, p: ScramPending, input: &[u8]) -> Result<Step, Failure> {
        let hash = p.first.hash;
        let msg = text(input)?;
        // client-final-message = channel-binding "," nonce ["," extensions] "," proof
        let segments: Vec<&str> = msg.split(',').collect();
        let [first_seg, nonce_seg, middle @ .., proof_seg] = segments.as_slice() else {
            return Err(Failure::MalformedRequest);
        };
        let c = attr::value_of(first_seg, b'c').ok_or(Failure::MalformedRequest)?;
        let r = attr::value_of(nonce_seg, b'r').ok_or(Failure::MalformedRequest)?;
        let proof_b64 = attr::value_of(proof_seg, b'p').ok_or(Failure::MalformedRequest)?;
        if !middle.iter().all(|e| attr::is_extension(e)) {
            return Err(Failure::MalformedRequest);
        }
        let without_proof = msg
            .get(..msg.len() - proof_seg.len() - 1)
            .ok_or(Failure::MalformedRequest)?;

        let binding = B64.decode(c).map_err(|_| Failure::IncorrectEncoding)?;
        let proof = B64
            .decode(proof_b64)
            .map_err(|_| Failure::IncorrectEncoding)?;
        if proof.len() != hash.output_len() {
            return Err(Failure::MalformedRequest);
        }

        // RFC 5802 §5.1 "c": the GS2 header of the first message followed by the
        // channel-binding data, and nothing else.
        let mut expected = p.first.gs2_header.clone().into_bytes();
        expected.extend_from_slice(&p.first.cb_data);
        if binding != expected || c != B64.encode(&expected) {
            return Err(Failure::NotAuthorized);
        }
        if r != p.nonce {
            return Err(Failure::NotAuthorized);
        }

        // AuthMessage = client-first-message-bare "," server-first-message ","
        //               client-final-message-without-proof
        let auth_message: [&[u8]; 5] = [
            p.first.client_first_bare.as_bytes(),
            b",",
            p.server_first.as_bytes(),
            b",",
            without_proof.as_bytes(),
        ];
        let client_signature = crypto::hmac(hash, &p.stored_key, &auth_message)?;
        let client_key = crypto::xor(&proof, &client_signature);
        let computed = crypto::h(hash, &client_key);
        let valid: Choice = computed.ct_eq(&p.stored_key) & Choice::from(u8::from(p.known));
        if !bool::from(valid) {
            return Err(Failure::NotAuthorized);
        }

        let server_signature = crypto::hmac(hash, &p.server_key, &auth_message)?;
        let server_final = format!("v={}", B64.encode(server_signature));
        Ok(Step::Success {
            username: p.first.username,
            authzid: p.first.authzid,
            additional_data: Some(server_final.into_bytes()),
        })
    }

    /// A salt for a name that has no credentials: stable for the name (so repeated tries
    /// see the same salt, as for a real account) and unpredictable without the secret.
    /// The name is lower-cased first because account lookups ignore case: otherwise
    /// "Juliet" and "juliet" would get different salts only when the account is missing.
    fn fake_salt(&self, hash: Hash, username: &str) -> Result<Vec<u8>, Failure> {
        let folded = username.to_lowercase();
        let mut salt = crypto::hmac(
            Hash::Sha256,
            &self.ctx.secret,
            &[
                b"fake salt\0",
                hash.name().as_bytes(),
                b"\0",
                folded.as_bytes(),
            ],
        )?;
        salt.truncate(SALT_LEN);
        Ok(salt)
    }

    // ---- PLAIN (RFC 4616) --------------------------------------------------------------

    fn plain(&mut self, input: &[u8]) -> Result<Step, Failure> {
        // message = [authzid] UTF8NUL authcid UTF8NUL passwd
        let msg = std::str::from_utf8(input).map_err(|_| Failure::MalformedRequest)?;
        let mut parts = msg.split('\0');
        let (Some(authzid), Some(authcid), Some(password), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Failure::MalformedRequest);
        };
        if authcid.is_empty() || password.is_empty() {
            return Err(Failure::MalformedRequest);
        }
        // RFC 4616 §2: the server prepares authcid and passwd with SASLprep; a refused or
        // empty result fails the verification.
        let username = match saslprep(authcid) {
            Ok(u) if !u.is_empty() => u.into_owned(),
            _ => return Err(Failure::NotAuthorized),
        };
        let authzid = (!authzid.is_empty()).then(|| authzid.to_owned());
        self.state = State::PlainNeedCredentials {
            username: username.clone(),
            authzid: authzid.clone(),
            password: password.to_owned(),
        };
        Ok(Step::NeedCredentials {
            username,
            authzid,
            hash: Hash::Sha256,
        })
    }

    fn plain_verify(
        &mut self,
        username: String,
        authzid: Option<String>,
        password: &str,
        creds: Option<ScramCredentials>,
    ) -> Result<Step, Failure> {
        let valid = match creds {
            Some(c) => c.verify_password(password),
            None => {
                // Spend the same PBKDF2 work as for an existing account.
                let salt = self.fake_salt(Hash::Sha256, &username)?;
                let derived = crypto::hi(
                    Hash::Sha256,
                    password.as_bytes(),
                    &salt,
                    self.fake_iterations,
                );
                std::hint::black_box(derived);
                false
            }
        };
        if !valid {
            return Err(Failure::NotAuthorized);
        }
        Ok(Step::Success {
            username,
            authzid,
            additional_data: None,
        })
    }

    /// Test-only constructor: fixed server nonce, and the XEP-0474 attribute on or off.
    #[cfg(test)]
    pub(crate) fn for_test_vectors(
        mechanism: Mechanism,
        ctx: ServerContext,
        server_nonce: &str,
        ssdp: bool,
    ) -> Self {
        ServerSession {
            fixed_nonce: Some(server_nonce.to_owned()),
            ssdp,
            ..ServerSession::new(mechanism, ctx)
        }
    }
}

// ---- EXTERNAL (RFC 4422 Appendix A) ------------------------------------------------------

fn external(input: &[u8]) -> Result<Step, Failure> {
    let authzid = text(input)?;
    Ok(Step::Success {
        username: String::new(),
        authzid: (!authzid.is_empty()).then(|| authzid.to_owned()),
        additional_data: None,
    })
}

/// A mechanism message as UTF-8 text without NUL (RFC 5802 §7 and RFC 4422 Appendix A
/// both exclude NUL).
fn text(input: &[u8]) -> Result<&str, Failure> {
    let s = std::str::from_utf8(input).map_err(|_| Failure::MalformedRequest)?;
    if s.contains('\0') {
        return Err(Failure::MalformedRequest);
    }
    Ok(s)
}
