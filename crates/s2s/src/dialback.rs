//! XEP-0185 Dialback Key Generation and Validation.
//!
//! The key is HMAC-SHA256 keyed with the lowercase hex form of SHA-256(secret), over
//! "Receiving Server" SP "Originating Server" SP "Stream ID", rendered as lowercase hex
//! (XEP-0185 §2). Hashing the secret first gives the HMAC a key of full length whatever
//! the configured secret is; the spaces keep the concatenation unambiguous.

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Lowercase hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn key_bytes(secret: &[u8], receiving: &str, originating: &str, stream_id: &str) -> [u8; 32] {
    // XEP-0185 §2 note 4: the SHA-256 of the secret is used in its hexadecimal form.
    let hashed_secret = hex(&Sha256::digest(secret));
    // HMAC accepts keys of any length, so this cannot fail; the fallback keeps the
    // function total without a panic path.
    let mut mac = match HmacSha256::new_from_slice(hashed_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(receiving.as_bytes());
    mac.update(b" ");
    mac.update(originating.as_bytes());
    mac.update(b" ");
    mac.update(stream_id.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The dialback key for a stream from `originating` to `receiving` whose receiving side
/// chose `stream_id`, as lowercase hex (64 characters).
pub fn dialback_key(secret: &[u8], receiving: &str, originating: &str, stream_id: &str) -> String {
    hex(&key_bytes(secret, receiving, originating, stream_id))
}

/// Whether `key`, as received in a `<db:verify/>` (XEP-0220 §2.1.3), is the key this
/// server generated for that stream. The comparison takes the same time wherever the
/// first difference is, so a peer cannot guess a key byte by byte. Surrounding XML
/// whitespace is ignored and hex digits are compared case-insensitively.
pub fn verify_key(
    secret: &[u8],
    receiving: &str,
    originating: &str,
    stream_id: &str,
    key: &str,
) -> bool {
    let expected = dialback_key(secret, receiving, originating, stream_id);
    let received = key
        .trim_matches([' ', '\t', '\r', '\n'])
        .to_ascii_lowercase();
    // Length is not secret (always 64 for a genuine key); `ct_eq` on slices of different
    // lengths returns false.
    expected.as_bytes().ct_eq(received.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    // XEP-0185 §3 example values.
    const SECRET: &[u8] = b"s3cr3tf0rd14lb4ck";
    const RECEIVING: &str = "xmpp.example.com";
    const ORIGINATING: &str = "example.org";
    const STREAM_ID: &str = "D60000229F";
    const KEY: &str = "37c69b1cf07a3f67c04a5ef5902fa5114f2c76fe4a2686482ba5b89323075643";

    #[test]
    fn hashed_secret_matches_xep_example() {
        assert_eq!(
            hex(&Sha256::digest(SECRET)),
            "a7136eb1f46c9ef18c5e78c36ca257067c69b3d518285f0b18a96c33beae9acc"
        );
    }

    #[test]
    fn key_matches_xep_example() {
        assert_eq!(dialback_key(SECRET, RECEIVING, ORIGINATING, STREAM_ID), KEY);
    }

    #[test]
    fn verify_accepts_the_example_key() {
        assert!(verify_key(SECRET, RECEIVING, ORIGINATING, STREAM_ID, KEY));
        assert!(verify_key(
            SECRET,
            RECEIVING,
            ORIGINATING,
            STREAM_ID,
            &format!("\n    {}\n", KEY.to_ascii_uppercase())
        ));
    }

    #[test]
    fn verify_rejects_other_inputs() {
        // One changed hex digit.
        let mut wrong = KEY.to_owned();
        wrong.replace_range(63.., "4");
        assert!(!verify_key(
            SECRET,
            RECEIVING,
            ORIGINATING,
            STREAM_ID,
            &wrong
        ));
        // Truncated, empty, or extended.
        assert!(!verify_key(
            SECRET,
            RECEIVING,
            ORIGINATING,
            STREAM_ID,
            &KEY[..63]
        ));
        assert!(!verify_key(SECRET, RECEIVING, ORIGINATING, STREAM_ID, ""));
        assert!(!verify_key(
            SECRET,
            RECEIVING,
            ORIGINATING,
            STREAM_ID,
            &format!("{KEY}0")
        ));
        // Same key, different context.
        assert!(!verify_key(
            b"other",
            RECEIVING,
            ORIGINATING,
            STREAM_ID,
            KEY
        ));
        assert!(!verify_key(SECRET, ORIGINATING, RECEIVING, STREAM_ID, KEY));
        assert!(!verify_key(
            SECRET,
            RECEIVING,
            ORIGINATING,
            "D60000229G",
            KEY
        ));
    }

    #[test]
    fn separator_prevents_ambiguous_concatenation() {
        // XEP-0185 §2 note 5: "example.in" + "form.example.org" must not collide with
        // "example.info" + "rm.example.org".
        assert_ne!(
            dialback_key(SECRET, "example.in", "form.example.org", "id"),
            dialback_key(SECRET, "example.info", "rm.example.org", "id")
        );
    }

    #[test]
    fn key_is_64_lowercase_hex_digits() {
        let key = dialback_key(b"", "", "", "");
        assert_eq!(key.len(), 64);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }
}
