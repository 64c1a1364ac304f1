//! The usage policy users must accept before they chat: its versions, the server's signing key
//! and the signed receipts of acceptance.
//!
//! This crate owns the policy document format (a Markdown or plain-text file with a TOML front
//! matter; its version id is the SHA-256 of the file), the server's Ed25519 key file (created on
//! first use, owner-only), and acceptance receipts: their canonical encoding, their signatures,
//! and the hash chain that shows when stored receipts were edited, removed, inserted or
//! reordered. It is a plain library: it reads the policy and key files it is pointed at, and
//! knows nothing of the network, of sessions, of how users are asked to accept, or of where
//! versions and receipts are stored.
//!
//! Standards: RFC 8032 (Ed25519, pure variant: keys §5.1.5, signing §5.1.6, verification
//! §5.1.7 with the strict checks), FIPS 180-4 (SHA-256), RFC 3339 §5.6 (dates in the front
//! matter), RFC 4648 §4 (base64 of signatures), TOML 1.0 (front matter).
//!
//! Layout: `document.rs` (policy versions), `keys.rs` (the signing key), `receipt.rs` (receipts
//! and the chain check), `rfc3339.rs` (dates without a calendar library).

pub mod compliance;
pub mod document;
pub mod gate;
pub mod keys;
mod metrics;
pub mod receipt;
pub mod rfc3339;
pub mod rows;

pub use document::{DocumentError, MAX_DOCUMENT_BYTES, PolicyDocument, TextFormat};
pub use gate::{GateOptions, Mode, PolicyGate};
pub use keys::{KeyError, ServerKey, fingerprint, load_or_create, verify};
pub use receipt::{
    CANONICAL_TAG, ChainLink, ChainProblem, ChainReport, FIRST_SEQ, GENESIS_PREV, ReceiptFields,
    SignedReceipt, canonical_bytes, next_link, receipt_hash, sign, verify_chain, verify_links,
};

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Lowercase hex only, as this crate writes it: anything else is `None`, so that a stored hash
/// in another case does not pass for the written one.
pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let b = text.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        let text = hex(&all);
        assert!(text.starts_with("000102") && text.ends_with("fdfeff"));
        assert_eq!(hex_decode(&text), Some(all));
        assert_eq!(hex_decode(""), Some(vec![]));
        for bad in ["0", "0g", "AB", " 0"] {
            assert_eq!(hex_decode(bad), None, "{bad:?}");
        }
    }
}
