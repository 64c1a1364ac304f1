//! Evidence records: what the compliance engine keeps of a message that matched a rule, as one
//! more hash chain signed by the server's key (the same chain rules as receipts,
//! [`crate::receipt::verify_links`]).
//!
//! The hash covers every column but the payload itself, which it covers through its SHA-256
//! (`payload_hash`): a purged payload (retention) leaves the chain verifiable, and a sealed
//! payload can be checked without the officer's key.
//!
//! Canonical encoding, version 1: the tag `causerie-evidence-v1`, then `seq` and `created_at`
//! (8-byte big-endian signed), the strings `rule_id`, `category`, `actions`, `username`,
//! `domain`, `resource`, `peer`, `direction`, the optional strings `remote_addr` and `client`,
//! one byte `sealed` (0 or 1), then `payload_hash` and `prev_hash`. Strings are an 8-byte
//! big-endian length and the UTF-8 bytes; optional strings a byte 0 (absent) or 1 and the string.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use causerie_storage::{NewEvidence, StoredEvidence};
use sha2::{Digest, Sha256};

use crate::hex;
use crate::keys::ServerKey;
use crate::receipt::{ChainLink, GENESIS_PREV};

pub const EVIDENCE_TAG: &str = "causerie-evidence-v1";

/// What an evidence record states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceFields {
    pub seq: i64,
    pub created_at: i64,
    pub rule_id: String,
    pub category: String,
    /// The actions taken, comma-separated in a fixed order (`capture,block,alert`).
    pub actions: String,
    pub username: String,
    pub domain: String,
    pub resource: String,
    /// The other party (bare or full JID); empty when none.
    pub peer: String,
    /// `outgoing`, `incoming` or `report`.
    pub direction: String,
    pub remote_addr: Option<String>,
    pub client: Option<String>,
    pub sealed: bool,
    /// SHA-256 (hex) of the payload as stored.
    pub payload_hash: String,
    pub prev_hash: String,
}

/// A record with its hash and signature, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvidence {
    pub fields: EvidenceFields,
    pub hash: String,
    pub signature: String,
}

pub fn canonical_bytes(f: &EvidenceFields) -> Vec<u8> {
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
    let mut out = Vec::with_capacity(512);
    string(&mut out, EVIDENCE_TAG);
    out.extend_from_slice(&f.seq.to_be_bytes());
    out.extend_from_slice(&f.created_at.to_be_bytes());
    for s in [
        &f.rule_id,
        &f.category,
        &f.actions,
        &f.username,
        &f.domain,
        &f.resource,
        &f.peer,
        &f.direction,
    ] {
        string(&mut out, s);
    }
    optional(&mut out, f.remote_addr.as_deref());
    optional(&mut out, f.client.as_deref());
    out.push(u8::from(f.sealed));
    string(&mut out, &f.payload_hash);
    string(&mut out, &f.prev_hash);
    out
}

pub fn evidence_hash(f: &EvidenceFields) -> String {
    hex(&Sha256::digest(canonical_bytes(f)))
}

/// SHA-256 of a payload, as `payload_hash` records it.
pub fn payload_hash(payload: &str) -> String {
    hex(&Sha256::digest(payload.as_bytes()))
}

pub fn sign(fields: EvidenceFields, key: &ServerKey) -> SignedEvidence {
    let digest = Sha256::digest(canonical_bytes(&fields));
    SignedEvidence {
        signature: BASE64.encode(key.sign(&digest)),
        hash: hex(&digest),
        fields,
    }
}

/// `(seq, prev_hash)` of the record after `last`.
pub fn next_link(last: Option<&StoredEvidence>) -> (i64, String) {
    match last {
        None => (crate::receipt::FIRST_SEQ, GENESIS_PREV.to_owned()),
        Some(r) => (r.seq.saturating_add(1), r.hash.clone()),
    }
}

/// The row that stores a signed record with its payload, holding no message (set
/// [`NewEvidence::held`] on a record pending review to keep the quarantined one).
pub fn new_row(r: &SignedEvidence, payload: String, review: Option<String>) -> NewEvidence {
    let f = &r.fields;
    NewEvidence {
        seq: f.seq,
        created_at: f.created_at,
        rule_id: f.rule_id.clone(),
        category: f.category.clone(),
        actions: f.actions.clone(),
        username: f.username.clone(),
        domain: f.domain.clone(),
        resource: f.resource.clone(),
        peer: f.peer.clone(),
        direction: f.direction.clone(),
        remote_addr: f.remote_addr.clone(),
        client: f.client.clone(),
        sealed: f.sealed,
        payload,
        payload_hash: f.payload_hash.clone(),
        prev_hash: f.prev_hash.clone(),
        hash: r.hash.clone(),
        signature: r.signature.clone(),
        review,
        held: None,
    }
}

impl From<&StoredEvidence> for SignedEvidence {
    fn from(r: &StoredEvidence) -> SignedEvidence {
        SignedEvidence {
            fields: EvidenceFields {
                seq: r.seq,
                created_at: r.created_at,
                rule_id: r.rule_id.clone(),
                category: r.category.clone(),
                actions: r.actions.clone(),
                username: r.username.clone(),
                domain: r.domain.clone(),
                resource: r.resource.clone(),
                peer: r.peer.clone(),
                direction: r.direction.clone(),
                remote_addr: r.remote_addr.clone(),
                client: r.client.clone(),
                sealed: r.sealed,
                payload_hash: r.payload_hash.clone(),
                prev_hash: r.prev_hash.clone(),
            },
            hash: r.hash.clone(),
            signature: r.signature.clone(),
        }
    }
}

impl ChainLink for SignedEvidence {
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
        evidence_hash(&self.fields)
    }
    fn signature(&self) -> &str {
        &self.signature
    }
}

/// Whether a stored payload still matches the hash its record signed (a purged one has none).
pub fn payload_intact(r: &StoredEvidence) -> Option<bool> {
    r.payload
        .as_deref()
        .map(|p| payload_hash(p) == r.payload_hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{ChainProblem, verify_links};

    fn fields(seq: i64, prev: String, payload: &str) -> EvidenceFields {
        EvidenceFields {
            seq,
            created_at: 1_800_000_000 + seq,
            rule_id: "cards".into(),
            category: "sensitive data".into(),
            actions: "capture,block".into(),
            username: "alice".into(),
            domain: "corp.example".into(),
            resource: "laptop".into(),
            peer: "bob@partner.example".into(),
            direction: "outgoing".into(),
            remote_addr: Some("192.0.2.1".into()),
            client: None,
            sealed: false,
            payload_hash: payload_hash(payload),
            prev_hash: prev,
        }
    }

    #[test]
    fn a_chain_verifies_and_edits_show() {
        let key = ServerKey::from_secret_bytes(&[9; 32]);
        let mut chain: Vec<SignedEvidence> = Vec::new();
        for seq in 1..=3 {
            let prev = chain
                .last()
                .map_or(GENESIS_PREV.to_owned(), |r| r.hash.clone());
            chain.push(sign(fields(seq, prev, &format!("payload {seq}")), &key));
        }
        assert!(verify_links(&chain, &key.public_key(), None).ok());
        chain[1].fields.peer = "carol@partner.example".into();
        let report = verify_links(&chain, &key.public_key(), None);
        assert_eq!(
            report.problems,
            [ChainProblem::Edited {
                position: 2,
                seq: 2
            }]
        );
        // A different tag, order or field gives another hash.
        let mut other = fields(1, GENESIS_PREV.into(), "x");
        let h = evidence_hash(&other);
        other.sealed = true;
        assert_ne!(evidence_hash(&other), h);
    }
}
