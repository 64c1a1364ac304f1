//! causerie-config (placeholder)
