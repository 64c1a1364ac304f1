//! causerie-tls (placeholder)
