//! causerie-server (placeholder)
