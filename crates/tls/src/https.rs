//! TLS for the server's own HTTPS requests (alert webhooks): an ordinary web client's checks,
//! the chain to one of the given anchors and the name of the host in the URL (RFC 9110 §4.3.4,
//! RFC 6125), TLS 1.2 or later, ALPN `http/1.1` (RFC 7301).

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};

use crate::s2s::{SYSTEM_CA_BUNDLE, load_roots};
use crate::{TlsError, provider};

/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// A client configuration trusting `roots`, with no client certificate.
pub fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, TlsError> {
    if roots.is_empty() {
        return Err(TlsError::Config(
            "no trust anchors: neither the system's CA bundle nor a CA file could be read".into(),
        ));
    }
    let mut cfg = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration trusting the system's CA bundle (when there is one) and the
/// certificates of `ca_file`, which must hold at least one.
pub fn client_config_with(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, TlsError> {
    let mut anchors: Vec<(&Path, bool)> = vec![(Path::new(SYSTEM_CA_BUNDLE), true)];
    if let Some(ca) = ca_file {
        anchors.push((ca, false));
    }
    client_config(load_roots(&anchors)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        assert!(client_config_with(Some(&empty)).is_err());
        assert!(client_config_with(Some(&dir.path().join("missing.pem"))).is_err());
        assert!(client_config(RootCertStore::empty()).is_err());
    }

    #[test]
    fn a_ca_file_is_trusted_and_http1_is_offered() {
        let key = rcgen::KeyPair::generate().expect("key");
        let ca = rcgen::CertificateParams::new(Vec::<String>::new())
            .expect("params")
            .self_signed(&key)
            .expect("ca");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.pem()).expect("write");
        let cfg = client_config_with(Some(&path)).expect("config");
        assert_eq!(cfg.alpn_protocols, vec![ALPN_HTTP1.to_vec()]);
    }
}
