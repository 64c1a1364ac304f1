//! Certificates for tests, made with rcgen: a throwaway certificate authority that issues server
//! certificates, and self-signed certificates.
//!
//! A test that checks certificate validation (RFC 6125 name matching, chains, s2s trust anchors)
//! uses [`test_ca`] and trusts only its root; a test that only needs some TLS uses
//! [`self_signed`]. Leaf certificates carry both the serverAuth and the clientAuth extended key
//! usage so the same certificate serves a server in both directions of a server-to-server link.
//!
//! These helpers take their inputs from the test code itself, never from the network, so they
//! panic (with the reason) when rcgen refuses a name instead of returning errors every test would
//! unwrap.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use rustls_pki_types::CertificateDer;

/// The key type of a generated certificate. The signature hash of a certificate comes from its
/// issuer's key, which matters for tls-server-end-point channel binding (RFC 5929 §4.1):
/// a certificate issued by a P-384 CA is signed with SHA-384.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256, signatures with SHA-256.
    EcdsaP256,
    /// ECDSA P-384, signatures with SHA-384.
    EcdsaP384,
    /// Ed25519 (no separate hash in the signature).
    Ed25519,
}

impl KeyKind {
    fn algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyKind::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyKind::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }

    fn generate(self) -> KeyPair {
        KeyPair::generate_for(self.algorithm())
            .unwrap_or_else(|e| panic!("generating a {self:?} key: {e}"))
    }
}

/// A certificate authority that exists for the duration of a test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate authority with an ECDSA P-256 key.
pub fn test_ca() -> TestCa {
    TestCa::new(KeyKind::EcdsaP256)
}

impl TestCa {
    /// A certificate authority with a key of the given kind; it also fixes the signature hash of
    /// every certificate it issues.
    pub fn new(kind: KeyKind) -> TestCa {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "Causerie test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, kind.generate())
            .unwrap_or_else(|e| panic!("self-signing the test CA: {e}"));
        TestCa { issuer }
    }

    /// The CA certificate in PEM, to configure as a trust anchor.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate in DER, for [`crate::client::Trust::Roots`].
    pub fn cert_der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// Issue a certificate for `names` (DNS names, or IP addresses which become IP SANs) with a
    /// fresh P-256 key. Returns the PEM certificate chain (the leaf; the CA is the trust anchor
    /// and is not repeated) and the PEM PKCS#8 private key.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        self.issue_with(names, KeyKind::EcdsaP256)
    }

    /// Like [`TestCa::issue`], with a leaf key of the given kind.
    pub fn issue_with(&self, names: &[&str], kind: KeyKind) -> (String, String) {
        let params = leaf_params(names);
        let key = kind.generate();
        let cert = params
            .signed_by(&key, &self.issuer)
            .unwrap_or_else(|e| panic!("issuing a certificate for {names:?}: {e}"));
        (cert.pem(), key.serialize_pem())
    }
}

/// A self-signed P-256 certificate for `names`: (PEM certificate, PEM PKCS#8 private key).
pub fn self_signed(names: &[&str]) -> (String, String) {
    self_signed_with(names, KeyKind::EcdsaP256)
}

/// A self-signed certificate for `names` with a key of the given kind.
pub fn self_signed_with(names: &[&str], kind: KeyKind) -> (String, String) {
    let params = leaf_params(names);
    let key = kind.generate();
    let cert = params
        .self_signed(&key)
        .unwrap_or_else(|e| panic!("self-signing a certificate for {names:?}: {e}"));
    (cert.pem(), key.serialize_pem())
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params =
        CertificateParams::new(sans).unwrap_or_else(|e| panic!("certificate names {names:?}: {e}"));
    if let Some(first) = names.first() {
        params.distinguished_name.push(DnType::CommonName, *first);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{PrivateKeyDer, ServerName, UnixTime};
    use std::sync::Arc;

    fn verify(
        roots: &[CertificateDer<'static>],
        chain_pem: &str,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let mut store = rustls::RootCertStore::empty();
        for r in roots {
            store.add(r.clone())?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| rustls::Error::General(e.to_string()))?;
        let (leaf, rest) = chain
            .split_first()
            .ok_or_else(|| rustls::Error::General("empty chain".into()))?;
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        rustls::client::danger::ServerCertVerifier::verify_server_cert(
            verifier.as_ref(),
            leaf,
            rest,
            &server_name,
            &[],
            UnixTime::now(),
        )
        .map(|_| ())
    }

    #[test]
    fn issued_certificate_verifies_against_the_ca_for_its_names_only() {
        let ca = test_ca();
        let (chain, key) = ca.issue(&["example.test", "127.0.0.1"]);
        assert!(PrivateKeyDer::from_pem_slice(key.as_bytes()).is_ok());
        verify(&[ca.cert_der()], &chain, "example.test").expect("valid for its DNS name");
        verify(&[ca.cert_der()], &chain, "127.0.0.1").expect("valid for its IP address");
        assert!(verify(&[ca.cert_der()], &chain, "other.test").is_err());
        let other = test_ca();
        assert!(verify(&[other.cert_der()], &chain, "example.test").is_err());
    }

    #[test]
    fn self_signed_certificate_is_not_trusted_by_a_ca() {
        let ca = test_ca();
        let (cert, key) = self_signed(&["localhost"]);
        assert!(PrivateKeyDer::from_pem_slice(key.as_bytes()).is_ok());
        assert!(verify(&[ca.cert_der()], &cert, "localhost").is_err());
        let own: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .collect::<Result<_, _>>()
            .expect("PEM");
        // A self-signed end-entity certificate is not a CA, so webpki refuses it as its own
        // anchor; what matters is that it parses and carries the name.
        assert_eq!(own.len(), 1);
    }

    #[test]
    fn p384_ca_and_ed25519_leaves_are_produced() {
        let ca = TestCa::new(KeyKind::EcdsaP384);
        let (chain, _) = ca.issue_with(&["a.test"], KeyKind::Ed25519);
        verify(&[ca.cert_der()], &chain, "a.test").expect("valid");
        let (cert, _) = self_signed_with(&["b.test"], KeyKind::EcdsaP384);
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    }
}
