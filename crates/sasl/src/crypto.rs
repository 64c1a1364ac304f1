//! The SCRAM primitives of RFC 5802 §2.2 over the RustCrypto hash functions.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;

use crate::Hash;

/// HMAC refused its key. HMAC accepts keys of every length, so this does not happen; it
/// is an error rather than a panic so that no input can ever abort the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CryptoError;

/// Runs `$body` with `$d` naming the RustCrypto type of `$hash`.
macro_rules! with_hash {
    ($hash:expr, |$d:ident| $body:expr) => {
        match $hash {
            Hash::Sha1 => {
                type $d = sha1::Sha1;
                $body
            }
            Hash::Sha256 => {
                type $d = sha2::Sha256;
                $body
            }
            Hash::Sha512 => {
                type $d = sha2::Sha512;
                $body
            }
        }
    };
}

/// H(str).
pub(crate) fn h(hash: Hash, data: &[u8]) -> Vec<u8> {
    with_hash!(hash, |D| D::digest(data).to_vec())
}

/// HMAC(key, str), with `data` given in pieces that are fed in order.
pub(crate) fn hmac(hash: Hash, key: &[u8], data: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
    with_hash!(hash, |D| {
        let mut mac = <Hmac<D> as KeyInit>::new_from_slice(key).map_err(|_| CryptoError)?;
        for piece in data {
            mac.update(piece);
        }
        Ok(mac.finalize().into_bytes().to_vec())
    })
}

/// Hi(str, salt, i): PBKDF2 with HMAC as the PRF and one output block (RFC 5802 §2.2).
pub(crate) fn hi(hash: Hash, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; hash.output_len()];
    with_hash!(hash, |D| pbkdf2::pbkdf2_hmac::<D>(
        password, salt, iterations, &mut out
    ));
    out
}

/// The keys RFC 5802 §3 derives from SaltedPassword.
pub(crate) struct Keys {
    pub client_key: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// ClientKey, StoredKey and ServerKey from SaltedPassword.
pub(crate) fn keys(hash: Hash, salted_password: &[u8]) -> Result<Keys, CryptoError> {
    let client_key = hmac(hash, salted_password, &[b"Client Key"])?;
    let stored_key = h(hash, &client_key);
    let server_key = hmac(hash, salted_password, &[b"Server Key"])?;
    Ok(Keys {
        client_key,
        stored_key,
        server_key,
    })
}

/// Octet-wise XOR of two equal-length strings (shorter length wins otherwise).
pub(crate) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// Fills `buf` from the operating system's random number generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_matches_rfc_6070() {
        // RFC 6070 test vector 2 (PBKDF2-HMAC-SHA1, 2 iterations, 20 octets).
        let out = hi(Hash::Sha1, b"password", b"salt", 2);
        assert_eq!(
            out,
            [
                0xea, 0x6c, 0x01, 0x4d, 0xc7, 0x2d, 0x6f, 0x8c, 0xcd, 0x1e, 0xd9, 0x2a, 0xce, 0x1d,
                0x41, 0xf0, 0xd8, 0xde, 0x89, 0x57
            ]
        );
    }

    #[test]
    fn output_lengths() {
        for hash in Hash::ALL {
            assert_eq!(h(hash, b"x").len(), hash.output_len());
            assert_eq!(hmac(hash, b"k", &[b"x"]).unwrap().len(), hash.output_len());
            assert_eq!(hi(hash, b"p", b"s", 1).len(), hash.output_len());
        }
    }

    #[test]
    fn hmac_pieces_are_concatenated() {
        let whole = hmac(Hash::Sha256, b"key", &[b"abcdef"]).unwrap();
        let pieces = hmac(Hash::Sha256, b"key", &[b"ab", b"", b"cdef"]).unwrap();
        assert_eq!(whole, pieces);
    }
}
