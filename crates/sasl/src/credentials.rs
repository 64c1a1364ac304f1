//! SCRAM credentials: what the server stores instead of a password (RFC 5802 §3).

use std::borrow::Cow;
use std::fmt;

use subtle::ConstantTimeEq;

use crate::crypto::{self, CryptoError};
use crate::{Hash, SaslError};

/// RFC 7677 §4: the minimum iteration count this crate creates credentials with.
pub const MIN_ITERATIONS: u32 = 4096;

/// The iteration count used when nothing else is configured (also the count of the fake
/// credentials offered for unknown users, see [`crate::ServerSession::with_fake_iterations`]).
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Length of the random salts this crate creates (RFC 5802 does not fix one; 16 octets
/// is comfortably unique).
pub const SALT_LEN: usize = 16;

/// The stored form of a password for one hash function.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredentials {
    /// The hash function these keys belong to.
    pub hash: Hash,
    /// The salt.
    pub salt: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// StoredKey = H(ClientKey).
    pub stored_key: Vec<u8>,
    /// ServerKey = HMAC(SaltedPassword, "Server Key").
    pub server_key: Vec<u8>,
}

impl fmt::Debug for ScramCredentials {
    // The keys are password equivalents for this server: never print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredentials")
            .field("hash", &self.hash)
            .field("salt_len", &self.salt.len())
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredentials {
    /// Derives credentials with a fresh random salt of [`SALT_LEN`] octets. The password
    /// is prepared with SASLprep (RFC 4013); `iterations` must be at least
    /// [`MIN_ITERATIONS`].
    pub fn derive(hash: Hash, password: &str, iterations: u32) -> Result<Self, SaslError> {
        let mut salt = [0u8; SALT_LEN];
        crypto::random(&mut salt).map_err(|e| SaslError::Random(e.to_string()))?;
        Self::derive_with_salt(hash, password, &salt, iterations)
    }

    /// Derives credentials with the given salt (for tests and for importing accounts whose
    /// salt is known).
    pub fn derive_with_salt(
        hash: Hash,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, SaslError> {
        if iterations < MIN_ITERATIONS {
            return Err(SaslError::IterationsTooLow(iterations));
        }
        if salt.is_empty() {
            return Err(SaslError::EmptySalt);
        }
        if password.is_empty() {
            return Err(SaslError::EmptyPassword);
        }
        let prepared = saslprep(password)?;
        if prepared.is_empty() {
            return Err(SaslError::EmptyPassword);
        }
        let salted = crypto::hi(hash, prepared.as_bytes(), salt, iterations);
        let keys = crypto::keys(hash, &salted).map_err(|CryptoError| SaslError::Crypto)?;
        Ok(ScramCredentials {
            hash,
            salt: salt.to_vec(),
            iterations,
            stored_key: keys.stored_key,
            server_key: keys.server_key,
        })
    }

    /// Whether `password` is the password these credentials were derived from (used by
    /// PLAIN). Runs the full PBKDF2 and compares StoredKey in constant time.
    pub fn verify_password(&self, password: &str) -> bool {
        let Ok(prepared) = saslprep(password) else {
            return false;
        };
        if prepared.is_empty() || self.iterations == 0 || self.salt.is_empty() {
            return false;
        }
        let salted = crypto::hi(self.hash, prepared.as_bytes(), &self.salt, self.iterations);
        match crypto::keys(self.hash, &salted) {
            Ok(keys) => keys.stored_key.ct_eq(&self.stored_key).into(),
            Err(CryptoError) => false,
        }
    }

    /// Whether the key lengths fit the hash function (stored credentials may be damaged).
    pub(crate) fn is_well_formed(&self) -> bool {
        let n = self.hash.output_len();
        self.stored_key.len() == n
            && self.server_key.len() == n
            && !self.salt.is_empty()
            && self.iterations > 0
    }
}

/// Credentials for SHA-1, SHA-256 and SHA-512, each with its own random salt.
pub fn derive_all(password: &str, iterations: u32) -> Result<Vec<ScramCredentials>, SaslError> {
    Hash::ALL
        .into_iter()
        .map(|hash| ScramCredentials::derive(hash, password, iterations))
        .collect()
}

/// SASLprep (RFC 4013, the "stored strings" variant: unassigned code points are
/// refused), used for SCRAM and PLAIN usernames and passwords.
pub fn saslprep(s: &str) -> Result<Cow<'_, str>, SaslError> {
    stringprep::saslprep(s).map_err(|e| SaslError::Saslprep(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslprep_cases() {
        // RFC 4013 §3 examples.
        assert_eq!(saslprep("I\u{ad}X").unwrap(), "IX"); // soft hyphen mapped to nothing
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("USER").unwrap(), "USER"); // case preserved
        assert_eq!(saslprep("\u{aa}").unwrap(), "a"); // NFKC
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX"); // NFKC
        assert!(saslprep("\u{7}").is_err()); // prohibited
        assert!(saslprep("\u{627}1").is_err()); // bidi check
        // Non-ASCII spaces are mapped to SPACE.
        assert_eq!(saslprep("pass\u{a0}word").unwrap(), "pass word");
        assert_eq!(saslprep("a\u{3000}b").unwrap(), "a b");
        // Zero-width joiner is mapped to nothing.
        assert_eq!(saslprep("a\u{200d}b").unwrap(), "ab");
    }

    #[test]
    fn derived_password_verifies() {
        for hash in Hash::ALL {
            let c = ScramCredentials::derive(hash, "pencil", 4096).unwrap();
            assert_eq!(c.salt.len(), SALT_LEN);
            assert_eq!(c.stored_key.len(), hash.output_len());
            assert!(c.is_well_formed());
            assert!(c.verify_password("pencil"));
            assert!(!c.verify_password("pencil2"));
            assert!(!c.verify_password(""));
        }
    }

    #[test]
    fn saslprep_is_applied_to_passwords() {
        let c = ScramCredentials::derive_with_salt(Hash::Sha256, "pass\u{ad}word", b"salt", 4096)
            .unwrap();
        // The soft hyphen is removed, so the plain form verifies, and vice versa.
        assert!(c.verify_password("password"));
        let d =
            ScramCredentials::derive_with_salt(Hash::Sha256, "password", b"salt", 4096).unwrap();
        assert_eq!(c, d);
        let e =
            ScramCredentials::derive_with_salt(Hash::Sha256, "a\u{a0}b", b"salt", 4096).unwrap();
        assert!(e.verify_password("a b"));
    }

    #[test]
    fn derivation_refusals() {
        assert_eq!(
            ScramCredentials::derive(Hash::Sha256, "pencil", 4095),
            Err(SaslError::IterationsTooLow(4095))
        );
        assert_eq!(
            ScramCredentials::derive_with_salt(Hash::Sha256, "pencil", b"", 4096),
            Err(SaslError::EmptySalt)
        );
        assert_eq!(
            ScramCredentials::derive(Hash::Sha256, "", 4096),
            Err(SaslError::EmptyPassword)
        );
        assert_eq!(
            ScramCredentials::derive(Hash::Sha256, "\u{ad}", 4096),
            Err(SaslError::EmptyPassword)
        );
        assert!(matches!(
            ScramCredentials::derive(Hash::Sha256, "a\u{7}", 4096),
            Err(SaslError::Saslprep(_))
        ));
    }

    #[test]
    fn derive_all_gives_three_salts() {
        let all = derive_all("pencil", 4096).unwrap();
        let hashes: Vec<Hash> = all.iter().map(|c| c.hash).collect();
        assert_eq!(hashes, Hash::ALL);
        assert_ne!(all[0].salt, all[1].salt);
        assert!(all.iter().all(|c| c.verify_password("pencil")));
    }

    #[test]
    fn debug_hides_keys() {
        let c = ScramCredentials::derive_with_salt(Hash::Sha1, "pencil", b"salt", 4096).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("stored_key"));
        assert!(!shown.contains("server_key"));
    }
}
