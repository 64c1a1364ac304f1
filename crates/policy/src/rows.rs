//! Between the library's values and the rows of `causerie_storage::PolicyStore`: a policy file
//! becomes a version to publish, a signed receipt a row to append, and a stored row a signed
//! receipt again.

use causerie_storage::{NewPolicyVersion, NewReceipt, StoredReceipt};

use crate::document::PolicyDocument;
use crate::receipt::{ReceiptFields, SignedReceipt};

/// The version to publish for a policy file: for `domain` (the front matter's, prepared by the
/// caller) or, with `None`, every domain. `published_at` is Unix seconds; `published_by` says who
/// (`"causeriectl:root"`).
pub fn new_version(
    doc: &PolicyDocument,
    domain: Option<String>,
    published_at: i64,
    published_by: &str,
) -> NewPolicyVersion {
    NewPolicyVersion {
        hash: doc.hash().to_owned(),
        title: doc.title().to_owned(),
        text: doc.body().to_owned(),
        format: doc.format().as_str().to_owned(),
        effective_at: doc.effective(),
        categories: doc.categories().to_vec(),
        domain,
        published_at,
        published_by: published_by.to_owned(),
    }
}

/// The row that stores a signed receipt.
pub fn new_receipt(r: &SignedReceipt) -> NewReceipt {
    let f = &r.fields;
    NewReceipt {
        seq: f.seq,
        username: f.username.clone(),
        domain: f.domain.clone(),
        resource: f.resource.clone(),
        policy_hash: f.policy_hash.clone(),
        method: f.method.clone(),
        accepted_at: f.accepted_at,
        remote_addr: f.remote_addr.clone(),
        client: f.client.clone(),
        prev_hash: f.prev_hash.clone(),
        hash: r.hash.clone(),
        signature: r.signature.clone(),
    }
}

impl From<StoredReceipt> for SignedReceipt {
    fn from(r: StoredReceipt) -> SignedReceipt {
        SignedReceipt {
            fields: ReceiptFields {
                seq: r.seq,
                username: r.username,
                domain: r.domain,
                resource: r.resource,
                policy_hash: r.policy_hash,
                method: r.method,
                accepted_at: r.accepted_at,
                remote_addr: r.remote_addr,
                client: r.client,
                prev_hash: r.prev_hash,
            },
            hash: r.hash,
            signature: r.signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_survives_the_round_trip_through_a_row() {
        let key = crate::ServerKey::from_secret_bytes(&[3; 32]);
        let r = crate::sign(
            ReceiptFields {
                seq: 9,
                username: "alice".into(),
                domain: "example.com".into(),
                resource: "laptop".into(),
                policy_hash: "a".repeat(64),
                method: "adhoc".into(),
                accepted_at: 1_700_000_000,
                remote_addr: Some("192.0.2.1".into()),
                client: None,
                prev_hash: "b".repeat(64),
            },
            &key,
        );
        let back = SignedReceipt::from(StoredReceipt::from(&new_receipt(&r)));
        assert_eq!(back, r);
        assert!(back.verify(&key.public_key()));
    }
}
