//! What an operator needs to know about a certificate before the server uses it: whether the
//! files parse, whether the key belongs to the certificate, which names it covers, when it is
//! valid and whether it is self-signed. The admin tool's `check` and `cert` commands are built on
//! it; the server itself only loads certificates and lets the handshake speak.
//!
//! Validity and issuer are read from the DER of the leaf (RFC 5280 §4.1) with the same small TLV
//! reader as the channel-binding hash; names come from the subjectAltName
//! ([`crate::s2s::identities`]). A certificate covers an XMPP domain when it carries a DNS-ID
//! equal to the domain or a wildcard standing for its leftmost label, an SRV-ID for one of the
//! XMPP services of the domain, or an XmppAddr equal to it (RFC 6120 §13.7.1.2, RFC 6125 §6).

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::s2s::{Identities, dns_id_matches, fingerprint, identities};
use crate::{der_tlv, provider};

/// Why PEM input or a certificate could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    #[error("no PEM certificate found")]
    NoCertificate,
    #[error("a PEM certificate block is malformed")]
    BadPem,
    #[error("no private key found (PKCS#8, PKCS#1 or SEC1 PEM expected)")]
    NoKey,
    #[error("the private key is not supported: {0}")]
    UnsupportedKey(String),
    #[error("the certificate cannot be read as X.509 (RFC 5280)")]
    BadCertificate,
}

/// Whether a private key belongs to a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    /// The key's public half is the certificate's public key.
    Matches,
    /// The key belongs to another certificate.
    Mismatch,
    /// The key type does not tell its public half, so it cannot be compared.
    Unknown,
}

/// The facts of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity, Unix seconds.
    pub not_before: i64,
    /// End of validity, Unix seconds.
    pub not_after: i64,
    /// Issuer and subject are the same name: nobody but the holder vouches for it.
    pub self_issued: bool,
    /// The names of its subjectAltName.
    pub identities: Identities,
    /// SHA-256 of the DER certificate.
    pub fingerprint: [u8; 32],
}

impl CertInfo {
    /// Reads a DER certificate.
    pub fn from_der(cert: &CertificateDer<'_>) -> Result<CertInfo, InspectError> {
        let (not_before, not_after, self_issued) =
            tbs_facts(cert.as_ref()).ok_or(InspectError::BadCertificate)?;
        Ok(CertInfo {
            not_before,
            not_after,
            self_issued,
            identities: identities(cert.as_ref()),
            fingerprint: fingerprint(cert),
        })
    }

    /// Whether a server holding this certificate proves `domain` to clients and peers.
    pub fn covers(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        let ids = &self.identities;
        let dns = ids.dns.iter().any(|n| dns_id_matches(n, &domain));
        let srv = ids.srv.iter().any(|n| {
            [
                "_xmpp-client.",
                "_xmpps-client.",
                "_xmpp-server.",
                "_xmpps-server.",
            ]
            .iter()
            .filter_map(|service| n.strip_prefix(service))
            .any(|d| d.trim_end_matches('.') == domain)
        });
        let xmpp = ids.xmpp.iter().any(|n| n.eq_ignore_ascii_case(&domain));
        dns || srv || xmpp
    }

    /// Every name it presents, for messages: DNS-IDs, then SRV-IDs, then XmppAddrs.
    pub fn names(&self) -> Vec<String> {
        let ids = &self.identities;
        ids.dns
            .iter()
            .chain(&ids.srv)
            .chain(&ids.xmpp)
            .cloned()
            .collect()
    }

    /// The fingerprint as colon-separated upper-case hex, as `openssl x509 -fingerprint`
    /// prints it.
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// Every certificate of a PEM text, in order (the leaf first, by convention).
pub fn parse_chain(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, InspectError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| InspectError::BadPem)?;
    if chain.is_empty() {
        return Err(InspectError::NoCertificate);
    }
    Ok(chain)
}

/// The first private key of a PEM text.
pub fn parse_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, InspectError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| InspectError::NoKey)
}

/// Whether `key` belongs to the first certificate of `chain` (what TLS proves possession of).
pub fn key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
) -> Result<KeyMatch, InspectError> {
    let signing = provider::sign::any_supported_type(key)
        .map_err(|e| InspectError::UnsupportedKey(e.to_string()))?;
    let certified = CertifiedKey::new(chain.to_vec(), signing);
    match certified.keys_match() {
        Ok(()) => Ok(KeyMatch::Matches),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Ok(KeyMatch::Mismatch)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Ok(KeyMatch::Unknown),
        Err(_) => Err(InspectError::BadCertificate),
    }
}

/// From tbsCertificate (RFC 5280 §4.1): (notBefore, notAfter, issuer == subject).
fn tbs_facts(der: &[u8]) -> Option<(i64, i64, bool)> {
    let (_, cert, _) = der_tlv(der)?;
    let (_, tbs, _) = der_tlv(cert)?;
    let (mut tag, _, mut rest) = der_tlv(tbs)?;
    // version [0] EXPLICIT is absent from v1 certificates; serialNumber follows.
    if tag == 0xa0 {
        (tag, _, rest) = der_tlv(rest)?;
    }
    if tag != 0x02 {
        return None;
    }
    let (_signature, rest) = sequence(rest)?;
    let (issuer, rest) = sequence(rest)?;
    let (validity, rest) = sequence(rest)?;
    let (subject, _) = sequence(rest)?;
    let (tag, start, after) = der_tlv(validity)?;
    let not_before = parse_time(tag, start)?;
    let (tag, end, _) = der_tlv(after)?;
    let not_after = parse_time(tag, end)?;
    Some((not_before, not_after, issuer == subject))
}

/// One SEQUENCE: (its whole encoding, what follows).
fn sequence(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = der_tlv(input)?;
    (tag == 0x30).then_some((body, rest))
}

/// RFC 5280 §4.1.2.5: UTCTime `YYMMDDHHMMSSZ` (years 1950–2049) or GeneralizedTime
/// `YYYYMMDDHHMMSSZ`, both in UTC; Unix seconds.
fn parse_time(tag: u8, text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &digits[2..])
        }
        (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<i64>().ok();
    let (month, day, hour, minute, second) =
        (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (60) counts as the first second of the next minute.
    if second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn cert_with_validity(
        names: &[&str],
        not_before: i64,
        not_after: i64,
    ) -> (CertificateDer<'static>, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("params");
        let at = |secs: i64| UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs());
        params.not_before = at(not_before).into();
        params.not_after = at(not_after).into();
        let cert = params.self_signed(&key).expect("cert");
        (cert.der().clone(), key)
    }

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(parse_time(0x17, b"250501120000Z"), Some(1_746_100_800));
        assert_eq!(parse_time(0x18, b"20250501120000Z"), Some(1_746_100_800));
        assert_eq!(parse_time(0x17, b"500101000000Z"), Some(-631_152_000));
        assert_eq!(parse_time(0x17, b"2505011200Z"), None);
        assert_eq!(parse_time(0x18, b"20251301120000Z"), None);
        assert_eq!(parse_time(0x17, b"250501120000+0200"), None);
    }

    #[test]
    fn validity_and_issuer_are_read() {
        // 2049 is written as UTCTime, 2051 as GeneralizedTime (RFC 5280 §4.1.2.5).
        for (start, end) in [
            (1_746_100_800, 2_524_608_000),
            (1_746_100_800, 2_556_144_000),
        ] {
            let (der, _) = cert_with_validity(&["example.com"], start, end);
            let info = CertInfo::from_der(&der).expect("info");
            assert_eq!((info.not_before, info.not_after), (start, end));
            assert!(info.self_issued);
            assert_eq!(info.names(), vec!["example.com".to_owned()]);
        }
    }

    #[test]
    fn issued_certificates_are_not_self_issued() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Example CA");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["chat.example.com".to_owned()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("leaf");
        let info = CertInfo::from_der(leaf.der()).expect("info");
        assert!(!info.self_issued);
    }

    #[test]
    fn coverage_follows_rfc_6125() {
        let (der, _) = cert_with_validity(&["*.example.com", "example.com"], 0, 4_000_000_000);
        let info = CertInfo::from_der(&der).expect("info");
        assert!(info.covers("example.com"));
        assert!(info.covers("Chat.Example.com."));
        assert!(!info.covers("a.b.example.com"));
        assert!(!info.covers("example.org"));
        let (der, _) = cert_with_validity(&["*.example.com"], 0, 4_000_000_000);
        assert!(
            !CertInfo::from_der(&der)
                .expect("info")
                .covers("example.com")
        );
    }

    #[test]
    fn keys_are_matched_to_their_certificate() {
        let (pem, key_pem) = crate::generate_self_signed(&["example.com".into()]).expect("cert");
        let chain = parse_chain(pem.as_bytes()).expect("chain");
        let key = parse_key(key_pem.as_bytes()).expect("key");
        assert_eq!(key_matches(&chain, &key), Ok(KeyMatch::Matches));
        let (_, other_pem) = crate::generate_self_signed(&["example.com".into()]).expect("cert");
        let other = parse_key(other_pem.as_bytes()).expect("key");
        assert_eq!(key_matches(&chain, &other), Ok(KeyMatch::Mismatch));
    }

    #[test]
    fn bad_pem_is_named() {
        assert_eq!(
            parse_chain(b"nothing here"),
            Err(InspectError::NoCertificate)
        );
        assert_eq!(
            parse_chain(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
            Err(InspectError::BadPem)
        );
        assert_eq!(parse_key(b"nothing here"), Err(InspectError::NoKey));
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        assert_eq!(CertInfo::from_der(&junk), Err(InspectError::BadCertificate));
    }
}
