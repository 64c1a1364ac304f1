//! TLS for every listener: rustls server configurations (TLS 1.2+), the per-domain certificate store
//! chosen by SNI, the self-signed development certificate, and the channel-binding data SASL needs.
//!
//! Owns: loading PEM certificates and keys, generating and keeping a self-signed certificate under the
//! data folder, `tls-exporter` (RFC 9266) and `tls-server-end-point` (RFC 5929 §4) channel bindings;
//! the client configuration of the server's own HTTPS requests ([`https`]); the facts an operator
//! checks about a certificate before using it ([`inspect`]).
//! Knows nothing of XMPP sessions.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::crypto::ring as provider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;

pub mod dane;
pub mod https;
pub mod inspect;
pub mod s2s;

pub use tokio_rustls::TlsAcceptor;
pub use tokio_rustls::server::TlsStream;

/// ALPN protocol id for direct TLS client connections (XEP-0368).
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";
/// ALPN protocol id for direct TLS server-to-server connections (XEP-0368).
pub const ALPN_XMPP_SERVER: &[u8] = b"xmpp-server";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{path}: no certificate found in the PEM file")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no usable private key (PKCS#8, PKCS#1 or SEC1 PEM expected)")]
    NoKey { path: PathBuf },
    #[error("{path}: the key is not supported: {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The certificate and key of one domain, with what channel binding needs.
#[derive(Debug)]
pub struct DomainCert {
    pub key: Arc<CertifiedKey>,
    /// The RFC 5929 `tls-server-end-point` value of the leaf certificate.
    pub server_end_point: Vec<u8>,
}

/// Certificates by domain. Looked up by SNI; the default is used when SNI is absent or unknown.
#[derive(Debug, Default)]
pub struct CertStore {
    by_domain: HashMap<String, Arc<DomainCert>>,
    default: Option<Arc<DomainCert>>,
}

impl CertStore {
    pub fn new() -> Self {
        CertStore::default()
    }

    /// Adds a certificate chain and key for `domain`. The first domain added becomes the default.
    pub fn insert(
        &mut self,
        domain: &str,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), TlsError> {
        let leaf = chain
            .first()
            .ok_or_else(|| TlsError::Config(format!("{domain}: empty certificate chain")))?;
        let server_end_point = server_end_point_hash(leaf.as_ref());
        let signing = provider::sign::any_supported_type(&key)
            .map_err(|e| TlsError::Config(format!("{domain}: unsupported private key: {e}")))?;
        let entry = Arc::new(DomainCert {
            key: Arc::new(CertifiedKey::new(chain, signing)),
            server_end_point,
        });
        if self.default.is_none() {
            self.default = Some(entry.clone());
        }
        self.by_domain.insert(domain.to_ascii_lowercase(), entry);
        Ok(())
    }

    /// Loads a PEM chain and key from files.
    pub fn load(&mut self, domain: &str, cert: &Path, key: &Path) -> Result<(), TlsError> {
        let (chain, key) = read_pem_pair(cert, key)?;
        self.insert(domain, chain, key)
    }

    /// The certificate for a name: exact match, then a wildcard one label up, then the default.
    pub fn lookup(&self, name: Option<&str>) -> Option<Arc<DomainCert>> {
        if let Some(name) = name {
            let name = name.to_ascii_lowercase();
            if let Some(c) = self.by_domain.get(&name) {
                return Some(c.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(c) = self.by_domain.get(&format!("*.{parent}"))
            {
                return Some(c.clone());
            }
        }
        self.default.clone()
    }

    pub fn contains(&self, domain: &str) -> bool {
        self.by_domain.contains_key(&domain.to_ascii_lowercase())
    }
}

#[derive(Debug)]
struct SniResolver(Arc<CertStore>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.0.lookup(hello.server_name()).map(|c| c.key.clone())
    }
}

/// Builds a server configuration over the store. `tls13_only` raises the minimum version.
pub fn server_config(
    store: Arc<CertStore>,
    tls13_only: bool,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let versions: &[&'static rustls::SupportedProtocolVersion] = if tls13_only {
        &[&rustls::version::TLS13]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let mut cfg = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver(store)));
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    // Session tickets cost memory per ticket key only; resumption speeds up mobile reconnects.
    cfg.send_tls13_tickets = 2;
    Ok(Arc::new(cfg))
}

/// Reads a PEM certificate chain and private key.
pub fn read_pem_pair(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert_pem = fs::read(cert).map_err(|source| TlsError::Read {
        path: cert.to_owned(),
        source,
    })?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: cert.to_owned(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let key_pem = fs::read(key).map_err(|source| TlsError::Read {
        path: key.to_owned(),
        source,
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: key.to_owned(),
    })?;
    Ok((chain, key))
}

/// Where the generated certificate of a domain is kept.
pub fn self_signed_paths(data_dir: &Path, domain: &str) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (
        dir.join(format!("{domain}.crt")),
        dir.join(format!("{domain}.key")),
    )
}

/// Returns the self-signed certificate of `domain` under `data_dir/tls/`, creating it on first use.
/// The key file is written with mode 0600. Returns the paths and whether it was created now.
pub fn ensure_self_signed(
    data_dir: &Path,
    domain: &str,
) -> Result<(PathBuf, PathBuf, bool), TlsError> {
    let (cert_path, key_path) = self_signed_paths(data_dir, domain);
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path, false));
    }
    let dir = cert_path.parent().unwrap_or(data_dir);
    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let mut names = vec![domain.to_owned()];
    // XMPP clients address the server by its domain; sub-domains host components later.
    if domain != "localhost" {
        names.push(format!("*.{domain}"));
    }
    let (cert_pem, key_pem) = generate_self_signed(&names)?;
    write_private(&key_path, key_pem.as_bytes())?;
    fs::write(&cert_path, cert_pem.as_bytes()).map_err(|source| TlsError::Write {
        path: cert_path.clone(),
        source,
    })?;
    Ok((cert_path, key_path, true))
}

/// How long the generated development certificate is valid, in days.
pub const SELF_SIGNED_DAYS: u32 = 3 * 365;

/// Generates a self-signed ECDSA P-256 certificate for `names` (PEM certificate, PEM PKCS#8 key),
/// valid for [`SELF_SIGNED_DAYS`].
pub fn generate_self_signed(names: &[String]) -> Result<(String, String), TlsError> {
    generate_self_signed_for(names, SELF_SIGNED_DAYS)
}

/// Like [`generate_self_signed`], valid for `days` from now (and from an hour ago, so that a
/// peer whose clock is a little behind accepts it at once).
pub fn generate_self_signed_for(names: &[String], days: u32) -> Result<(String, String), TlsError> {
    let key = rcgen::KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(
        rcgen::DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    dn.push(rcgen::DnType::OrganizationName, "Causerie self-signed");
    params.distinguished_name = dn;
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(u64::from(days) * 24 * 3600)).into();
    let cert = params
        .self_signed(&key)
        .map_err(|e| TlsError::Generate(e.to_string()))?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes a secret file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write;
    let err = |source| TlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

/// RFC 9266 `tls-exporter`: 32 bytes exported with label "EXPORTER-Channel-Binding" and no context.
/// Only defined for TLS 1.3 here: on TLS 1.2 without extended master secret it would not be unique.
pub fn tls_exporter(conn: &rustls::ServerConnection) -> Option<Vec<u8>> {
    if conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
        return None;
    }
    let mut out = vec![0u8; 32];
    conn.export_keying_material(&mut out, b"EXPORTER-Channel-Binding", None)
        .ok()?;
    Some(out)
}

/// RFC 5929 §4.1: the hash of the certificate with the hash of its signature algorithm, or SHA-256 when
/// that is MD5 or SHA-1 (and, by the common reading, for algorithms without a separate hash).
pub fn server_end_point_hash(cert_der: &[u8]) -> Vec<u8> {
    match signature_hash(cert_der) {
        SigHash::Sha384 => sha2::Sha384::digest(cert_der).to_vec(),
        SigHash::Sha512 => sha2::Sha512::digest(cert_der).to_vec(),
        SigHash::Sha256 => sha2::Sha256::digest(cert_der).to_vec(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SigHash {
    Sha256,
    Sha384,
    Sha512,
}

/// Reads the outer signatureAlgorithm OID of an X.509 certificate (RFC 5280 §4.1.1.2).
fn signature_hash(der: &[u8]) -> SigHash {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signature }
    let oid = (|| {
        let (_, cert_body, _) = der_tlv(der)?;
        let (_, _, after_tbs) = der_tlv(cert_body)?;
        let (_, alg_body, _) = der_tlv(after_tbs)?;
        let (tag, oid, _) = der_tlv(alg_body)?;
        (tag == 0x06).then_some(oid)
    })();
    const SHA384_OIDS: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03], // ecdsa-with-SHA384
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], // sha384WithRSAEncryption
    ];
    const SHA512_OIDS: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04], // ecdsa-with-SHA512
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], // sha512WithRSAEncryption
    ];
    match oid {
        Some(o) if SHA384_OIDS.contains(&o) => SigHash::Sha384,
        Some(o) if SHA512_OIDS.contains(&o) => SigHash::Sha512,
        _ => SigHash::Sha256,
    }
}

/// One DER TLV: (tag, contents, rest).
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 & 0x80 == 0 {
        (len0 as usize, rest)
    } else {
        let n = (len0 & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_is_created_once_with_private_key_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k, created) = ensure_self_signed(dir.path(), "localhost").expect("generated");
        assert!(created);
        let (c2, k2, created2) = ensure_self_signed(dir.path(), "localhost").expect("reused");
        assert!(!created2);
        assert_eq!((c.clone(), k.clone()), (c2, k2));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&k).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let mut store = CertStore::new();
        store.load("localhost", &c, &k).expect("loads");
        assert!(store.lookup(Some("localhost")).is_some());
        assert!(store.lookup(None).is_some());
        server_config(Arc::new(store), false, &[ALPN_XMPP_CLIENT]).expect("config");
    }

    #[test]
    fn end_point_hash_of_p256_cert_is_sha256() {
        let (pem, _) = generate_self_signed(&["example.com".into()]).expect("cert");
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).expect("der");
        assert_eq!(signature_hash(der.as_ref()), SigHash::Sha256);
        assert_eq!(server_end_point_hash(der.as_ref()).len(), 32);
    }

    #[test]
    fn end_point_hash_follows_sha384_signatures() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["example.com".into()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        assert_eq!(signature_hash(cert.der().as_ref()), SigHash::Sha384);
        assert_eq!(server_end_point_hash(cert.der().as_ref()).len(), 48);
    }

    #[test]
    fn missing_or_bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.pem");
        let err = read_pem_pair(&missing, &missing).expect_err("missing");
        assert!(err.to_string().contains("nope.pem"));
        let junk = dir.path().join("junk.pem");
        fs::write(&junk, "not pem").expect("write");
        assert!(matches!(
            read_pem_pair(&junk, &junk),
            Err(TlsError::NoCertificate { .. })
        ));
    }

    #[test]
    fn wildcard_lookup() {
        let (pem, key) = generate_self_signed(&["*.example.com".into()]).expect("cert");
        let chain = vec![CertificateDer::from_pem_slice(pem.as_bytes()).expect("der")];
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
        let mut store = CertStore::new();
        store.insert("*.example.com", chain, key).expect("insert");
        assert!(store.lookup(Some("chat.example.com")).is_some());
    }
}
