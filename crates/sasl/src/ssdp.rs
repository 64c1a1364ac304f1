//! XEP-0474 SASL SCRAM Downgrade Protection, version 0.5.0 (2025-10-25), §4.1 "Server
//! Sends Downgrade Protection Hash" and §4.2 "Client Verifies The Downgrade Protection
//! Hash".

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::crypto;
use crate::{ChannelBindingType, Hash, Mechanism};

/// Separates the names inside a list (XEP-0474 §4.1, steps 2 and 4).
const ITEM_SEPARATOR: char = '\u{1e}';
/// Separates the mechanism list from the channel-binding list (XEP-0474 §4.1, step 3).
const LIST_SEPARATOR: char = '\u{1f}';

/// The value of the SCRAM attribute `h`: the base64 of `hash` over the advertised
/// mechanism names sorted by octet and joined by U+001E, followed, when channel-binding
/// types were advertised (XEP-0440), by U+001F and the sorted type names joined by
/// U+001E. `offered` must be the mechanism list of the SASL profile in use exactly as it
/// was advertised; an empty `cb_types` means XEP-0440 was not used.
pub fn downgrade_protection_hash(
    hash: Hash,
    offered: &[Mechanism],
    cb_types: &[ChannelBindingType],
) -> String {
    // Sorting `&str` compares octets, which is the "i;octet" collation (RFC 4790 §9.3).
    let mut mechanisms: Vec<&str> = offered.iter().map(Mechanism::name).collect();
    mechanisms.sort_unstable();
    let mut s = join(&mechanisms);
    if !cb_types.is_empty() {
        let mut types: Vec<&str> = cb_types.iter().map(ChannelBindingType::name).collect();
        types.sort_unstable();
        s.push(LIST_SEPARATOR);
        s.push_str(&join(&types));
    }
    B64.encode(crypto::h(hash, s.as_bytes()))
}

fn join(items: &[&str]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(ITEM_SEPARATOR);
        }
        out.push_str(item);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xep_0474_example() {
        // XEP-0474 §4.3: SHA-1 of
        // "SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point".
        let h = downgrade_protection_hash(
            Hash::Sha1,
            &[
                Mechanism::Scram {
                    hash: Hash::Sha1,
                    plus: true,
                },
                Mechanism::Scram {
                    hash: Hash::Sha1,
                    plus: false,
                },
            ],
            &[
                ChannelBindingType::TlsServerEndPoint,
                ChannelBindingType::TlsExporter,
            ],
        );
        assert_eq!(h, "G6k/rBLDqgOhRRaCuuatSDFkJ08=");
    }

    #[test]
    fn without_xep_0440_there_is_no_list_separator() {
        let with_none = downgrade_protection_hash(
            Hash::Sha256,
            &[
                Mechanism::Scram {
                    hash: Hash::Sha256,
                    plus: false,
                },
                Mechanism::Plain,
            ],
            &[],
        );
        let expected = B64.encode(crypto::h(Hash::Sha256, b"PLAIN\x1eSCRAM-SHA-256"));
        assert_eq!(with_none, expected);
    }

    #[test]
    fn order_does_not_matter_but_content_does() {
        let a = downgrade_protection_hash(
            Hash::Sha512,
            &[
                Mechanism::Plain,
                Mechanism::Scram {
                    hash: Hash::Sha512,
                    plus: false,
                },
            ],
            &[ChannelBindingType::TlsExporter],
        );
        let b = downgrade_protection_hash(
            Hash::Sha512,
            &[
                Mechanism::Scram {
                    hash: Hash::Sha512,
                    plus: false,
                },
                Mechanism::Plain,
            ],
            &[ChannelBindingType::TlsExporter],
        );
        let c = downgrade_protection_hash(
            Hash::Sha512,
            &[Mechanism::Scram {
                hash: Hash::Sha512,
                plus: false,
            }],
            &[ChannelBindingType::TlsExporter],
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
