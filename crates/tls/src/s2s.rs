//! TLS between servers (RFC 6120 §5, §13.7.2; RFC 6125): configurations that let the handshake
//! finish whatever certificate the peer shows, and the checks that decide afterwards what that
//! certificate proves.
//!
//! The handshake itself is always verified (the peer must hold the key of the certificate it
//! presents); whether the certificate is trusted for a domain is a separate question, answered by
//! [`PeerTrust::check`] once the stream says which domain the peer claims. A peer whose
//! certificate does not validate may still authenticate with dialback (XEP-0220), which is the
//! federation layer's decision, not this module's.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::Digest;

use crate::{ALPN_XMPP_SERVER, CertStore, SniResolver, TlsError, der_tlv, provider};

/// Where Debian and most Linux systems keep the public CA bundle.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn algorithms() -> WebPkiSupportedAlgorithms {
    provider::default_provider().signature_verification_algorithms
}

/// Verifies handshake signatures and nothing else: the certificate is judged after the handshake,
/// when the claimed domain is known.
#[derive(Debug)]
struct DeferredVerifier {
    algs: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for DeferredVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

impl ClientCertVerifier for DeferredVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

static TLS13_ONLY: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
static TLS12_UP: [&rustls::SupportedProtocolVersion; 2] =
    [&rustls::version::TLS13, &rustls::version::TLS12];

fn versions(tls13_only: bool) -> &'static [&'static rustls::SupportedProtocolVersion] {
    if tls13_only { &TLS13_ONLY } else { &TLS12_UP }
}

/// The configuration of the s2s listeners: certificates by SNI, and a client certificate asked for
/// (not required) so that peers can authenticate with SASL EXTERNAL.
pub fn s2s_server_config(
    store: Arc<CertStore>,
    tls13_only: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let verifier = Arc::new(DeferredVerifier { algs: algorithms() });
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(versions(tls13_only))
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SniResolver(store)));
    cfg.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
    Ok(Arc::new(cfg))
}

/// The configuration of outgoing streams from `local_domain`: its certificate as the client
/// certificate, the peer's certificate judged after the handshake.
pub fn s2s_client_config(
    store: &CertStore,
    local_domain: &str,
    tls13_only: bool,
) -> Result<Arc<ClientConfig>, TlsError> {
    let verifier = Arc::new(DeferredVerifier { algs: algorithms() });
    let builder = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(versions(tls13_only))
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut cfg = match store.lookup(Some(local_domain)) {
        Some(cert) => builder.with_client_cert_resolver(Arc::new(OwnCert(cert.key.clone()))),
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![ALPN_XMPP_SERVER.to_vec()];
    Ok(Arc::new(cfg))
}

/// Our certificate, offered to every peer that asks (the domain is fixed per configuration).
#[derive(Debug)]
struct OwnCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OwnCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// Why a peer certificate does not prove a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertProblem {
    /// No certificate was presented (no TLS, or a client without one).
    Missing,
    /// The chain does not lead to a trusted anchor, or is expired, or malformed.
    Untrusted(String),
    /// The chain is trusted but names other domains (RFC 6125 §6).
    NameMismatch,
    /// The leaf is not one of the fingerprints pinned for the domain.
    FingerprintMismatch,
}

impl fmt::Display for CertProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertProblem::Missing => f.write_str("no certificate presented"),
            CertProblem::Untrusted(why) => write!(f, "certificate not trusted: {why}"),
            CertProblem::NameMismatch => f.write_str("certificate is not valid for this domain"),
            CertProblem::FingerprintMismatch => {
                f.write_str("certificate does not match the pinned fingerprint")
            }
        }
    }
}

/// What is trusted for one partner domain instead of the common anchors.
#[derive(Debug, Clone, Default)]
pub struct Pin {
    /// The partner's private CA: its certificates must chain to these.
    pub roots: Option<Arc<RootCertStore>>,
    /// SHA-256 of acceptable leaf certificates.
    pub fingerprints: Vec<[u8; 32]>,
}

impl Pin {
    pub fn is_empty(&self) -> bool {
        self.roots.is_none() && self.fingerprints.is_empty()
    }
}

/// The anchors peer certificates are checked against.
#[derive(Debug, Clone)]
pub struct PeerTrust {
    roots: Arc<RootCertStore>,
}

impl PeerTrust {
    pub fn new(roots: RootCertStore) -> Self {
        PeerTrust {
            roots: Arc::new(roots),
        }
    }

    /// The common anchors (for DANE's PKIX usages).
    pub fn roots(&self) -> &RootCertStore {
        &self.roots
    }

    /// Whether `chain` (leaf first) proves `domain`: pinned fingerprints first, else the chain to
    /// the pinned CA or the common anchors, then the names (RFC 6125).
    pub fn check(
        &self,
        chain: Option<&[CertificateDer<'_>]>,
        domain: &str,
        pin: Option<&Pin>,
    ) -> Result<(), CertProblem> {
        let chain = chain
            .filter(|c| !c.is_empty())
            .ok_or(CertProblem::Missing)?;
        let leaf = &chain[0];
        if let Some(pin) = pin.filter(|p| !p.fingerprints.is_empty()) {
            let fp = fingerprint(leaf);
            if pin.fingerprints.contains(&fp) {
                return Ok(());
            }
            if pin.roots.is_none() {
                return Err(CertProblem::FingerprintMismatch);
            }
        }
        let roots = pin.and_then(|p| p.roots.as_deref()).unwrap_or(&self.roots);
        verify_chain(chain, roots)?;
        if names_match(leaf.as_ref(), domain) {
            Ok(())
        } else {
            Err(CertProblem::NameMismatch)
        }
    }
}

/// The SHA-256 fingerprint of a certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    sha2::Sha256::digest(cert.as_ref()).into()
}

/// Chain validation (RFC 5280 path building by webpki). The server-auth purpose is asked for when the
/// certificate states purposes; a certificate for TLS clients only is accepted too, since the same
/// certificate serves both directions of federation and some CAs no longer issue client-auth.
fn verify_chain(chain: &[CertificateDer<'_>], roots: &RootCertStore) -> Result<(), CertProblem> {
    let leaf = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| CertProblem::Untrusted(format!("unreadable certificate: {e:?}")))?;
    let algs = algorithms();
    let now = UnixTime::now();
    let server = leaf.verify_for_usage(
        algs.all,
        &roots.roots,
        &chain[1..],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    match server {
        Ok(_) => Ok(()),
        Err(first) => leaf
            .verify_for_usage(
                algs.all,
                &roots.roots,
                &chain[1..],
                now,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map(|_| ())
            .map_err(|_| CertProblem::Untrusted(format!("{first:?}"))),
    }
}

/// Chain validation for other modules of this crate (DANE).
pub(crate) fn verify_chain_public(
    chain: &[CertificateDer<'_>],
    roots: &RootCertStore,
) -> Result<(), CertProblem> {
    verify_chain(chain, roots)
}

/// Reads trust anchors from PEM files; files that do not exist are skipped when `optional`.
pub fn load_roots(paths: &[(&Path, bool)]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (path, optional) in paths {
        let pem = match std::fs::read(path) {
            Ok(p) => p,
            Err(e) if *optional && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(TlsError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::NoCertificate {
                path: path.to_path_buf(),
            })?;
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 && !optional {
            return Err(TlsError::NoCertificate {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(roots)
}

const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];
/// id-on-dnsSRV (RFC 4985), the SRV-ID of RFC 6125.
const OID_SRV_NAME: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07];
/// id-on-xmppAddr (RFC 6120 §13.7.1.4).
const OID_XMPP_ADDR: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05];

/// The identities a certificate presents, from its subjectAltName extension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    pub dns: Vec<String>,
    pub srv: Vec<String>,
    pub xmpp: Vec<String>,
}

/// Reads the subjectAltName of a DER certificate.
pub fn identities(cert_der: &[u8]) -> Identities {
    let mut out = Identities::default();
    let _ = (|| -> Option<()> {
        let (_, cert, _) = der_tlv(cert_der)?;
        let (_, mut tbs, _) = der_tlv(cert)?;
        // Skip to the [3] extensions, after the fixed fields.
        loop {
            let (tag, body, rest) = der_tlv(tbs)?;
            tbs = rest;
            if tag == 0xa3 {
                let (_, mut exts, _) = der_tlv(body)?;
                while !exts.is_empty() {
                    let (_, ext, rest) = der_tlv(exts)?;
                    exts = rest;
                    let (tag, oid, mut after) = der_tlv(ext)?;
                    if tag != 0x06 || oid != OID_SAN {
                        continue;
                    }
                    // Optional `critical BOOLEAN`, then the OCTET STRING.
                    let (mut tag, mut value, rest) = der_tlv(after)?;
                    if tag == 0x01 {
                        after = rest;
                        (tag, value, _) = der_tlv(after)?;
                    }
                    if tag != 0x04 {
                        return None;
                    }
                    read_general_names(value, &mut out);
                }
                return Some(());
            }
        }
    })();
    out
}

fn read_general_names(octets: &[u8], out: &mut Identities) -> Option<()> {
    let (_, mut names, _) = der_tlv(octets)?;
    while !names.is_empty() {
        let (tag, body, rest) = der_tlv(names)?;
        names = rest;
        match tag {
            // dNSName [2] IA5String
            0x82 => {
                if let Ok(s) = std::str::from_utf8(body) {
                    out.dns.push(s.to_ascii_lowercase());
                }
            }
            // otherName [0] { type-id OID, [0] EXPLICIT value }
            0xa0 => {
                let (t, oid, rest) = der_tlv(body)?;
                if t != 0x06 {
                    continue;
                }
                let (t, explicit, _) = der_tlv(rest)?;
                if t != 0xa0 {
                    continue;
                }
                let (_, value, _) = der_tlv(explicit)?;
                let Ok(s) = std::str::from_utf8(value) else {
                    continue;
                };
                if oid == OID_SRV_NAME {
                    out.srv.push(s.to_ascii_lowercase());
                } else if oid == OID_XMPP_ADDR {
                    out.xmpp.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    Some(())
}

/// RFC 6125 §6 for an XMPP server (RFC 6120 §13.7.2.1): a DNS-ID equal to the domain or a wildcard
/// covering exactly its leftmost label, an SRV-ID for `_xmpp-server` (or `_xmpps-server`) of the
/// domain, or an XmppAddr equal to the domain.
pub fn names_match(cert_der: &[u8], domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let ids = identities(cert_der);
    let dns = ids.dns.iter().any(|n| dns_id_matches(n, &domain));
    let srv = ids.srv.iter().any(|n| {
        n.strip_prefix("_xmpp-server.")
            .or_else(|| n.strip_prefix("_xmpps-server."))
            .is_some_and(|d| d.trim_end_matches('.') == domain)
    });
    let xmpp = ids.xmpp.iter().any(|n| n.eq_ignore_ascii_case(&domain));
    dns || srv || xmpp
}

pub(crate) fn dns_id_matches(presented: &str, domain: &str) -> bool {
    let presented = presented.trim_end_matches('.');
    if let Some(base) = presented.strip_prefix("*.") {
        // The wildcard stands for one whole label, never for the base domain itself.
        return match domain.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == base && base.contains('.'),
            None => false,
        };
    }
    presented == domain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (
        rcgen::Issuer<'static, rcgen::KeyPair>,
        CertificateDer<'static>,
    ) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Test CA");
        let cert = params.self_signed(&key).expect("ca");
        let der = cert.der().clone();
        (rcgen::Issuer::new(params, key), der)
    }

    fn leaf(
        issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
        names: Vec<rcgen::SanType>,
    ) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.subject_alt_names = names;
        params.signed_by(&key, issuer).expect("leaf").der().clone()
    }

    fn dns(name: &str) -> rcgen::SanType {
        rcgen::SanType::DnsName(name.try_into().expect("ia5"))
    }

    fn other(oid: &[u64], value: &str) -> rcgen::SanType {
        rcgen::SanType::OtherName((
            oid.to_vec(),
            rcgen::OtherNameValue::Utf8String(value.to_owned()),
        ))
    }

    #[test]
    fn dns_ids_and_wildcards() {
        assert!(dns_id_matches("example.org", "example.org"));
        assert!(dns_id_matches("*.example.org", "chat.example.org"));
        assert!(!dns_id_matches("*.example.org", "example.org"));
        assert!(!dns_id_matches("*.example.org", "a.b.example.org"));
        assert!(!dns_id_matches("*.org", "example.org"));
        assert!(!dns_id_matches("example.org", "example.com"));
    }

    #[test]
    fn chain_and_names_are_checked() {
        let (issuer, ca_der) = ca();
        let mut roots = RootCertStore::empty();
        roots.add(ca_der).expect("anchor");
        let trust = PeerTrust::new(roots);
        let good = leaf(&issuer, vec![dns("partner.example")]);
        assert_eq!(
            trust.check(Some(std::slice::from_ref(&good)), "partner.example", None),
            Ok(())
        );
        assert_eq!(
            trust.check(Some(std::slice::from_ref(&good)), "other.example", None),
            Err(CertProblem::NameMismatch)
        );
        assert_eq!(
            trust.check(None, "partner.example", None),
            Err(CertProblem::Missing)
        );
        // A self-signed certificate is not trusted, even with the right name.
        let (pem, _) = crate::generate_self_signed(&["partner.example".into()]).expect("cert");
        let selfsigned = CertificateDer::from_pem_slice(pem.as_bytes()).expect("der");
        assert!(matches!(
            trust.check(
                Some(std::slice::from_ref(&selfsigned)),
                "partner.example",
                None
            ),
            Err(CertProblem::Untrusted(_))
        ));
        // ...unless its fingerprint is pinned for that domain.
        let pin = Pin {
            roots: None,
            fingerprints: vec![fingerprint(&selfsigned)],
        };
        assert_eq!(
            trust.check(Some(&[selfsigned]), "partner.example", Some(&pin)),
            Ok(())
        );
        assert_eq!(
            trust.check(Some(&[good]), "partner.example", Some(&pin)),
            Err(CertProblem::FingerprintMismatch)
        );
    }

    #[test]
    fn pinned_ca_replaces_common_anchors() {
        let (issuer, _) = ca();
        let (private_issuer, private_ca) = ca();
        let trust = PeerTrust::new(RootCertStore::empty());
        let mut private = RootCertStore::empty();
        private.add(private_ca).expect("anchor");
        let pin = Pin {
            roots: Some(Arc::new(private)),
            fingerprints: vec![],
        };
        let theirs = leaf(&private_issuer, vec![dns("partner.example")]);
        let other = leaf(&issuer, vec![dns("partner.example")]);
        assert_eq!(
            trust.check(Some(&[theirs]), "partner.example", Some(&pin)),
            Ok(())
        );
        assert!(matches!(
            trust.check(Some(&[other]), "partner.example", Some(&pin)),
            Err(CertProblem::Untrusted(_))
        ));
    }

    #[test]
    fn srv_id_and_xmpp_addr() {
        let (issuer, _) = ca();
        let cert = leaf(
            &issuer,
            vec![
                dns("host.provider.example"),
                other(&[1, 3, 6, 1, 5, 5, 7, 8, 7], "_xmpp-server.tenant.example"),
                other(&[1, 3, 6, 1, 5, 5, 7, 8, 5], "other.example"),
            ],
        );
        let ids = identities(cert.as_ref());
        assert_eq!(ids.dns, vec!["host.provider.example"]);
        assert_eq!(ids.srv, vec!["_xmpp-server.tenant.example"]);
        assert_eq!(ids.xmpp, vec!["other.example"]);
        assert!(names_match(cert.as_ref(), "tenant.example"));
        assert!(names_match(cert.as_ref(), "other.example"));
        assert!(names_match(cert.as_ref(), "host.provider.example"));
        assert!(!names_match(cert.as_ref(), "provider.example"));
    }
}
