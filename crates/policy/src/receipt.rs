//! Acceptance receipts: who accepted which policy version, when, how and from where, signed by
//! the server and chained so that removing, inserting, reordering or editing a stored receipt
//! shows.
//!
//! Each receipt's hash is SHA-256 (FIPS 180-4) of its canonical bytes, which include the hash of
//! the receipt before it (`prev_hash`; [`GENESIS_PREV`] for the first). The server signs the 32
//! hash bytes with Ed25519 (RFC 8032). Receipts are numbered `seq` = 1, 2, 3… with no gaps.
//!
//! The canonical bytes, version 1, in this order (all integers big-endian):
//!
//! | part | encoding |
//! | --- | --- |
//! | tag | the string `causerie-receipt-v1` |
//! | `seq` | i64, 8 bytes |
//! | `username`, `domain`, `resource`, `policy_hash`, `method` | strings |
//! | `accepted_at` | i64, 8 bytes |
//! | `remote_addr`, `client` | optional strings |
//! | `prev_hash` | string |
//!
//! A string is its UTF-8 length as u64 (8 bytes) then its bytes; an optional string is one byte
//! `0` when absent, or `1` followed by the string. Every part has a fixed size or states its own,
//! so the bytes can be read back into exactly one set of fields: two different receipts never
//! share canonical bytes.
//!
//! What a chain check can and cannot see: a deleted last receipt leaves a valid shorter chain, so
//! [`verify_chain`] takes a checkpoint (a `seq` and hash known from earlier, such as the last
//! receipt at the previous audit, kept apart from the database) and reports [`Truncated`] when
//! the receipts no longer reach it. Someone holding the signing key can rewrite the whole chain;
//! against that, only checkpoints kept elsewhere help.
//!
//! [`Truncated`]: ChainProblem::Truncated

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::keys::{ServerKey, verify};
use crate::{hex, hex_decode};

/// `prev_hash` of the first receipt: 64 zeros.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `seq` of the first receipt.
pub const FIRST_SEQ: i64 = 1;

/// The first part of the canonical bytes; a new encoding gets a new tag.
pub const CANONICAL_TAG: &str = "causerie-receipt-v1";

/// What a receipt records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptFields {
    pub seq: i64,
    pub username: String,
    pub domain: String,
    pub resource: String,
    /// The accepted version: [`PolicyDocument::hash`](crate::PolicyDocument::hash).
    pub policy_hash: String,
    /// How it was accepted: `"extension"`, `"chat"` or `"adhoc"`.
    pub method: String,
    /// Unix seconds.
    pub accepted_at: i64,
    pub remote_addr: Option<String>,
    /// The client's name and version, such as `"Gajim 1.8"`.
    pub client: Option<String>,
    /// Lowercase hex hash of the receipt before this one; [`GENESIS_PREV`] for the first.
    pub prev_hash: String,
}

/// A receipt with its hash and the server's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReceipt {
    pub fields: ReceiptFields,
    /// Lowercase hex SHA-256 of [`canonical_bytes`] of the fields.
    pub hash: String,
    /// Standard base64 (RFC 4648 §4, padded) of the Ed25519 signature over the 32 hash bytes.
    pub signature: String,
}

impl SignedReceipt {
    /// Whether the hash matches the fields and the signature is the key's.
    pub fn verify(&self, public: &[u8; 32]) -> bool {
        receipt_hash(&self.fields) == self.hash && signature_ok(&self.hash, &self.signature, public)
    }

    /// `(seq, hash)`: what to keep as a checkpoint for [`verify_chain`].
    pub fn checkpoint(&self) -> (i64, String) {
        (self.fields.seq, self.hash.clone())
    }
}

/// The canonical bytes of a receipt's fields (format in the module documentation).
pub fn canonical_bytes(fields: &ReceiptFields) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&(s.len() as u64).to_be_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    fn optional(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                string(out, s);
            }
        }
    }
    let f = fields;
    let mut out = Vec::with_capacity(
        256 + f.username.len()
            + f.domain.len()
            + f.resource.len()
            + f.client.as_ref().map_or(0, String::len),
    );
    string(&mut out, CANONICAL_TAG);
    out.extend_from_slice(&f.seq.to_be_bytes());
    string(&mut out, &f.username);
    string(&mut out, &f.domain);
    string(&mut out, &f.resource);
    string(&mut out, &f.policy_hash);
    string(&mut out, &f.method);
    out.extend_from_slice(&f.accepted_at.to_be_bytes());
    optional(&mut out, f.remote_addr.as_deref());
    optional(&mut out, f.client.as_deref());
    string(&mut out, &f.prev_hash);
    out
}

/// Lowercase hex SHA-256 of the canonical bytes.
pub fn receipt_hash(fields: &ReceiptFields) -> String {
    hex(&Sha256::digest(canonical_bytes(fields)))
}

/// Hashes and signs a receipt.
pub fn sign(fields: ReceiptFields, key: &ServerKey) -> SignedReceipt {
    let digest = Sha256::digest(canonical_bytes(&fields));
    let signature = BASE64.encode(key.sign(&digest));
    SignedReceipt {
        hash: hex(&digest),
        signature,
        fields,
    }
}

/// `(seq, prev_hash)` for the receipt that follows `last` (the last stored one, if any).
pub fn next_link(last: Option<&SignedReceipt>) -> (i64, String) {
    match last {
        None => (FIRST_SEQ, GENESIS_PREV.to_owned()),
        Some(r) => (r.fields.seq.saturating_add(1), r.hash.clone()),
    }
}

fn signature_ok(hash: &str, signature: &str, public: &[u8; 32]) -> bool {
    let Some(hash) = hex_decode(hash).filter(|h| h.len() == 32) else {
        return false;
    };
    let Ok(sig) = BASE64.decode(signature) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig.as_slice()) else {
        return false;
    };
    verify(public, &hash, &sig)
}

/// One thing wrong with a chain of signed rows (receipts, evidence). `position` is the 1-based index in the list as
/// given (storage order); `seq` is what the row itself says.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainProblem {
    /// The stored hash is not the hash of the fields: a field was changed after signing.
    #[error("row {position} (seq {seq}): its fields do not match its hash (edited after signing)")]
    Edited { position: usize, seq: i64 },
    /// The signature is not the server key's signature of the stored hash.
    #[error("row {position} (seq {seq}): the signature is not the server key's")]
    BadSignature { position: usize, seq: i64 },
    /// `prev_hash` is not the hash of the row before: a row was removed or inserted before it,
    /// or rows were reordered.
    #[error(
        "row {position} (seq {seq}): it does not follow the row before it \
         (a row was removed, inserted or moved before it)"
    )]
    Broken { position: usize, seq: i64 },
    /// `seq` is not one more than the row before's (or not [`FIRST_SEQ`] for the first).
    #[error("row {position}: seq {found} where {expected} was expected")]
    SeqGap {
        position: usize,
        expected: i64,
        found: i64,
    },
    /// The first row does not start the chain: rows were removed from the start.
    #[error("the first row (seq {seq}) does not start the chain (rows were removed before it)")]
    FirstNotGenesis { seq: i64 },
    /// No row has the checkpoint's seq: rows were removed from the end (or at that seq).
    #[error(
        "the rows end at seq {} but the checkpoint is at seq {expected_seq}: \
         rows were removed",
        last_seq.map_or_else(|| "none".to_owned(), |s| s.to_string())
    )]
    Truncated {
        expected_seq: i64,
        last_seq: Option<i64>,
    },
    /// The row with the checkpoint's seq has another hash: the chain was rewritten since.
    #[error(
        "row {position} (seq {seq}): its hash is not the checkpoint's (the chain was rewritten)"
    )]
    CheckpointMismatch { position: usize, seq: i64 },
}

/// The outcome of [`verify_chain`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainReport {
    /// How many receipts were checked.
    pub rows: usize,
    /// Every problem found, in list order (checkpoint problems last).
    pub problems: Vec<ChainProblem>,
    /// The last receipt's `(seq, hash)`, to keep as the next checkpoint once the report is ok.
    pub last: Option<(i64, String)>,
}

impl ChainReport {
    /// Whether no problem was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A row of a hash chain signed by the server: receipts here, compliance evidence elsewhere.
pub trait ChainLink {
    fn seq(&self) -> i64;
    fn prev_hash(&self) -> &str;
    /// The hash as stored.
    fn stored_hash(&self) -> &str;
    /// The hash recomputed from the row's fields.
    fn computed_hash(&self) -> String;
    /// The stored signature, standard base64 of Ed25519 over the 32 bytes of the stored hash.
    fn signature(&self) -> &str;
}

impl ChainLink for SignedReceipt {
    fn seq(&self) -> i64 {
        self.fields.seq
    }
    fn prev_hash(&self) -> &str {
        &self.fields.prev_hash
    }
    fn stored_hash(&self) -> &str {
        &self.hash
    }
    fn computed_hash(&self) -> String {
        receipt_hash(&self.fields)
    }
    fn signature(&self) -> &str {
        &self.signature
    }
}

/// Checks receipts, given in storage order, against the server's public key and, when given, a
/// checkpoint `expected_last = (seq, hash)` of a receipt known to have been stored (such as the
/// last one at the previous check). Receipts stored after the checkpoint are fine.
pub fn verify_chain(
    receipts: &[SignedReceipt],
    public: &[u8; 32],
    expected_last: Option<(i64, String)>,
) -> ChainReport {
    verify_links(receipts, public, expected_last)
}

/// [`verify_chain`] for any chain of signed rows.
pub fn verify_links<T: ChainLink>(
    rows: &[T],
    public: &[u8; 32],
    expected_last: Option<(i64, String)>,
) -> ChainReport {
    let mut problems = Vec::new();
    let mut previous: Option<&T> = None;
    for (i, r) in rows.iter().enumerate() {
        let position = i + 1;
        let seq = r.seq();
        if r.computed_hash() != r.stored_hash() {
            problems.push(ChainProblem::Edited { position, seq });
        }
        // Checked against the stored hash, so an edited row shows as edited only, and a row
        // whose hash was recomputed after an edit shows as badly signed.
        if !signature_ok(r.stored_hash(), r.signature(), public) {
            problems.push(ChainProblem::BadSignature { position, seq });
        }
        let expected = match previous {
            None => {
                if r.prev_hash() != GENESIS_PREV {
                    problems.push(ChainProblem::FirstNotGenesis { seq });
                }
                FIRST_SEQ
            }
            Some(p) => {
                // Against the stored hash, so one removal or insertion is one break, not a
                // cascade down the rest of the chain.
                if r.prev_hash() != p.stored_hash() {
                    problems.push(ChainProblem::Broken { position, seq });
                }
                p.seq().saturating_add(1)
            }
        };
        if seq != expected {
            problems.push(ChainProblem::SeqGap {
                position,
                expected,
                found: seq,
            });
        }
        previous = Some(r);
    }

    if let Some((cp_seq, cp_hash)) = expected_last {
        let mut at_seq = rows.iter().enumerate().filter(|(_, r)| r.seq() == cp_seq);
        let first = at_seq.next();
        let reached = first
            .into_iter()
            .chain(at_seq)
            .any(|(_, r)| r.stored_hash() == cp_hash);
        match first {
            _ if reached => {}
            Some((i, _)) => problems.push(ChainProblem::CheckpointMismatch {
                position: i + 1,
                seq: cp_seq,
            }),
            None => problems.push(ChainProblem::Truncated {
                expected_seq: cp_seq,
                last_seq: rows.last().map(ChainLink::seq),
            }),
        }
    }

    ChainReport {
        rows: rows.len(),
        problems,
        last: rows.last().map(|r| (r.seq(), r.stored_hash().to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChainProblem::*;

    fn key() -> ServerKey {
        ServerKey::from_secret_bytes(&[42; 32])
    }

    fn fields(seq: i64, prev_hash: String) -> ReceiptFields {
        ReceiptFields {
            seq,
            username: format!("user{seq}"),
            domain: "corp.example".into(),
            resource: "laptop".into(),
            policy_hash: "ab".repeat(32),
            method: ["extension", "chat", "adhoc"][seq as usize % 3].into(),
            accepted_at: 1_740_787_200 + seq * 60,
            remote_addr: (seq % 2 == 0).then(|| "192.0.2.7".into()),
            client: Some("Gajim 1.8".into()),
            prev_hash,
        }
    }

    /// A valid chain of `n` receipts, appended the way the server does.
    fn chain(n: i64, key: &ServerKey) -> Vec<SignedReceipt> {
        let mut out: Vec<SignedReceipt> = Vec::new();
        for _ in 0..n {
            let (seq, prev) = next_link(out.last());
            out.push(sign(fields(seq, prev), key));
        }
        out
    }

    fn check(receipts: &[SignedReceipt], cp: Option<(i64, String)>) -> Vec<ChainProblem> {
        verify_chain(receipts, &key().public_key(), cp).problems
    }

    #[test]
    fn canonical_bytes_known_answer() {
        // An independent implementation of the layout in the module documentation (Python's
        // struct and hashlib) gives this hash; the format must never change silently.
        let f = ReceiptFields {
            seq: 1,
            username: "alice".into(),
            domain: "corp.example".into(),
            resource: "phone".into(),
            policy_hash: "ab".repeat(32),
            method: "chat".into(),
            accepted_at: 1_740_787_200,
            remote_addr: None,
            client: Some("Gajim 1.8".into()),
            prev_hash: GENESIS_PREV.into(),
        };
        let bytes = canonical_bytes(&f);
        assert!(bytes.starts_with(b"\0\0\0\0\0\0\0\x13causerie-receipt-v1\0\0\0\0\0\0\0\x01"));
        assert_eq!(receipt_hash(&f), KNOWN_HASH);
    }

    const KNOWN_HASH: &str = "894b5017b0dfb7fad18f8db00ef96a21e39ae026e1b9ab50879a870a48533ef4";

    /// The document that specifies the encoding; its test vector is checked below so that the
    /// two cannot drift apart.
    const XEP: &str = include_str!("../../../xeps/policy-acceptance.md");

    /// Section 8.4 of the document, up to the next section.
    fn xep_test_vector_section() -> &'static str {
        let start = XEP
            .find("### 8.4 Test vector")
            .expect("section 8.4 in the document");
        let rest = &XEP[start..];
        &rest[..rest.find("\n## ").unwrap_or(rest.len())]
    }

    /// Receipt 1042 of the document (Section 4.5), as the receipt XML maps to fields: `<jid/>`
    /// split in three, `accepted` as Unix seconds.
    fn xep_receipt_1042() -> ReceiptFields {
        ReceiptFields {
            seq: 1042,
            username: "alice".into(),
            domain: "example.com".into(),
            resource: "laptop".into(),
            policy_hash: "92ccc18aa59f734e399dd89a0f7b065fa6ee6631b977ea2fa9a77b127f18a386".into(),
            method: "extension".into(),
            accepted_at: crate::rfc3339::parse("2025-06-02T08:14:09Z").unwrap(),
            remote_addr: Some("203.0.113.25".into()),
            client: Some("Gajim 1.9.5".into()),
            prev_hash: "86dd712bd6746fc3e6360dc9929b1cc621efbffcec05e3c242877a28da365347".into(),
        }
    }

    const XEP_PUBLIC_KEY: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const XEP_FINGERPRINT: &str =
        "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c";
    const XEP_HASH_1042: &str = "2fe349f41dd036ddd3b988bb240e07b0ed34b206f82be11c07e277f7cfd13123";
    const XEP_SIGNATURE_1042: &str =
        "2h3A9dRZO36R9e4qgWheJg5mtggkW8V20B81GcAu0Zy8JLeFPPS+t8bG2rIGlirIN5I+1hCnpue/q/3SeIPEDA==";
    const XEP_HASH_311: &str = "91c5a19b981ca11a80c8ba21e71eaaa29ffb0f5a484c79813a8008a72a100dcb";

    #[test]
    fn the_xep_test_vector() {
        let section = xep_test_vector_section();
        for value in [
            XEP_PUBLIC_KEY,
            XEP_FINGERPRINT,
            XEP_HASH_1042,
            XEP_SIGNATURE_1042,
            XEP_HASH_311,
        ] {
            assert!(section.contains(value), "section 8.4 does not give {value}");
        }

        // The test key: secret bytes 0x00..=0x1f.
        let secret: [u8; 32] = std::array::from_fn(|i| i as u8);
        let k = ServerKey::from_secret_bytes(&secret);
        assert_eq!(k.public_key_hex(), XEP_PUBLIC_KEY);
        assert_eq!(k.fingerprint().replace(' ', ""), XEP_FINGERPRINT);

        // Fields to bytes: the hexadecimal block of section 8.4, one part per line.
        let f = xep_receipt_1042();
        assert_eq!(f.accepted_at, 1_748_852_049);
        let block = section
            .split("```text\n")
            .nth(1)
            .and_then(|b| b.split("```").next())
            .expect("a text block in section 8.4");
        let lines: Vec<&str> = block.lines().collect();
        assert_eq!(lines.len(), 11, "one line per part of the encoding");
        assert_eq!(hex(&canonical_bytes(&f)), lines.concat());
        assert_eq!(canonical_bytes(&f).len(), 291);

        // Fields to hash, and the published signature verifies with the published key.
        assert_eq!(receipt_hash(&f), XEP_HASH_1042);
        let public: [u8; 32] = hex_decode(XEP_PUBLIC_KEY).unwrap().try_into().unwrap();
        let published = SignedReceipt {
            fields: f.clone(),
            hash: XEP_HASH_1042.into(),
            signature: XEP_SIGNATURE_1042.into(),
        };
        assert!(published.verify(&public));
        // Ed25519 signatures are deterministic: signing again gives the same bytes.
        assert_eq!(sign(f.clone(), &k), published);
        let mut other = published.clone();
        other.fields.method = "chat".into();
        assert!(!other.verify(&public));

        // Receipt 311 (Section 4.7): no client, so its client part is the single byte 0.
        let r311 = ReceiptFields {
            seq: 311,
            resource: "phone".into(),
            policy_hash: "d73256df72b4216c70c6fe7316146d578b2dfe8110a24a64fd383acc719e3699".into(),
            method: "chat".into(),
            accepted_at: crate::rfc3339::parse("2025-01-06T09:02:51Z").unwrap(),
            remote_addr: Some("2001:db8::7".into()),
            client: None,
            prev_hash: "ad7f35204efd72f1cedc7846375fba5c918991ec3f83198ca536b2627f2853a6".into(),
            ..f
        };
        assert_eq!(receipt_hash(&r311), XEP_HASH_311);

        // Every receipt shown in the document carries a hash and a signature of the test key.
        for (method, hash) in [
            ("extension", XEP_HASH_1042),
            (
                "chat",
                "14ffb2e0bbcfcacf2cc91f5b713bc47e3d3fb72af6b01f563a844b6578b41d77",
            ),
            (
                "adhoc",
                "9c62591ec39e98948b00dc4518c693bba074158112a49f7faa433b09b670d62f",
            ),
        ] {
            let r = sign(
                ReceiptFields {
                    method: method.into(),
                    ..xep_receipt_1042()
                },
                &k,
            );
            assert_eq!(r.hash, hash, "receipt 1042 by {method}");
            assert!(XEP.contains(&format!("hash='{hash}'")));
            assert!(XEP.contains(&format!("<signature>{}</signature>", r.signature)));
        }
        let r311 = sign(r311, &k);
        assert!(XEP.contains(&format!("<signature>{}</signature>", r311.signature)));
    }

    #[test]
    fn signed_receipt_verifies() {
        let k = key();
        let r = sign(fields(1, GENESIS_PREV.into()), &k);
        assert_eq!(r.hash, receipt_hash(&r.fields));
        assert_eq!(r.hash, hex(&Sha256::digest(canonical_bytes(&r.fields))));
        let sig: [u8; 64] = BASE64.decode(&r.signature).unwrap().try_into().unwrap();
        assert!(verify(&k.public_key(), &hex_decode(&r.hash).unwrap(), &sig));
        assert!(r.verify(&k.public_key()));
        assert!(!r.verify(&ServerKey::from_secret_bytes(&[1; 32]).public_key()));
        let mut edited = r.clone();
        edited.fields.method = "adhoc".into();
        assert!(!edited.verify(&k.public_key()));
    }

    #[test]
    fn shifting_bytes_between_fields_changes_the_encoding() {
        let base = fields(1, GENESIS_PREV.into());
        let mut a = base.clone();
        a.username = "ab".into();
        a.domain = "c".into();
        let mut b = base.clone();
        b.username = "a".into();
        b.domain = "bc".into();
        assert_ne!(canonical_bytes(&a), canonical_bytes(&b));

        let mut none = base.clone();
        none.remote_addr = None;
        none.client = Some("x".into());
        let mut swapped = base.clone();
        swapped.remote_addr = Some("x".into());
        swapped.client = None;
        let mut empty = base.clone();
        empty.remote_addr = Some(String::new());
        empty.client = Some("x".into());
        assert_ne!(canonical_bytes(&none), canonical_bytes(&swapped));
        assert_ne!(canonical_bytes(&none), canonical_bytes(&empty));
    }

    /// Reads canonical bytes back; that every encoding decodes to its own fields proves that no
    /// two field sets share bytes.
    fn decode(mut b: &[u8]) -> Option<ReceiptFields> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = b.split_at_checked(n)?;
            *b = tail;
            Some(head)
        }
        fn int(b: &mut &[u8]) -> Option<i64> {
            Some(i64::from_be_bytes(take(b, 8)?.try_into().ok()?))
        }
        fn string(b: &mut &[u8]) -> Option<String> {
            let len = usize::try_from(u64::from_be_bytes(take(b, 8)?.try_into().ok()?)).ok()?;
            String::from_utf8(take(b, len)?.to_vec()).ok()
        }
        fn optional(b: &mut &[u8]) -> Option<Option<String>> {
            match take(b, 1)? {
                [0] => Some(None),
                [1] => Some(Some(string(b)?)),
                _ => None,
            }
        }
        let b = &mut b;
        (string(b)? == CANONICAL_TAG).then_some(())?;
        let f = ReceiptFields {
            seq: int(b)?,
            username: string(b)?,
            domain: string(b)?,
            resource: string(b)?,
            policy_hash: string(b)?,
            method: string(b)?,
            accepted_at: int(b)?,
            remote_addr: optional(b)?,
            client: optional(b)?,
            prev_hash: string(b)?,
        };
        b.is_empty().then_some(f)
    }

    proptest::proptest! {
        #[test]
        fn canonical_bytes_decode_to_the_same_fields(
            seq in proptest::num::i64::ANY,
            at in proptest::num::i64::ANY,
            strings in proptest::collection::vec(".{0,12}", 6),
            remote in proptest::option::of(".{0,8}"),
            client in proptest::option::of(".{0,8}"),
        ) {
            let f = ReceiptFields {
                seq,
                username: strings[0].clone(),
                domain: strings[1].clone(),
                resource: strings[2].clone(),
                policy_hash: strings[3].clone(),
                method: strings[4].clone(),
                accepted_at: at,
                remote_addr: remote,
                client,
                prev_hash: strings[5].clone(),
            };
            proptest::prop_assert_eq!(decode(&canonical_bytes(&f)), Some(f));
        }
    }

    #[test]
    fn a_clean_chain_is_ok() {
        let receipts = chain(6, &key());
        let report = verify_chain(&receipts, &key().public_key(), None);
        assert!(report.ok(), "{:?}", report.problems);
        assert_eq!(report.rows, 6);
        assert_eq!(report.last, Some(receipts[5].checkpoint()));
        let cp = Some(receipts[5].checkpoint());
        assert!(check(&receipts, cp).is_empty());
        // An older checkpoint is fine: the chain grew since.
        assert!(check(&receipts, Some(receipts[2].checkpoint())).is_empty());
        assert!(verify_chain(&[], &key().public_key(), None).ok());
    }

    #[test]
    fn an_edited_field_shows_at_its_row_only() {
        let mut receipts = chain(6, &key());
        receipts[2].fields.accepted_at += 3600;
        assert_eq!(
            check(&receipts, None),
            [Edited {
                position: 3,
                seq: 3
            }]
        );

        let mut receipts = chain(6, &key());
        receipts[4].fields.client = None;
        assert_eq!(
            check(&receipts, None),
            [Edited {
                position: 5,
                seq: 5
            }]
        );
    }

    #[test]
    fn an_edit_with_a_recomputed_hash_breaks_the_signature_and_the_link() {
        let mut receipts = chain(6, &key());
        receipts[2].fields.policy_hash = "cd".repeat(32);
        receipts[2].hash = receipt_hash(&receipts[2].fields);
        assert_eq!(
            check(&receipts, None),
            [
                BadSignature {
                    position: 3,
                    seq: 3
                },
                Broken {
                    position: 4,
                    seq: 4
                }
            ]
        );
    }

    #[test]
    fn a_row_removed_in_the_middle() {
        let mut receipts = chain(6, &key());
        receipts.remove(2);
        assert_eq!(
            check(&receipts, None),
            [
                Broken {
                    position: 3,
                    seq: 4
                },
                SeqGap {
                    position: 3,
                    expected: 3,
                    found: 4
                }
            ]
        );
    }

    #[test]
    fn the_first_row_removed() {
        let mut receipts = chain(4, &key());
        receipts.remove(0);
        assert_eq!(
            check(&receipts, None),
            [
                FirstNotGenesis { seq: 2 },
                SeqGap {
                    position: 1,
                    expected: 1,
                    found: 2
                }
            ]
        );
    }

    #[test]
    fn the_last_row_removed_needs_a_checkpoint() {
        let mut receipts = chain(5, &key());
        let cp = receipts[4].checkpoint();
        receipts.pop();
        // The chain alone cannot tell.
        assert!(check(&receipts, None).is_empty());
        assert_eq!(
            check(&receipts, Some(cp.clone())),
            [Truncated {
                expected_seq: 5,
                last_seq: Some(4)
            }]
        );
        assert_eq!(
            check(&[], Some(cp)),
            [Truncated {
                expected_seq: 5,
                last_seq: None
            }]
        );
    }

    #[test]
    fn the_last_row_replaced_by_a_new_valid_one() {
        // The last receipt is removed and the server then appends another in its place: the
        // chain is valid again, only the checkpoint tells.
        let k = key();
        let mut receipts = chain(5, &k);
        let cp = receipts[4].checkpoint();
        receipts.pop();
        let (seq, prev) = next_link(receipts.last());
        let mut f = fields(seq, prev);
        f.username = "mallory".into();
        receipts.push(sign(f, &k));
        assert!(check(&receipts, None).is_empty());
        assert_eq!(
            check(&receipts, Some(cp)),
            [CheckpointMismatch {
                position: 5,
                seq: 5
            }]
        );
    }

    #[test]
    fn a_forged_row_inserted() {
        let mut receipts = chain(5, &key());
        let forger = ServerKey::from_secret_bytes(&[6; 32]);
        // Linked to the row before it and given a free seq, but not signed by the server.
        let forged = sign(fields(3, receipts[1].hash.clone()), &forger);
        receipts.insert(2, forged);
        assert_eq!(
            check(&receipts, None),
            [
                BadSignature {
                    position: 3,
                    seq: 3
                },
                Broken {
                    position: 4,
                    seq: 3
                },
                SeqGap {
                    position: 4,
                    expected: 4,
                    found: 3
                },
            ]
        );
    }

    #[test]
    fn a_forged_row_appended() {
        let mut receipts = chain(3, &key());
        let cp = receipts[2].checkpoint();
        let forger = ServerKey::from_secret_bytes(&[6; 32]);
        let (seq, prev) = next_link(receipts.last());
        receipts.push(sign(fields(seq, prev), &forger));
        assert_eq!(
            check(&receipts, Some(cp)),
            [BadSignature {
                position: 4,
                seq: 4
            }]
        );
    }

    #[test]
    fn a_chain_rewritten_with_another_key() {
        let receipts = chain(3, &ServerKey::from_secret_bytes(&[6; 32]));
        assert_eq!(
            check(&receipts, None),
            [
                BadSignature {
                    position: 1,
                    seq: 1
                },
                BadSignature {
                    position: 2,
                    seq: 2
                },
                BadSignature {
                    position: 3,
                    seq: 3
                }
            ]
        );
    }

    #[test]
    fn rows_reordered() {
        let mut receipts = chain(5, &key());
        receipts.swap(1, 2);
        assert_eq!(
            check(&receipts, None),
            [
                Broken {
                    position: 2,
                    seq: 3
                },
                SeqGap {
                    position: 2,
                    expected: 2,
                    found: 3
                },
                Broken {
                    position: 3,
                    seq: 2
                },
                SeqGap {
                    position: 3,
                    expected: 4,
                    found: 2
                },
                Broken {
                    position: 4,
                    seq: 4
                },
                SeqGap {
                    position: 4,
                    expected: 3,
                    found: 4
                },
            ]
        );
    }

    #[test]
    fn a_row_duplicated() {
        let mut receipts = chain(4, &key());
        receipts.insert(2, receipts[1].clone());
        assert_eq!(
            check(&receipts, None),
            [
                Broken {
                    position: 3,
                    seq: 2
                },
                SeqGap {
                    position: 3,
                    expected: 3,
                    found: 2
                },
            ]
        );
    }

    #[test]
    fn garbage_hash_and_signature() {
        let mut receipts = chain(3, &key());
        receipts[0].signature = "not base64!".into();
        receipts[1].signature = BASE64.encode([0u8; 63]);
        receipts[2].hash = "zz".repeat(32);
        let problems = check(&receipts, None);
        assert_eq!(
            problems,
            [
                BadSignature {
                    position: 1,
                    seq: 1
                },
                BadSignature {
                    position: 2,
                    seq: 2
                },
                Edited {
                    position: 3,
                    seq: 3
                },
                BadSignature {
                    position: 3,
                    seq: 3
                },
            ]
        );
        assert_eq!(
            problems[0].to_string(),
            "row 1 (seq 1): the signature is not the server key's"
        );
    }
}
