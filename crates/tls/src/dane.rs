//! DANE (RFC 6698, RFC 7671; for XMPP RFC 7673): TLSA records, published under DNSSEC for the
//! host and port a server is reached at, say which certificate or which trust anchor it uses.
//! This module matches a presented chain against such records; finding them, and making sure
//! DNSSEC validated them, is the resolver's job: records that were not validated must never reach
//! here.

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use sha2::Digest;

use crate::der_tlv;
use crate::s2s::{CertProblem, names_match};

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlsa {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218).
    pub usage: u8,
    /// 0 the whole certificate, 1 its SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 the data itself, 1 SHA-256, 2 SHA-512.
    pub matching: u8,
    pub data: Vec<u8>,
}

impl Tlsa {
    /// The presentation form `USAGE SELECTOR MATCHING HEX` (RFC 6698 §2.2).
    pub fn parse(text: &str) -> Option<Tlsa> {
        let mut parts = text.split_whitespace();
        let usage = parts.next()?.parse().ok()?;
        let selector = parts.next()?.parse().ok()?;
        let matching = parts.next()?.parse().ok()?;
        let hex: String = parts.collect();
        if !hex.len().is_multiple_of(2) || hex.is_empty() {
            return None;
        }
        let data = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Tlsa {
            usage,
            selector,
            matching,
            data,
        })
    }

    /// Whether this record designates `cert` (selector and matching type applied).
    fn designates(&self, cert: &CertificateDer<'_>) -> bool {
        let selected: &[u8] = match self.selector {
            0 => cert.as_ref(),
            1 => match spki(cert.as_ref()) {
                Some(s) => s,
                None => return false,
            },
            _ => return false,
        };
        match self.matching {
            0 => selected == self.data.as_slice(),
            1 => sha2::Sha256::digest(selected).as_slice() == self.data.as_slice(),
            2 => sha2::Sha512::digest(selected).as_slice() == self.data.as_slice(),
            _ => false,
        }
    }

    /// Usages, selectors and matching types this implementation knows (RFC 7671 §4.1: records
    /// with others are unusable and ignored).
    fn usable(&self) -> bool {
        self.usage <= 3 && self.selector <= 1 && self.matching <= 2
    }
}

/// The DER SubjectPublicKeyInfo of a certificate (RFC 5280 §4.1), with its tag and length.
fn spki(cert_der: &[u8]) -> Option<&[u8]> {
    let (_, cert, _) = der_tlv(cert_der)?;
    let (_, mut tbs, _) = der_tlv(cert)?;
    // [0] version (optional), serial, signature, issuer, validity, subject, then the SPKI.
    let (tag, _, rest) = der_tlv(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..5 {
        let (_, _, rest) = der_tlv(tbs)?;
        tbs = rest;
    }
    let (tag, body, rest) = der_tlv(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let whole = tbs.len() - rest.len();
    debug_assert!(whole >= body.len());
    Some(&tbs[..whole])
}

/// RFC 7671 / RFC 7673 §5: does the chain satisfy one of the usable records?
///
/// - DANE-EE (3): the leaf is designated; names and dates are not checked (RFC 7671 §5.1).
/// - DANE-TA (2): a certificate of the chain is designated; the chain must lead to it and the leaf
///   must name `domain` (RFC 7673 §5).
/// - PKIX-EE (1) and PKIX-TA (0): as 3 and 2, and the chain must also validate with `roots`.
///
/// `Ok(())` when one record is satisfied; an error naming why not when records were usable but
/// none is satisfied; `Err(CertProblem::Missing)` when no record was usable (DANE does not apply).
pub fn check(
    chain: &[CertificateDer<'_>],
    records: &[Tlsa],
    domain: &str,
    roots: &RootCertStore,
) -> Result<(), CertProblem> {
    let usable: Vec<&Tlsa> = records.iter().filter(|r| r.usable()).collect();
    if usable.is_empty() {
        return Err(CertProblem::Missing);
    }
    let Some(leaf) = chain.first() else {
        return Err(CertProblem::Missing);
    };
    let pkix = || {
        crate::s2s::verify_chain_public(chain, roots).is_ok() && names_match(leaf.as_ref(), domain)
    };
    for r in usable {
        let ok = match r.usage {
            3 => r.designates(leaf),
            1 => r.designates(leaf) && pkix(),
            2 | 0 => {
                let anchor = chain.iter().find(|c| r.designates(c));
                match anchor {
                    Some(ta) => {
                        let mut own = RootCertStore::empty();
                        let ta_ok = own.add(ta.clone().into_owned()).is_ok();
                        let via_anchor = if ta == leaf {
                            // A self-issued leaf designated as its own anchor.
                            ta_ok
                        } else {
                            ta_ok && crate::s2s::verify_chain_public(chain, &own).is_ok()
                        };
                        via_anchor && names_match(leaf.as_ref(), domain) && (r.usage == 2 || pkix())
                    }
                    None => false,
                }
            }
            _ => false,
        };
        if ok {
            return Ok(());
        }
    }
    Err(CertProblem::Untrusted(
        "no TLSA record matches the certificate".to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn self_signed(name: &str) -> CertificateDer<'static> {
        let (pem, _) = crate::generate_self_signed(&[name.to_owned()]).expect("cert");
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("der")
    }

    #[test]
    fn presentation_form() {
        let r = Tlsa::parse("3 1 1 0A0b 0c").expect("parses");
        assert_eq!((r.usage, r.selector, r.matching), (3, 1, 1));
        assert_eq!(r.data, vec![0x0a, 0x0b, 0x0c]);
        assert_eq!(Tlsa::parse("3 1 1"), None);
        assert_eq!(Tlsa::parse("3 1 1 abc"), None);
        assert_eq!(Tlsa::parse("x 1 1 ab"), None);
    }

    #[test]
    fn spki_is_found_and_is_a_sequence() {
        let cert = self_signed("partner.example");
        let s = spki(cert.as_ref()).expect("spki");
        assert_eq!(s[0], 0x30);
        // The EC public key OID (1.2.840.10045.2.1) is inside.
        let oid = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
        assert!(s.windows(oid.len()).any(|w| w == oid));
    }

    #[test]
    fn dane_ee_matches_the_leaf_whatever_its_issuer() {
        let cert = self_signed("partner.example");
        let roots = RootCertStore::empty();
        let by_spki = Tlsa {
            usage: 3,
            selector: 1,
            matching: 1,
            data: sha2::Sha256::digest(spki(cert.as_ref()).expect("spki")).to_vec(),
        };
        let by_cert = Tlsa::parse(&format!(
            "3 0 2 {}",
            hex(&sha2::Sha512::digest(cert.as_ref()))
        ))
        .expect("record");
        let chain = [cert.clone()];
        assert_eq!(
            check(
                &chain,
                std::slice::from_ref(&by_spki),
                "partner.example",
                &roots
            ),
            Ok(())
        );
        assert_eq!(check(&chain, &[by_cert], "other.example", &roots), Ok(()));
        let other = self_signed("partner.example");
        assert!(matches!(
            check(&[other], &[by_spki], "partner.example", &roots),
            Err(CertProblem::Untrusted(_))
        ));
    }

    #[test]
    fn dane_ta_needs_the_chain_and_the_name() {
        let cert = self_signed("partner.example");
        let roots = RootCertStore::empty();
        let ta = Tlsa::parse(&format!(
            "2 0 1 {}",
            hex(&sha2::Sha256::digest(cert.as_ref()))
        ))
        .expect("record");
        assert_eq!(
            check(
                std::slice::from_ref(&cert),
                std::slice::from_ref(&ta),
                "partner.example",
                &roots
            ),
            Ok(())
        );
        assert!(check(std::slice::from_ref(&cert), &[ta], "other.example", &roots).is_err());
        // PKIX usages also need the common anchors, which do not have this certificate.
        let pkix_ee = Tlsa::parse(&format!(
            "1 0 1 {}",
            hex(&sha2::Sha256::digest(cert.as_ref()))
        ))
        .expect("record");
        assert!(check(&[cert], &[pkix_ee], "partner.example", &roots).is_err());
    }

    #[test]
    fn unusable_records_mean_dane_does_not_apply() {
        let cert = self_signed("partner.example");
        let weird = Tlsa {
            usage: 4,
            selector: 0,
            matching: 0,
            data: vec![1],
        };
        assert_eq!(
            check(
                &[cert],
                &[weird],
                "partner.example",
                &RootCertStore::empty()
            ),
            Err(CertProblem::Missing)
        );
    }
}
